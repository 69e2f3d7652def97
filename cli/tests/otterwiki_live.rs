//! The round trip with a real Otterwiki (2.26.1 under gunicorn, installed by `cargo xtask
//! test` into `.venv-otterwiki`, or `OTTERWIKI_VENV`): a wiki written through Otterwiki's web
//! forms over HTTP, imported, exported with `export --git` and served by a second Otterwiki
//! shows the same pages, attachment and per-page history (times, authors, e-mails, messages).
//! The one documented difference: a commit that only deletes a page keeps no author, time or
//! message in zkwiki (a removal has no record), so it comes back as its signer's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Server, git};
use serde_json::Value;

fn venv() -> PathBuf {
    std::env::var_os("OTTERWIKI_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-otterwiki"),
        PathBuf::from,
    )
}

fn python() -> PathBuf {
    let p = venv().join("bin/python");
    assert!(
        p.is_file() && venv().join("bin/gunicorn").is_file(),
        "Otterwiki is not installed at {}: run `cargo xtask install` (or `python3 -m venv \
         .venv-otterwiki && .venv-otterwiki/bin/pip install otterwiki==2.26.1 gunicorn`)",
        venv().display()
    );
    p
}

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otterwiki_http.py")
}

/// A running Otterwiki serving `repo`.
struct Otterwiki {
    child: Child,
    url: String,
}

impl Otterwiki {
    fn start(dir: &Path, repo: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let settings = dir.join("settings.cfg");
        std::fs::write(
            &settings,
            format!(
                "REPOSITORY = {repo:?}\nSECRET_KEY = 'round-trip-secret-0123456789abcdef'\n\
                 SQLALCHEMY_DATABASE_URI = 'sqlite:///{}'\nREAD_ACCESS = 'ANONYMOUS'\n\
                 WRITE_ACCESS = 'REGISTERED'\nATTACHMENT_ACCESS = 'REGISTERED'\n\
                 EMAIL_NEEDS_CONFIRMATION = False\nAUTO_APPROVAL = True\n\
                 WTF_CSRF_ENABLED = False\n",
                dir.join("users.db").display()
            ),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(venv().join("bin/gunicorn"))
            .args(["-w", "1", "-b", &format!("127.0.0.1:{port}")])
            .arg("otterwiki.server:app")
            .current_dir(dir)
            .env("OTTERWIKI_SETTINGS", &settings)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("gunicorn.log")).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        loop {
            let up = Command::new(python())
                .args([
                    "-c",
                    "import sys,urllib.request;urllib.request.urlopen(sys.argv[1],timeout=2)",
                ])
                .arg(format!("{url}/-/healthz"))
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            if up {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "Otterwiki did not start: {}",
                std::fs::read_to_string(dir.join("gunicorn.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Self { child, url }
    }

    fn drive(&self, args: &[&str]) -> String {
        let out = Command::new(python())
            .arg(driver())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "otterwiki_http.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn read(&self, pages: &[&str]) -> Value {
        let mut args = vec!["read", self.url.as_str()];
        args.extend_from_slice(pages);
        serde_json::from_str(&self.drive(&args)).unwrap()
    }
}

impl Drop for Otterwiki {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn otterwiki_to_zkwiki_to_otterwiki_keeps_pages_and_history() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "moved");
    let first_repo = alice.path("otterwiki-1/repo");
    std::fs::create_dir_all(&first_repo).unwrap();
    git(&first_repo, &["init", "-q", "-b", "main"]);
    let first = Otterwiki::start(&alice.path("otterwiki-1"), &first_repo);
    first.drive(&["write", &first.url]);

    let v = alice.json(&["import", first_repo.to_str().unwrap()]);
    assert_eq!(v["history"], true);
    // Otterwiki's own wikilink order became the wiki's setting.
    assert_eq!(v["wikilink_style"], "label|target");
    assert_eq!(v["skipped"], 0);

    let out = alice.path("exported");
    let e = alice.json(&["export", "--git", out.to_str().unwrap()]);
    let second = Otterwiki::start(&alice.path("otterwiki-2"), &out);

    let pages = ["Home", "Projects/Engine", "Projects/Notes/Good Ideas"];
    let (a, b) = (first.read(&pages), second.read(&pages));
    for page in pages {
        assert_eq!(a["pages"][page], b["pages"][page], "{page}");
    }
    assert_eq!(a["attachment"], b["attachment"]);
    assert_eq!(
        a["pages"]["Projects/Engine"]["history"][1]["message"],
        "Engine notes\n\nWith front matter."
    );

    // The wiki-wide changelog: equal but for the deletion, which comes back as its signer's.
    let log = |v: &Value| -> Vec<Value> { v["changelog"].as_array().unwrap().clone() };
    let (la, lb) = (log(&a), log(&b));
    // Otterwiki's first commit and the ten the browser made.
    assert_eq!((la.len(), lb.len()), (11, 11));
    assert_eq!(e["commits"].as_u64().unwrap() as usize, lb.len());
    for (x, y) in la.iter().zip(&lb) {
        if x["message"] == "Remove scratch" {
            assert_eq!(y["author"], "alice");
            assert!(
                y["message"].as_str().unwrap().ends_with(": scratch.md"),
                "{y}"
            );
        } else {
            assert_eq!(x, y);
        }
    }
    // The same files at the head, and a repository git itself finds sound.
    git(&out, &["fsck", "--strict"]);
    assert_eq!(
        git(&first_repo, &["ls-tree", "-r", "--name-only", "HEAD"]),
        git(&out, &["ls-tree", "-r", "--name-only", "HEAD"])
    );
}
