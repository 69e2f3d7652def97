//! Agents end to end, against the real server and the real `zkwiki` binary: delegated keys,
//! cryptographically read-only access, folder scopes, revocation, rotation, and the MCP server
//! driven by a plain JSON-RPC client over stdio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use common::{Env, Operator, Server};
use core_crypto::Error;
use core_crypto::envelope::{PageKind, PageRecord, read_header};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::keyring::{Keyring, verify_chain};
use core_crypto::state::{Manifest, StateDraft};
use data_encoding::BASE64;
use rand_core::OsRng;
use serde_json::{Value, json};

/// A `zkwiki mcp` child speaking JSON-RPC on its stdio.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Mcp {
    fn start(env: &Env, key: &Path) -> Self {
        let mut child = env
            .cmd(&["mcp", "--key", key.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn zkwiki mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut m = Self {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        let init = m.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "zkwiki-test", "version": "0" }
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "zkwiki", "{init}");
        m.notify("notifications/initialized");
        m
    }

    fn send(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method }));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "zkwiki mcp closed its output while {method} was pending"
            );
            let v: Value = serde_json::from_str(&line).expect("JSON-RPC line");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    /// Calls a tool; returns (is_error, text).
    fn call(&mut self, tool: &str, args: Value) -> (bool, String) {
        let v = self.request("tools/call", json!({ "name": tool, "arguments": args }));
        let result = &v["result"];
        assert!(result.is_object(), "tools/call {tool} answered {v}");
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (result["isError"].as_bool().unwrap_or(false), text)
    }

    fn ok(&mut self, tool: &str, args: Value) -> Value {
        let (err, text) = self.call(tool, args.clone());
        assert!(!err, "{tool}({args}) failed: {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn identity_of(key_file: &Path) -> UserIdentity {
    let v: Value = serde_json::from_slice(&std::fs::read(key_file).unwrap()).unwrap();
    let secret = BASE64
        .decode(v["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    UserIdentity::from_secret_bytes(&secret).unwrap()
}

/// Keyring chain, state, manifest and tree (`path → blob id`) of the server's `main`.
type Head = (Vec<Vec<u8>>, Vec<u8>, Vec<u8>, Vec<(String, String)>);

/// The server's current keyring chain, state and manifest, read from its repository on disk.
fn head_of(op: &Operator) -> Head {
    let tree = op.tree("refs/heads/main");
    let mut chain: Vec<(String, Vec<u8>)> = tree
        .iter()
        .filter(|(p, _)| p.starts_with("keyring/"))
        .map(|(p, oid)| (p.clone(), op.blob(oid)))
        .collect();
    chain.sort();
    let get = |name: &str| op.blob(&tree.iter().find(|(p, _)| p == name).unwrap().1);
    (
        chain.into_iter().map(|(_, b)| b).collect(),
        get("state"),
        get("manifest"),
        tree,
    )
}

fn blob_of_page(op: &Operator, tree: &[(String, String)], id: &PageId) -> Vec<u8> {
    let path = format!("pages/{id}");
    op.blob(&tree.iter().find(|(p, _)| *p == path).unwrap().1)
}

fn page_id_of(env: &Env, path: &str) -> PageId {
    let ls = env.json(&["ls"]);
    let hex = ls["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("{path} not listed: {ls}"))["page"]
        .as_str()
        .unwrap()
        .to_owned();
    PageId::from_hex(&hex).unwrap()
}

#[test]
fn agents_read_write_scope_revoke_rotate_over_mcp() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "team");
    alice.put("Home.md", "# Home\nWelcome, see [[research/a]].\n");
    alice.put(
        "research/a.md",
        "---\ntags: [ml]\n---\n# Findings\nquantum gravel\n",
    );
    alice.put("private/secret.md", "# Salaries\nconfidential numbers\n");

    let writer_key = alice.path("writer.json");
    let reader_key = alice.path("reader.json");
    let scoped_key = alice.path("scoped.json");
    let grant = |name: &str, role: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--json",
            "agent",
            "grant",
            name,
            "--role",
            role,
            "--expires",
            "1h",
            "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_str(&alice.ok(&args)).unwrap();
        assert_eq!(v["agent"], name);
        v
    };
    grant("scribe", "write", &writer_key, &[]);
    grant("reviewer", "read", &reader_key, &[]);
    let g = grant("researcher", "read", &scoped_key, &["--prefix", "research"]);
    assert_eq!(g["prefix"], "research/");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&writer_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "agent key files are private");
    }
    let members = alice.json(&["member", "list"]);
    assert_eq!(members["members"].as_array().unwrap().len(), 4, "{members}");

    // --- A writer agent over MCP: list, read, write, append, search, history, lost-update guard.
    let agent_env = Env::new(Some(&server));
    let mut mcp = Mcp::start(&agent_env, &writer_key);
    let tools = mcp.request("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "list_pages",
        "read_page",
        "write_page",
        "append_page",
        "search",
        "page_history",
    ] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
    let pages = mcp.ok("list_pages", json!({}));
    let paths: Vec<&str> = pages
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["Home.md", "private/secret.md", "research/a.md"]);
    let home = mcp.ok("read_page", json!({ "path": "Home.md" }));
    assert!(home["content"].as_str().unwrap().contains("Welcome"));
    let base = home["version"].as_str().unwrap().to_owned();
    let w = mcp.ok(
        "write_page",
        json!({ "path": "notes/agent.md", "content": "# Agent notes\nfirst\n" }),
    );
    assert!(w["seq"].as_u64().unwrap() > 0);
    mcp.ok(
        "append_page",
        json!({ "path": "notes/agent.md", "text": "second" }),
    );
    assert_eq!(
        alice.ok(&["cat", "notes/agent.md"]),
        "# Agent notes\nfirst\nsecond",
        "alice reads what the agent wrote"
    );
    // Someone changes Home.md after the agent read it: the agent's stale write is refused.
    alice.put("Home.md", "# Home\nchanged by alice\n");
    let (err, text) = mcp.call(
        "write_page",
        json!({ "path": "Home.md", "content": "agent version", "base_version": base }),
    );
    assert!(err && text.contains("changed since you read it"), "{text}");
    assert_eq!(alice.ok(&["cat", "Home.md"]), "# Home\nchanged by alice\n");
    let hits = mcp.ok("search", json!({ "query": "gravel" }));
    assert_eq!(hits[0]["path"], "research/a.md", "{hits}");
    let history = mcp.ok("page_history", json!({ "path": "notes/agent.md" }));
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history[0]["signer"], "scribe", "{history}");
    assert_eq!(history[0]["author_claimed"], "scribe");
    // History shows which agent wrote what: the state signer is the agent's own key.
    let log = alice.json(&["log"]);
    assert!(log.to_string().contains("scribe"), "{log}");
    drop(mcp);

    // --- A reader agent: reads, but its writes fail, and forced through, other clients reject.
    let mut mcp = Mcp::start(&agent_env, &reader_key);
    assert!(
        mcp.ok("read_page", json!({ "path": "private/secret.md" }))["content"]
            .as_str()
            .unwrap()
            .contains("confidential")
    );
    let (err, text) = mcp.call("write_page", json!({ "path": "x.md", "content": "nope" }));
    assert!(err && text.contains("read-only"), "{text}");
    drop(mcp);
    // Force it as a colluding server would: the reader signs a state and the operator commits it.
    let op = Operator::new(server.repo(&wiki));
    let (chain, state_bytes, manifest_bytes, tree) = head_of(&op);
    let keyring = verify_chain(chain.iter().map(Vec::as_slice)).unwrap();
    let reader = identity_of(&reader_key);
    let keys = keyring.unlock(&reader).unwrap();
    let state = core_crypto::state::WikiState::decode(&state_bytes).unwrap();
    let mut manifest = Manifest::decode(&manifest_bytes).unwrap();
    let forged_id = PageId::random(&mut OsRng);
    let record = PageRecord {
        kind: PageKind::Markdown,
        path: "forged.md".into(),
        author: "alice".into(),
        written_at_ms: 0,
        content: b"forged by a reader".to_vec(),
    };
    let key = keys.key_for_writing("forged.md").unwrap();
    let blob =
        core_crypto::envelope::seal_page(&mut OsRng, &key, &keyring.wiki, &forged_id, &record)
            .unwrap();
    manifest.pages.insert(
        forged_id,
        core_crypto::state::ManifestEntry::for_envelope(&blob).unwrap(),
    );
    let forged_state = StateDraft::next(&state, &keyring, &manifest).sign(&reader);
    let mut files: Vec<(String, String)> = tree
        .iter()
        .filter(|(p, _)| p != "state" && p != "manifest")
        .cloned()
        .collect();
    files.push(("state".into(), op.write_blob(forged_state.as_bytes())));
    files.push(("manifest".into(), op.write_blob(&manifest.encode())));
    files.push((format!("pages/{forged_id}"), op.write_blob(&blob)));
    let good_head = op.head();
    op.commit_tree(&files);
    let stderr = alice.fails(&["ls"], 4);
    assert!(stderr.contains("reader may not write"), "{stderr}");
    op.reset(&good_head);

    // --- A folder-scoped agent: its folder only, even given the raw blobs.
    let mut mcp = Mcp::start(&agent_env, &scoped_key);
    let listed = mcp.ok("list_pages", json!({}));
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["research/a.md"],
        "a scoped agent sees only its folder"
    );
    assert!(
        mcp.ok("read_page", json!({ "path": "research/a.md" }))["content"]
            .as_str()
            .unwrap()
            .contains("quantum gravel")
    );
    let (err, _) = mcp.call("read_page", json!({ "path": "private/secret.md" }));
    assert!(err);
    drop(mcp);
    let (chain, _, manifest_bytes, tree) = head_of(&op);
    let keyring = verify_chain(chain.iter().map(Vec::as_slice)).unwrap();
    let scoped = keyring.unlock(&identity_of(&scoped_key)).unwrap();
    let manifest = Manifest::decode(&manifest_bytes).unwrap();
    let secret_id = page_id_of(&alice, "private/secret.md");
    let secret_blob = blob_of_page(&op, &tree, &secret_id);
    assert_eq!(
        manifest.pages[&secret_id]
            .check_envelope(&secret_blob)
            .unwrap(),
        read_header(&secret_blob).unwrap()
    );
    assert!(matches!(
        scoped.key_for(&read_header(&secret_blob).unwrap()),
        Err(Error::NoAccess(_))
    ));
    let research_id = page_id_of(&alice, "research/a.md");
    let research_blob = blob_of_page(&op, &tree, &research_id);
    let k = scoped
        .key_for(&read_header(&research_blob).unwrap())
        .unwrap();
    let opened =
        core_crypto::envelope::open_page(k, &keyring.wiki, &research_id, &research_blob).unwrap();
    assert_eq!(opened.path, "research/a.md");

    // --- Revocation: token refused at once; nothing written afterwards opens with the old key.
    let old_keyring: Keyring = keyring.clone();
    let reader_old_keys = old_keyring.unlock(&reader).unwrap();
    let report = alice.json(&["agent", "revoke", "reviewer"]);
    assert_eq!(report["revoked"], "reviewer");
    assert!(report["new_epoch"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["could_have_read"]["scope"], "whole wiki");
    assert!(
        report["could_have_read"]["current_pages"].as_u64().unwrap() >= 4,
        "{report}"
    );
    let stderr = agent_env.fails(&["--key-file", reader_key.to_str().unwrap(), "ls"], 3);
    assert!(
        stderr.contains("refused")
            || stderr.contains("unauthorized")
            || stderr.contains("Authentication"),
        "{stderr}"
    );
    alice.put(
        "after.md",
        "# After revocation\nthe reviewer must not read this\n",
    );
    let (chain, _, _, tree) = head_of(&op);
    let keyring = verify_chain(chain.iter().map(Vec::as_slice)).unwrap();
    assert!(matches!(keyring.unlock(&reader), Err(Error::NoAccess(_))));
    let after_blob = blob_of_page(&op, &tree, &page_id_of(&alice, "after.md"));
    assert!(matches!(
        reader_old_keys.key_for(&read_header(&after_blob).unwrap()),
        Err(Error::NoAccess(_))
    ));

    // --- Expired tokens are refused.
    let short_key = alice.path("short.json");
    grant("brief", "read", &short_key, &[]);
    // The expiry is the server's: wait out a one-second grant.
    let tiny_key = alice.path("tiny.json");
    let mut args = vec![
        "agent",
        "grant",
        "tiny",
        "--role",
        "read",
        "--expires",
        "1s",
        "--out",
    ];
    args.push(tiny_key.to_str().unwrap());
    alice.ok(&args);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    agent_env.fails(&["--key-file", tiny_key.to_str().unwrap(), "ls"], 3);
    agent_env.ok(&["--key-file", short_key.to_str().unwrap(), "ls"]);

    // --- Rotation with re-encryption: every page under the new epoch; the revoked key opens none.
    let out = alice.json(&["rotate", "--reencrypt"]);
    let epoch = out["epoch"].as_u64().unwrap() as u32;
    let (chain, _, manifest_bytes, tree) = head_of(&op);
    let keyring = verify_chain(chain.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(keyring.epoch, epoch);
    let manifest = Manifest::decode(&manifest_bytes).unwrap();
    for (id, entry) in &manifest.pages {
        assert_eq!(
            entry.epoch, epoch,
            "page {id} still under epoch {}",
            entry.epoch
        );
        let blob = blob_of_page(&op, &tree, id);
        assert!(
            reader_old_keys
                .key_for(&read_header(&blob).unwrap())
                .is_err()
        );
    }
    for p in [
        "Home.md",
        "research/a.md",
        "private/secret.md",
        "notes/agent.md",
        "after.md",
    ] {
        alice.ok(&["cat", p]);
    }
    // The scoped agent still reads its folder after the rotation.
    let mut mcp = Mcp::start(&agent_env, &scoped_key);
    assert!(
        mcp.ok("read_page", json!({ "path": "research/a.md" }))["content"]
            .as_str()
            .unwrap()
            .contains("quantum")
    );
}

/// Grants `name` an agent key with `role` on alice's wiki; returns the key file.
fn grant_agent(owner: &Env, name: &str, role: &str) -> std::path::PathBuf {
    let key = owner.path(&format!("{name}.json"));
    owner.ok(&[
        "agent",
        "grant",
        name,
        "--role",
        role,
        "--expires",
        "1h",
        "--out",
        key.to_str().unwrap(),
    ]);
    key
}

fn content(v: &Value) -> &str {
    v["content"].as_str().unwrap()
}

// The MCP session keeps the verified head and decrypted pages between calls. These tests drive
// one session across changes made elsewhere, so a cache that served stale or unverified data
// would fail them.

#[test]
fn mcp_session_sees_other_writers_and_its_own_writes() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "team");
    alice.put("Home.md", "# Home\nfirst\n");
    let key = grant_agent(&alice, "scribe", "write");
    let agent_env = Env::new(Some(&server));
    let mut mcp = Mcp::start(&agent_env, &key);

    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "Home.md" }))),
        "# Home\nfirst\n"
    );
    // Same page again, unchanged wiki: same answer.
    let again = mcp.ok("read_page", json!({ "path": "Home.md" }));
    assert_eq!(content(&again), "# Home\nfirst\n");
    let v1 = again["version"].as_str().unwrap().to_owned();

    // Another client writes between two calls: the session sees it, in every tool.
    alice.put("Home.md", "# Home\nsecond, by alice\n");
    alice.put("news.md", "# News\nzeppelin sighted\n");
    let home = mcp.ok("read_page", json!({ "path": "Home.md" }));
    assert_eq!(content(&home), "# Home\nsecond, by alice\n");
    assert_ne!(home["version"].as_str().unwrap(), v1);
    let listed = mcp.ok("list_pages", json!({}));
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let hits = mcp.ok("search", json!({ "query": "zeppelin" }));
    assert_eq!(hits[0]["path"], "news.md", "{hits}");
    // A write based on the version read before alice's change is still refused.
    let (err, text) = mcp.call(
        "write_page",
        json!({ "path": "Home.md", "content": "stale", "base_version": v1 }),
    );
    assert!(err && text.contains("changed since you read it"), "{text}");

    // The session's own writes: read back at once, and by others.
    mcp.ok(
        "write_page",
        json!({ "path": "notes/a.md", "content": "# A\nby the agent\n" }),
    );
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "notes/a.md" }))),
        "# A\nby the agent\n"
    );
    let base = home["version"].as_str().unwrap();
    mcp.ok(
        "write_page",
        json!({ "path": "Home.md", "content": "# Home\nthird, by the agent\n", "base_version": base }),
    );
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "Home.md" }))),
        "# Home\nthird, by the agent\n"
    );
    mcp.ok(
        "append_page",
        json!({ "path": "notes/a.md", "text": "more" }),
    );
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "notes/a.md" }))),
        "# A\nby the agent\nmore"
    );
    assert_eq!(alice.ok(&["cat", "notes/a.md"]), "# A\nby the agent\nmore");

    // Others write on top of the session's own head: seen again.
    alice.put("notes/a.md", "# A\nrewritten by alice\n");
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "notes/a.md" }))),
        "# A\nrewritten by alice\n"
    );
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "Home.md" }))),
        "# Home\nthird, by the agent\n"
    );
}

