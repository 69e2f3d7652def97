//! `git clone`/`fetch` over smart HTTP with a token as the password (protocol v0 and v2), the
//! repository layout a clone yields, and refused pushes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

fn git_out(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap()
}

fn url_with(base: &str, token: &str, wiki: &str) -> String {
    let host = base.strip_prefix("http://").unwrap();
    format!("http://zkwiki:{token}@{host}/git/{wiki}.git")
}

#[test]
fn clone_fetch_layout_and_refused_push() {
    let s = Server::start();
    let c = s.client();
    let alice = register(&c, "alice");
    let bob = register(&c, "bob");
    let mut view = create_wiki(&c, &alice);
    let w = view.wiki.clone();
    let (page, hash, _) = put_page(&c, &alice, &mut view, "Home.md", "# home");
    let tmp = tempfile::tempdir().unwrap();

    for (i, proto) in ["0", "2"].iter().enumerate() {
        let dest = format!("clone{i}");
        let out = git_out(
            tmp.path(),
            &[
                "-c",
                &format!("protocol.version={proto}"),
                "clone",
                &url_with(&c.base, &alice.token, &w),
                &dest,
            ],
        );
        assert!(
            out.status.success(),
            "clone v{proto}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = tmp.path().join(&dest);
        let files = git(&dir, &["ls-files"]);
        assert_eq!(
            files,
            format!("keyring/0000000001\nmanifest\npages/{page}\nstate\n")
        );
        let envelope = std::fs::read(dir.join("pages").join(page.to_hex())).unwrap();
        assert_eq!(core_crypto::ids::Digest32::of(&envelope), hash);
        // Everything a client needs to verify offline is in the clone.
        let chain = vec![std::fs::read(dir.join("keyring/0000000001")).unwrap()];
        let snap = core_crypto::snapshot::Snapshot::verify(
            &chain,
            &std::fs::read(dir.join("state")).unwrap(),
            &std::fs::read(dir.join("manifest")).unwrap(),
            &Default::default(),
        )
        .unwrap();
        let keys = snap.keyring.unlock(&alice.identity).unwrap();
        assert_eq!(
            snap.open_page(&keys, &page, &envelope).unwrap().content,
            b"# home"
        );
        assert_eq!(
            git(&dir, &["log", "--format=%s|%an"]),
            "zkwiki state 2|zkwiki\nzkwiki state 1|zkwiki\n"
        );
    }

    // Fetch a later commit.
    let dir = tmp.path().join("clone0");
    put_page(&c, &alice, &mut view, "Two.md", "two");
    let out = git_out(&dir, &["pull", "--ff-only"]);
    assert!(
        out.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(git(&dir, &["log", "-1", "--format=%s"]), "zkwiki state 3\n");

    // An agent token works as the password too.
    let t = c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&alice.token),
        &json!({"name": "ci", "role": "read", "expires_in": 600}),
    );
    let agent = t.json()["token"].as_str().unwrap().to_owned();
    let out = git_out(
        tmp.path(),
        &["clone", &url_with(&c.base, &agent, &w), "agent"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Push is refused with a clear message, and nothing changes.
    let before = git_log(&s.repo_dir(&w));
    git(
        &dir,
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit",
            "--allow-empty",
            "-qm",
            "evil",
        ],
    );
    let out = git_out(&dir, &["push", "origin", "HEAD:main"]);
    assert!(!out.status.success());
    // The refusal is in git's own protocol (an ERR packet), so git shows the reason.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("remote error: pushes are refused: zkwiki changes go through the API"),
        "{err}"
    );
    assert!(!err.contains("403"), "{err}");
    let out = git_out(&dir, &["push", "origin", "HEAD:refs/heads/other"]);
    assert!(!out.status.success());
    assert_eq!(git_log(&s.repo_dir(&w)), before);
    // Only the server's own branches: `main` and the members' sealed identities.
    let branches = git(&s.repo_dir(&w), &["branch", "--list"]);
    assert_eq!(
        branches.split_whitespace().collect::<Vec<_>>(),
        ["identities", "*", "main"],
        "{branches}"
    );
    let r = c.raw(
        "POST",
        &format!("/git/{w}.git/git-receive-pack"),
        &[],
        Some(vec![]),
    );
    r.expect(403, "forbidden");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pushes are refused")
    );
    // The advertisement answers the same for any path and without a token (nothing to learn).
    for path in [
        format!("/git/{w}.git/info/refs?service=git-receive-pack"),
        format!(
            "/git/{}.git/info/refs?service=git-receive-pack",
            "0".repeat(32)
        ),
    ] {
        let r = c.raw("GET", &path, &[], None);
        r.expect(200, "");
        assert_eq!(
            r.header("content-type"),
            Some("application/x-git-receive-pack-advertisement")
        );
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(
            body.starts_with("001f# service=git-receive-pack\n0000")
                && body[35..]
                    .starts_with(&format!("{:04x}ERR pushes are refused", body.len() - 35)),
            "{body:?}"
        );
    }

    // No token, a bad token, or someone else's wiki: no clone.
    let host = c.base.strip_prefix("http://").unwrap();
    let out = git_out(
        tmp.path(),
        &["clone", &format!("http://{host}/git/{w}.git"), "anon"],
    );
    assert!(!out.status.success());
    let r = c.raw(
        "GET",
        &format!("/git/{w}.git/info/refs?service=git-upload-pack"),
        &[],
        None,
    );
    r.expect(401, "unauthorized");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let out = git_out(
        tmp.path(),
        &["clone", &url_with(&c.base, "zks_bad", &w), "bad"],
    );
    assert!(!out.status.success());
    let out = git_out(
        tmp.path(),
        &["clone", &url_with(&c.base, &bob.token, &w), "bob"],
    );
    assert!(!out.status.success());
    assert!(!tmp.path().join("bob").join("state").exists());
}
