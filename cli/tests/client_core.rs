//! The client core's rules end to end through the real `zkwiki` binary, the real server and real
//! git, played by a hostile operator (who rewrites the server's repository) and by hostile
//! members (whose modified clients speak the format directly and commit through the API):
//! forks at any distance, a folder-scoped writer outside its folder, a forged author, rewritten
//! history, records no honest client writes, paths the policy refuses, and opening a clone
//! offline with nothing but the recovery key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{Env, Operator, PASSPHRASE, Server, list_files};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::snapshot::{SeenRecord, Snapshot};
use rand_core::OsRng;
use serde_json::{Value, json};
use zkwiki_cli::api::{Api, CommitOutcome};

/// Grants an agent key (`role`, optionally a folder) on the owner's wiki; returns its file.
fn grant(owner: &Env, name: &str, role: &str, prefix: Option<&str>) -> PathBuf {
    let key = owner.path(&format!("{name}.json"));
    let mut args = vec![
        "agent",
        "grant",
        name,
        "--role",
        role,
        "--expires",
        "1h",
        "--out",
        key.to_str().unwrap(),
    ];
    if let Some(p) = prefix {
        args.extend(["--prefix", p]);
    }
    owner.ok(&args);
    key
}

/// A member's own client that speaks the format directly (no policy, no checks) and commits
/// through the server's API with its key file's token: what a modified client can do.
struct Hostile {
    identity: UserIdentity,
    api: Api,
    wiki: String,
    repo: PathBuf,
}

impl Hostile {
    fn new(server: &Server, key_file: &Path) -> Self {
        let (_, identity, _, access) = zkwiki_cli::keystore::read_key_file_full(key_file).unwrap();
        let access = access.expect("an agent key file");
        Self {
            identity,
            api: Api::new(&server.url, Some(access.token.clone())),
            repo: server.repo(&access.wiki),
            wiki: access.wiki,
        }
    }

    /// Seals a record with any path/author/kind under the key the wiki uses for `scope_path`
    /// (for a folder key: its folder) and commits it. Returns the page id.
    fn put(&self, scope_path: &str, kind: u8, path: &[u8], author: &[u8]) -> PageId {
        let op = Operator::new(self.repo.clone());
        let (chain, state, manifest, _) = op.head_bytes();
        let snap = Snapshot::verify(&chain, &state, &manifest, &SeenRecord::default()).unwrap();
        let keys = snap.keyring.unlock(&self.identity).unwrap();
        let key = keys.key_for_writing(scope_path).unwrap();
        let page = PageId::random(&mut OsRng);
        let envelope = core_crypto::envelope::hostile::seal_unchecked(
            &mut OsRng,
            &key,
            &snap.keyring.wiki,
            &page,
            kind,
            path,
            author,
            1_700_000_000_000,
            b"# written by a hostile member\n",
        );
        let mut batch = snap.begin_write();
        batch.put_sealed(page, envelope).unwrap();
        let commit = batch.finish(&self.identity).unwrap();
        let outcome = self
            .api
            .commit(&self.wiki, &client::wire::CommitRequest::of(&commit))
            .unwrap();
        assert!(matches!(outcome, CommitOutcome::Accepted { .. }));
        page
    }
}

/// The owner's identity, from an exported key file.
fn identity(env: &Env) -> UserIdentity {
    let key = env.path("owner.key");
    if !key.exists() {
        env.ok(&["key", "export", key.to_str().unwrap()]);
    }
    zkwiki_cli::keystore::read_key_file(&key).unwrap().1
}

fn seen_file(env: &Env, wiki: &str) -> String {
    std::fs::read_to_string(
        env.tmp
            .path()
            .join("data")
            .join("wikis")
            .join(wiki)
            .join("seen.json"),
    )
    .unwrap()
}