#[test]
fn mcp_session_refuses_a_rollback_instead_of_serving_stale_pages() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "team");
    alice.put("plan.md", "# Plan\nv1\n");
    let key = grant_agent(&alice, "reviewer", "read");
    let agent_env = Env::new(Some(&server));
    let mut mcp = Mcp::start(&agent_env, &key);
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "plan.md" }))),
        "# Plan\nv1\n"
    );
    let op = Operator::new(server.repo(&wiki));
    let before = op.head();
    alice.put("plan.md", "# Plan\nv2\n");
    let good = op.head();
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "plan.md" }))),
        "# Plan\nv2\n"
    );

    // The operator rolls the wiki back between two calls. Forget this machine's seen record
    // too, so only what the session itself verified can catch it.
    op.reset(&before);
    let seen = agent_env
        .tmp
        .path()
        .join("data/wikis")
        .join(&wiki)
        .join("seen.json");
    std::fs::remove_file(&seen).unwrap();
    for tool in ["read_page", "list_pages", "read_page"] {
        let (err, text) = mcp.call(tool, json!({ "path": "plan.md" }));
        assert!(err, "{tool} served data after a rollback: {text}");
        assert!(text.contains("rollback detected"), "{tool}: {text}");
    }

    // Put back, the wiki reads again in the same session.
    op.reset(&good);
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "plan.md" }))),
        "# Plan\nv2\n"
    );

    // A fork: the operator rolls back and lets a writer who forgot what she saw write other
    // states from there. The new head is two sequences past the one the session verified, so
    // neither the sequence nor the successor's link gives it away: only walking back does.
    op.reset(&before);
    // She forgets everything her machine verified: the seen record and the kept head.
    let hers = alice.tmp.path().join("data/wikis").join(&wiki);
    std::fs::remove_file(hers.join("seen.json")).unwrap();
    std::fs::remove_file(hers.join("head.bin")).unwrap();
    alice.put("plan.md", "# Plan\nanother v2\n");
    alice.put("plan.md", "# Plan\nanother v3\n");
    alice.put("plan.md", "# Plan\nanother v4\n");
    let (err, text) = mcp.call("read_page", json!({ "path": "plan.md" }));
    assert!(err, "a fork was served: {text}");
    assert!(text.contains("fork detected"), "{text}");
}

#[test]
fn mcp_session_is_refused_after_revocation() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "team");
    alice.put("a.md", "# A\nfor agents\n");
    let key = grant_agent(&alice, "reviewer", "read");
    let agent_env = Env::new(Some(&server));
    let mut mcp = Mcp::start(&agent_env, &key);
    assert!(content(&mcp.ok("read_page", json!({ "path": "a.md" }))).contains("for agents"));
    alice.json(&["agent", "revoke", "reviewer"]);
    for tool in ["read_page", "list_pages", "search"] {
        let (err, text) = mcp.call(tool, json!({ "path": "a.md", "query": "agents" }));
        assert!(err, "{tool} answered after the revocation: {text}");
        assert!(text.contains("refused"), "{tool}: {text}");
    }
}
