//! Importing a real Otterwiki repository (made by driving Otterwiki's web interface, see
//! `fixtures/make_otterwiki_fixture.py`): every page, attachment and front matter arrives byte
//! for byte, the history is replayed in order with its authors and times, renames are followed;
//! and export → import → export is identical.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Env, Server, git, list_files};

fn fixture_checkout(env: &Env) -> std::path::PathBuf {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otterwiki.bundle");
    let dir = env.tmp.path().join("otterwiki-repo");
    git(
        env.tmp.path(),
        &[
            "clone",
            "--quiet",
            "--branch",
            "main",
            bundle.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );
    dir
}

fn same_files(a: &Path, b: &Path) {
    let (fa, fb) = (list_files(a), list_files(b));
    assert_eq!(fa, fb, "file lists differ");
    for f in fa {
        assert_eq!(
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn otterwiki_import_keeps_pages_front_matter_and_history() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "imported");
    let src = fixture_checkout(&alice);
    let v = alice.json(&["import", src.to_str().unwrap()]);
    assert_eq!(v["history"], true);

    // Every file at the repository's head is a page with identical bytes.
    let out = alice.path("export");
    alice.ok(&["export", out.to_str().unwrap()]);
    let mut checkout_files = list_files(&src);
    checkout_files.retain(|f| !f.starts_with(".git"));
    assert_eq!(list_files(&out), checkout_files);
    same_files(&out, &{
        let tmp = alice.tmp.path().join("checkout-copy");
        git(
            alice.tmp.path(),
            &[
                "clone",
                "--quiet",
                src.to_str().unwrap(),
                tmp.to_str().unwrap(),
            ],
        );
        std::fs::remove_dir_all(tmp.join(".git")).unwrap();
        tmp
    });
    let engine = alice.ok(&["cat", "projects/engine.md"]);
    assert!(
        engine.starts_with(
            "---\ntitle: The Engine\ntags: [machines, history]\nstatus: review\n---\n"
        )
    );
    assert_eq!(
        alice.json(&["cat", "projects/engine/diagram.png"])["kind"],
        "attachment"
    );

    // One wiki commit per source commit, in order: compare each page's history with git's.
    let source: Vec<(String, String)> = git(&src, &["log", "--reverse", "--format=%an|%at"])
        .lines()
        .map(|l| {
            let (a, t) = l.split_once('|').unwrap();
            (a.to_owned(), t.to_owned())
        })
        .collect();
    let wiki_log = alice.json(&["log", "-n", "100"]);
    let entries = wiki_log["entries"].as_array().unwrap();
    // Newest first: the import's commits, then the wiki's title and its creation.
    assert_eq!(entries.len(), source.len() + 2);
    for (path, file) in [
        ("home.md", "home.md"),
        ("projects/engine.md", "projects/engine.md"),
        (
            "projects/notes/good ideas.md",
            "projects/notes/good ideas.md",
        ),
    ] {
        let ours = alice.json(&["log", path]);
        let ours: Vec<(String, i64)> = ours["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["author_claimed"].as_str().unwrap().to_owned(),
                    e["written_at_ms"].as_i64().unwrap() / 1000,
                )
            })
            .collect();
        let theirs: Vec<(String, i64)> =
            git(&src, &["log", "--follow", "--format=%an|%at", "--", file])
                .lines()
                .map(|l| {
                    let (a, t) = l.split_once('|').unwrap();
                    (a.to_owned(), t.parse().unwrap())
                })
                .collect();
        assert_eq!(ours, theirs, "history of {path}");
    }
    // The rename kept the page: its history shows it.
    let ideas = alice.json(&["log", "projects/notes/good ideas.md"]);
    let actions: Vec<&str> = ideas["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["changed", "renamed", "created"]);
    // The deleted page is gone but its history remains.
    alice.fails(&["cat", "scratch.md"], 6);
    assert_eq!(
        alice.json(&["log", "scratch.md"])["entries"][0]["action"],
        "removed"
    );
    // Search works over the imported pages.
    assert_eq!(
        alice.ok(&["search", "-l", "punched"]),
        "projects/notes/good ideas.md\n"
    );
}

#[test]
fn export_import_export_is_identical() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "first");
    let src = fixture_checkout(&alice);
    alice.ok(&["import", "--no-history", src.to_str().unwrap()]);
    alice.put("deep/a/b/c.md", "---\nx: 1\n---\nnested\n");
    let one = alice.path("one");
    alice.ok(&["export", one.to_str().unwrap()]);
    alice.ok(&["wiki", "create", "second"]);
    alice.ok(&["--wiki", "second", "import", one.to_str().unwrap()]);
    let two = alice.path("two");
    alice.ok(&["--wiki", "second", "export", two.to_str().unwrap()]);
    same_files(&one, &two);
    // Importing the same folder again changes nothing.
    let again = alice.json(&["--wiki", "second", "import", one.to_str().unwrap()]);
    assert_eq!(again["commits"], 0);
}