/// Starts `zkwiki mcp` and makes its first tool call (the MCP server opens the wiki at the
/// first call that needs it, not at start): whether the call succeeded, and its text.
fn mcp_starts(env: &Env, key: &Path) -> (bool, String) {
    let mut child = env
        .cmd(&["mcp", "--key", key.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Sends a message; for a request, returns its answer (Null if the server ended).
    let mut send = |msg: Value| -> Value {
        let _ = writeln!(stdin, "{msg}");
        let Some(id) = msg.get("id").cloned() else {
            return Value::Null;
        };
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                return Value::Null;
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["id"] == id
            {
                return v;
            }
        }
    };
    let init = send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}}),
    );
    assert!(init["result"].is_object(), "initialize: {init}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let call = send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "list_pages", "arguments": {}}}));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let result = &call["result"];
    (
        result.is_object() && !result["isError"].as_bool().unwrap_or(true),
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// A server that keeps a second branch of history and later serves it, `distance` states
/// beyond what alice saw: every one-shot command, a fresh clone, a pull and a freshly started
/// MCP server refuse it (exit 4, "fork"), and the seen record does not move. Once the
/// operator serves the honest branch again, alice's acknowledged write is there. (A new MCP
/// server still answers `initialize`; its first call is what refuses.)
#[test]
fn a_fork_that_jumps_ahead_is_refused_at_any_distance() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "notes");
    alice.put("Home.md", "# Home\n");
    let reader = grant(&alice, "reader", "read", None);
    let agent_env = Env::new(Some(&server));
    let (started, err) = mcp_starts(&agent_env, &reader);
    assert!(started, "{err}");
    let me = identity(&alice);
    let op = Operator::new(server.repo(&wiki));
    alice.ok(&["clone", "notes", "copy"]);
    for distance in [1usize, 2, 5] {
        let fork_base = op.head();
        alice.put("Mine.md", &format!("acknowledged before fork {distance}\n"));
        let honest = op.head();
        // The agent's session sees the honest head too (so its machine remembers it).
        assert!(mcp_starts(&agent_env, &reader).0);
        // The other branch: from the fork base, `distance` states beyond what alice saw.
        op.reset(&fork_base);
        for n in 0..=distance {
            op.extend(&me, &format!("Other{n}.md"), "another branch\n");
        }
        let seen_before = seen_file(&alice, &wiki);
        for args in [
            vec!["ls"],
            vec!["cat", "Home.md"],
            vec!["log"],
            vec!["put", "New.md", "-"],
        ] {
            let err = alice.fails(&args, 4);
            assert!(
                err.contains("fork"),
                "{args:?} at distance {distance}: {err}"
            );
        }
        let err = alice.fails(&["pull", "copy"], 4);
        assert!(err.contains("fork"), "pull: {err}");
        let err = alice.fails(&["clone", "notes", &format!("fresh{distance}")], 4);
        assert!(err.contains("fork"), "clone: {err}");
        assert!(!alice.path(&format!("fresh{distance}")).exists());
        let (started, err) = mcp_starts(&agent_env, &reader);
        assert!(
            !started && err.contains("fork"),
            "a new MCP session's first call: {err}"
        );
        assert_eq!(
            seen_file(&alice, &wiki),
            seen_before,
            "the seen record must not move"
        );
        // The honest branch again: everything works, the write is there.
        op.reset(&honest);
        assert!(
            alice
                .ok(&["cat", "Mine.md"])
                .contains(&format!("fork {distance}"))
        );
        alice.ok(&["pull", "copy"]);
        assert!(mcp_starts(&agent_env, &reader).0);
    }
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect()
}

