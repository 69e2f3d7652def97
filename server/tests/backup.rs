//! `zkwiki-server backup` while writers commit, then `restore` into a fresh data directory and a
//! client's check of every wiki on a server started there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use core_crypto::ids::PageId;
use serde_json::{Value, json};

fn run(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zkwiki-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A writer committing pages to its wiki until told to stop: the texts it was told were
/// committed, by page, and the highest sequence acknowledged so far.
struct Writer {
    acked: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<(HashMap<PageId, String>, User)>,
}

fn start_writer(base: String, user: User, mut view: WikiView, stop: Arc<AtomicBool>) -> Writer {
    let acked = Arc::new(AtomicU64::new(view.snap.state.seq));
    let seen = acked.clone();
    let handle = std::thread::spawn(move || {
        let c = Client::new(&base);
        let mut texts = HashMap::new();
        let mut i = 0;
        while !stop.load(Ordering::Acquire) {
            let text = format!("page {i} of {}", user.name);
            let (page, _, seq) = put_page(&c, &user, &mut view, &format!("W{i}.md"), &text);
            texts.insert(page, text);
            seen.store(seq, Ordering::Release);
            i += 1;
        }
        (texts, user)
    });
    Writer { acked, handle }
}

#[test]
fn backup_under_writes_restores_into_a_verified_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    if let server::config::Database::Postgres { url, .. } = store::database_for(&data) {
        // The metadata is not in the data directory: backup says so and does nothing.
        let out = Command::new(env!("CARGO_BIN_EXE_zkwiki-server"))
            .arg("--data-dir")
            .arg(&data)
            .args(["backup"])
            .arg(dir.path().join("b"))
            .env("ZKWIKI_SERVER_DATABASE", url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("pg_dump"), "{err}");
        assert!(!dir.path().join("b").exists());
        eprintln!("backup with PostgreSQL: refused with a pointer to pg_dump, as documented");
        return;
    }
    let mut p = Process::spawn_with(&data, "warn", Stdio::null());
    let c = p.client();
    let alice = register(&c, "alice");
    let bob = register(&c, "bob");
    let mut quiet = create_wiki(&c, &alice);
    let (quiet_page, _, _) = put_page(&c, &alice, &mut quiet, "Quiet.md", "stays as it is");
    let busy_a = create_wiki(&c, &alice);
    let busy_b = create_wiki(&c, &bob);
    let fake_before = c
        .post("/api/v1/prelogin", None, &json!({"user": "nobody"}))
        .json();

    let stop = Arc::new(AtomicBool::new(false));
    let wa = start_writer(c.base.clone(), alice, busy_a, stop.clone());
    let wb = start_writer(c.base.clone(), bob, busy_b, stop.clone());
    // Let both writers get going, then back up while they write.
    while wa.acked.load(Ordering::Acquire) < 3 || wb.acked.load(Ordering::Acquire) < 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = [
        wa.acked.load(Ordering::Acquire),
        wb.acked.load(Ordering::Acquire),
    ];
    let backup_dir = dir.path().join("backups").join("one");
    let out = run(&["backup", backup_dir.to_str().unwrap()], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up 3 wiki(s)"));
    let after = [
        wa.acked.load(Ordering::Acquire),
        wb.acked.load(Ordering::Acquire),
    ];
    // A backup never overwrites: a second one into the same directory is refused.
    let again = run(&["backup", backup_dir.to_str().unwrap()], &data);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists and is not empty"));
    stop.store(true, Ordering::Release);
    let (texts_a, alice) = wa.handle.join().unwrap();
    let (texts_b, bob) = wb.handle.join().unwrap();
    assert!(after[0] > before[0] || after[1] > before[1] || texts_a.len() > 3);

    // The manifest: every wiki at a committed head between what was acknowledged before the
    // backup started and (at most one commit in flight) after it ended.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("zkwiki-backup.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["format"], 1);
    let seq_of = |w: &str| {
        manifest["wikis"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["wiki"] == w)
            .unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    let busy_ids: Vec<String> = [&alice, &bob]
        .iter()
        .map(|u| {
            let r = c.get("/api/v1/wikis", Some(&u.token)).json();
            r["wikis"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["wiki"].as_str().unwrap().to_owned())
                .find(|w| *w != quiet.wiki)
                .unwrap()
        })
        .collect();
    for (i, w) in busy_ids.iter().enumerate() {
        let seq = seq_of(w);
        assert!(
            before[i] <= seq && seq <= after[i] + 1,
            "{w}: backed up at {seq}, acknowledged {} before and {} after",
            before[i],
            after[i]
        );
    }
    assert_eq!(seq_of(&quiet.wiki), 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(backup_dir.join("server-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(p.terminate().success());

    // Restore refuses a data directory in use, then fills a fresh one.
    let refused = run(&["restore", backup_dir.to_str().unwrap()], &data);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not empty"));
    let fresh = dir.path().join("restored");
    let out = run(&["restore", backup_dir.to_str().unwrap()], &fresh);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let p2 = Process::spawn_with(&fresh, "warn", Stdio::null());
    let c2 = p2.client();
    // The server secret came along: an unknown name gets the same fake parameters.
    assert_eq!(
        c2.post("/api/v1/prelogin", None, &json!({"user": "nobody"}))
            .json(),
        fake_before
    );
    let mut checked_pages = 0;
    for (user, wikis) in [
        (&alice, vec![quiet.wiki.clone(), busy_ids[0].clone()]),
        (&bob, vec![busy_ids[1].clone()]),
    ] {
        let token = login(&c2, &user.name, "passphrase", &user.passphrase_auth);
        let listed = c2.get("/api/v1/wikis", Some(&token)).json();
        assert_eq!(listed["wikis"].as_array().unwrap().len(), wikis.len());
        for w in wikis {
            // A client's full check: keyring chain, signed state, every page against the signed
            // manifest, decrypted.
            let view = WikiView::fetch(&c2, &token, &w, &user.identity);
            assert_eq!(view.snap.state.seq, seq_of(&w));
            for page in view.snap.manifest.pages.keys() {
                let r = c2.get(
                    &format!("/api/v1/wikis/{w}/pages/{}", page.to_hex()),
                    Some(&token),
                );
                r.expect(200, "");
                let record = view.snap.open_page(&view.keys, page, &r.body).unwrap();
                let text = String::from_utf8(record.content).unwrap();
                let expected = if *page == quiet_page {
                    "stays as it is".to_owned()
                } else {
                    texts_a
                        .get(page)
                        .or_else(|| texts_b.get(page))
                        .cloned()
                        .unwrap()
                };
                assert_eq!(text, expected);
                checked_pages += 1;
            }
            check_repo(&fresh.join("wikis").join(format!("{w}.git")));
        }
    }
    // One page per commit after each genesis: every page of the backed-up heads was checked. (A
    // fixed `>= 7` needed two more writes than the loop above waits for: a backup that came
    // right after both writers' second write held only five pages.)
    let pages_at = |w: &str| seq_of(w) as usize - 1;
    assert_eq!(
        checked_pages,
        pages_at(&quiet.wiki) + pages_at(&busy_ids[0]) + pages_at(&busy_ids[1])
    );
    // The restored wiki takes writes where it left off.
    let mut alice = alice;
    alice.token = login(&c2, "alice", "passphrase", &alice.passphrase_auth);
    let mut view = WikiView::fetch(&c2, &alice.token, &quiet.wiki, &alice.identity);
    let (_, _, seq) = put_page(&c2, &alice, &mut view, "After.md", "after the restore");
    assert_eq!(seq, 3);
}