/// An agent limited to `research/` whose client writes records claiming paths outside its
/// folder, or onto an existing page: every reader isolates them and names the agent (not the
/// author it typed), lists each real page once, clones and exports the rest, and the owner
/// removes them.
#[test]
fn a_scoped_writer_outside_its_folder_is_isolated_and_named() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    alice.put("Home.md", "# the real home\n");
    alice.put("research/x.md", "alice's research\n");
    let key = grant(&alice, "mallory", "write", Some("research/"));
    let mallory = Hostile::new(&server, &key);
    let ids = [
        mallory.put("research/a.md", 1, b"Home.md", b"alice"),
        mallory.put("research/a.md", 1, b"Design/Evil.md", b"alice"),
        mallory.put("research/a.md", 1, b"research/X.md", b"alice"),
    ];
    let run = alice.run(&["ls"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout, "Home.md\nresearch/x.md\n",
        "each real page once"
    );
    let warns = warnings(&run.stderr);
    assert_eq!(warns.len(), 3, "{}", run.stderr);
    for id in &ids {
        assert!(
            warns
                .iter()
                .any(|w| w.contains(&id.to_hex()) && w.contains("written by mallory at seq")),
            "{id}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("outside the folder"));
    assert!(run.stderr.contains("clashes with"));
    assert_eq!(alice.ok(&["cat", "Home.md"]), "# the real home\n");
    let listed = alice.json(&["ls"]);
    assert_eq!(listed["isolated"].as_array().unwrap().len(), 3);
    alice.ok(&["clone", "notes", "copy"]);
    assert_eq!(
        list_files(&alice.path("copy")),
        ["Home.md", "research/x.md"]
    );
    alice.ok(&["export", "out"]);
    // The owner removes them by id; the wiki is clean again.
    for id in &ids {
        alice.ok(&["rm", "--id", &id.to_hex()]);
    }
    let run = alice.run(&["ls"]);
    assert_eq!(
        (run.code, warnings(&run.stderr).len()),
        (0, 0),
        "{}",
        run.stderr
    );
}

/// A writer agent claims another member's name as author: history and `cat --json` name the
/// member whose key signed the version, and keep the typed author as a claim.
#[test]
fn a_forged_author_is_shown_as_a_claim() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    alice.put("Home.md", "# Home\n");
    let key = grant(&alice, "mallory", "write", None);
    let mallory = Hostile::new(&server, &key);
    mallory.put("Notes.md", 1, b"Notes.md", b"alice");
    let cat = alice.json(&["cat", "Notes.md"]);
    assert_eq!(cat["signer"], "mallory", "{cat}");
    assert_eq!(cat["author_claimed"], "alice");
    let log = alice.json(&["log", "Notes.md"]);
    assert_eq!(log["entries"][0]["signer"], "mallory", "{log}");
    let text = alice.ok(&["log", "Notes.md"]);
    assert!(
        text.contains("mallory") && text.contains("written as \"alice\""),
        "{text}"
    );
    let ls = alice.ok(&["ls", "-l"]);
    let line = ls.lines().find(|l| l.ends_with("Notes.md")).unwrap();
    assert!(
        line.contains("mallory") && !line.contains("alice"),
        "{line}"
    );
}

/// Records no honest client writes, by a whole-wiki writer's modified client: each isolated
/// with its reason and signer; `ls`, `put`, `clone` and `log` keep working (the clone's own
/// files untouched, nothing written outside it, escape sequences never printed raw); the owner
/// removes them.
#[test]
fn hostile_records_leave_the_wiki_usable() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    alice.put("Home.md", "# Home\n");
    alice.put("f.md", "# a page\n");
    alice.ok(&["clone", "notes", "copy"]);
    let key = grant(&alice, "mallory", "write", None);
    let mallory = Hostile::new(&server, &key);
    let long = format!("{}.md", "n".repeat(300));
    let evil_author = b"\x1b]0;TITLE\x07\x1b[2J";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b".zkwiki/git/state".to_vec(), "reserved"),
        (b"../../outside.md".to_vec(), "malformed"),
        (long.clone().into_bytes(), "255 bytes"),
        (b"f.md/g.md".to_vec(), "clashes"),
        (b"Escaped.md".to_vec(), ""),
    ];
    let mut ids = Vec::new();
    for (path, _) in &cases {
        ids.push(mallory.put("x.md", 1, path, evil_author));
    }
    let run = alice.run(&["ls", "-l"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'));
    for ((_, reason), id) in cases.iter().zip(&ids).take(4) {
        let w = warnings(&run.stderr)
            .into_iter()
            .find(|w| w.contains(&id.to_hex()))
            .unwrap_or_else(|| panic!("{reason}: not isolated: {}", run.stderr));
        assert!(w.contains(reason) && w.contains("mallory"), "{w}");
    }
    assert!(
        run.stdout.contains("Escaped.md"),
        "a legal path stays: {}",
        run.stdout
    );
    // Writing, logging and pulling keep working; nothing lands outside the clone.
    alice.put("Home.md", "# Home, still writable\n");
    let log = alice.ok(&["log", "-n", "3"]);
    assert!(!log.contains('\u{1b}'), "{log}");
    alice.ok(&["pull", "copy"]);
    let state = std::fs::read(alice.path("copy/.zkwiki/git/state")).unwrap();
    assert!(
        state.starts_with(b"ZKST"),
        "the clone's own file was overwritten"
    );
    assert!(!alice.tmp.path().join("outside.md").exists());
    assert_eq!(
        list_files(&alice.path("copy")),
        ["Escaped.md", "Home.md", "f.md"]
    );
    for id in &ids[..4] {
        alice.ok(&["rm", "--id", &id.to_hex()]);
    }
    assert!(warnings(&alice.run(&["ls"]).stderr).is_empty());
}

/// A history rewritten on the server (an old page version replaced, or an old state swapped)
/// is refused by `log`, by `git log -p` through `zkwiki textconv`, and by `decrypt`, which
/// verify every step back to the first state.
#[test]
fn rewritten_history_is_refused_by_log_textconv_and_decrypt() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "notes");
    for v in 1..=3 {
        alice.put("Plan.md", &format!("# Plan v{v}\n"));
    }
    let op = Operator::new(server.repo(&wiki));
    let head = op.head();
    // Rebuild the chain with the page's version 1 blob replaced by version 3's bytes, in the
    // commit that introduced it (every state unchanged, so the head still matches).
    let commits: Vec<String> = common::git(
        &op.repo,
        &["rev-list", "--first-parent", "--reverse", &head],
    )
    .lines()
    .map(str::to_owned)
    .collect();
    let latest_tree = op.tree(&head);
    let plan_page = alice.json(&["ls"])["pages"][0]["page"]
        .as_str()
        .unwrap()
        .to_owned();
    let plan_file = latest_tree
        .iter()
        .find(|(p, _)| *p == format!("pages/{plan_page}"))
        .map(|(p, oid)| (p.clone(), oid.clone()))
        .unwrap();
    let mut parent: Option<String> = None;
    for (i, c) in commits.iter().enumerate() {
        let mut files = op.tree(c);
        if i == 2 {
            for f in &mut files {
                if f.0 == plan_file.0 {
                    f.1 = plan_file.1.clone();
                }
            }
        }
        if let Some(p) = &parent {
            op.reset(p);
        }
        let new = if parent.is_none() {
            c.clone()
        } else {
            op.commit_tree(&files)
        };
        parent = Some(new);
    }
    let err = alice.fails(&["log", "Plan.md"], 4);
    assert!(err.contains("not the version that state signs"), "{err}");
    let err = alice.fails(&["clone", "notes", "copy"], 4);
    assert!(err.contains("rewritten"), "{err}");
    // A clone made before: decrypt refuses the rewritten history once it is pulled into it.
    op.reset(&head);
    alice.ok(&["clone", "notes", "copy"]);
    let rewritten = parent.unwrap();
    op.reset(&rewritten);
    let enc = alice.path("copy/.zkwiki/git");
    alice.run_in(&enc, &["fetch", "--quiet", "origin"]);
    common::git(&enc, &["reset", "--quiet", "--hard", "origin/main"]);
    let err = alice.fails(&["decrypt", enc.to_str().unwrap(), "plain"], 4);
    assert!(err.contains("rewritten"), "{err}");
    // textconv (what `git log -p` runs) refuses the rewritten old version.
    let patch = alice.run_in(&enc, &["log", "-p", "--", &plan_file.0]);
    assert!(patch.contains("history was rewritten"), "{patch}");
    assert!(
        !patch.contains("# Plan v"),
        "no version is shown as real from a rewritten history: {patch}"
    );
}

/// Paths the policy refuses are refused by every command that writes, with the reason.
#[test]
fn paths_the_policy_refuses_are_refused_when_written() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    alice.put("Home.md", "# Home\n");
    let long = format!("{}.md", "n".repeat(300));
    for (path, reason) in [
        ("notes/.git/x.md", ".git"),
        (long.as_str(), "255 bytes"),
        ("CON.md", "Windows"),
        ("invoice\u{202e}dm.exe", "invisible"),
        (".zkwiki/index", "reserved"),
    ] {
        let err = alice.fails(&["put", path, "-"], 2);
        assert!(err.contains(reason), "{path:?}: {err}");
        let err = alice.fails(&["mv", "Home.md", path], 2);
        assert!(err.contains(reason), "mv {path:?}: {err}");
    }
    // A page and a folder of one name, and names that differ only in case, clash.
    alice.put("f.md", "x\n");
    let err = alice.fails(&["put", "f.md/g.md", "-"], 2);
    assert!(err.contains("clashes"), "{err}");
    assert_eq!(alice.ok(&["ls"]), "Home.md\nf.md\n");
}

/// A clone plus the recovery key (or the passphrase) is enough, offline, on a machine that
/// never logged in: the clone carries every member's sealed identities.
#[test]
fn a_clone_and_the_recovery_key_open_the_wiki_offline() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    let recovery = std::fs::read_to_string(alice.path("recovery.txt")).unwrap();
    alice.put("Home.md", "# Home\nreadable offline\n");
    alice.ok(&["clone", "notes", "copy"]);
    server.stop();
    let fresh = Env::new(None);
    let clone = alice.path("copy");
    // No identity on this machine: the hint names the way out.
    let err = fresh.fails(&["decrypt", clone.to_str().unwrap(), "out0"], 3);
    assert!(err.contains("--recovery-key"), "{err}");
    let mut with_key = Env::new(None);
    with_key
        .vars
        .push(("ZKWIKI_RECOVERY_KEY".into(), recovery.trim().to_owned()));
    with_key.ok(&[
        "decrypt",
        "--recovery-key",
        clone.to_str().unwrap(),
        with_key.path("out").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(with_key.path("out/Home.md")).unwrap(),
        "# Home\nreadable offline\n"
    );
    // With the passphrase instead (ZKWIKI_PASSPHRASE is the test users' passphrase).
    let by_pass = Env::new(None);
    by_pass.ok(&[
        "decrypt",
        "--user",
        "alice",
        clone.to_str().unwrap(),
        by_pass.path("out").to_str().unwrap(),
    ]);
    assert!(by_pass.path("out/Home.md").exists());
    let _ = PASSPHRASE;
    // Another recovery key opens nothing.
    let mut wrong = Env::new(None);
    wrong.vars.push((
        "ZKWIKI_RECOVERY_KEY".into(),
        core_crypto::protector::RecoveryKey::make(&mut OsRng)
            .to_display()
            .to_string(),
    ));
    let err = wrong.fails(
        &[
            "decrypt",
            "--recovery-key",
            clone.to_str().unwrap(),
            wrong.path("out").to_str().unwrap(),
        ],
        3,
    );
    assert!(err.contains("opens none"), "{err}");
    let _: Value = json!(null);
}

/// Every envelope this machine kept (its blob cache) is checked against the signed manifest on
/// use: a copy that went bad, even at the right length, is dropped and fetched again, and the
/// page reads as written.
#[test]
fn a_damaged_local_copy_is_fetched_again() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    alice.put("Home.md", "# Home\n\nthe real text\n");
    assert_eq!(alice.ok(&["cat", "Home.md"]), "# Home\n\nthe real text\n");
    let blobs = list_files(&alice.tmp.path().join("data"))
        .into_iter()
        .filter(|f| f.contains("/blobs/"))
        .collect::<Vec<_>>();
    assert!(!blobs.is_empty(), "the envelopes are kept on this machine");
    for rel in &blobs {
        let file = alice.tmp.path().join("data").join(rel);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&file, &bytes).unwrap();
    }
    assert_eq!(alice.ok(&["cat", "Home.md"]), "# Home\n\nthe real text\n");
    assert!(alice.ok(&["ls"]).contains("Home.md"));
    for rel in &blobs {
        let file = alice.tmp.path().join("data").join(rel);
        if let Ok(bytes) = std::fs::read(&file) {
            assert_eq!(
                rel.rsplit('/').next().unwrap(),
                core_crypto::ids::Digest32::of(&bytes).to_hex(),
                "a kept copy is good again or gone"
            );
        }
    }
}
