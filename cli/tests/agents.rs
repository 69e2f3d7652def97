//! Agents end to end, against the real server and the real `zkwiki` binary: delegated keys,
//! cryptographically read-only access, folder scopes, revocation, rotation, and the MCP server
//! driven by a plain JSON-RPC client over stdio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
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

/// How a test talks to `zkwiki mcp`: its stdio, or its streamable-HTTP endpoint.
enum Transport {
    Stdio {
        stdin: ChildStdin,
        stdout: BufReader<ChildStdout>,
    },
    Http {
        url: String,
        token: String,
        agent: ureq::Agent,
    },
}

/// A `zkwiki mcp` child driven by a plain JSON-RPC client. Every successful tool result is
/// checked against the tool's `outputSchema` from `tools/list`.
struct Mcp {
    child: Child,
    transport: Transport,
    next_id: u64,
    schemas: BTreeMap<String, Value>,
}

/// An HTTP client that reports 4xx/5xx as answers, not errors.
fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// An HTTP answer.
struct Answer {
    status: u16,
    content_type: String,
    www_authenticate: String,
    body: String,
}

/// One POST to the MCP endpoint, with `Authorization: Bearer TOKEN` when given.
fn http_post(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &Value) -> Answer {
    let mut req = agent
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-06-18");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send(body.to_string().as_bytes()).expect("HTTP request");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, www_authenticate) = (header("content-type"), header("www-authenticate"));
    Answer {
        status: resp.status().as_u16(),
        content_type,
        www_authenticate,
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// Sends `request` as it is to the server of `url`; returns the whole answer.
fn raw_http(url: &str, request: &str) -> String {
    use std::io::Read;
    let authority = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The JSON-RPC message with `id` in an HTTP answer (JSON, or server-sent events).
fn message_in(ctype: &str, body: &str, id: u64) -> Value {
    if ctype.starts_with("text/event-stream") {
        for line in body.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && v["id"] == json!(id)
            {
                return v;
            }
        }
        panic!("no answer to request {id} in the event stream: {body}");
    }
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

const INIT: &str = r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"zkwiki-test","version":"0"}}"#;

impl Mcp {
    /// `zkwiki mcp --key KEY` over stdio, initialized.
    fn start(env: &Env, key: &Path) -> Self {
        let mut child = env
            .cmd(&["mcp", "--key", key.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn zkwiki mcp");
        let transport = Transport::Stdio {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
        };
        Self::initialized(child, transport)
    }

    /// `zkwiki mcp --key KEY --http 127.0.0.1:0 EXTRA…`, initialized over HTTP with the token it
    /// printed (or `token`, when it reads one from a file). Returns the client and stderr lines.
    fn start_http(env: &Env, key: &Path, extra: &[&str], token: Option<&str>) -> (Self, String) {
        let mut args = vec![
            "mcp",
            "--key",
            key.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut child = env
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zkwiki mcp --http");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut url = None;
        let mut printed = None;
        let mut said = String::new();
        while url.is_none() || (token.is_none() && printed.is_none()) {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("zkwiki mcp --http ended before serving: {said}");
            }
            said.push_str(&line);
            if let Some(u) = line
                .trim()
                .strip_prefix("zkwiki mcp: serving MCP over streamable HTTP at ")
            {
                url = Some(u.to_owned());
            }
            if let Some((_, t)) = line.trim().split_once("): ")
                && line.contains("bearer token")
            {
                printed = Some(t.to_owned());
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        let transport = Transport::Http {
            url: url.unwrap(),
            token: token.map(str::to_owned).or(printed).unwrap(),
            agent: http_agent(),
        };
        (Self::initialized(child, transport), said)
    }

    fn initialized(child: Child, transport: Transport) -> Self {
        let mut m = Self {
            child,
            transport,
            next_id: 1,
            schemas: BTreeMap::new(),
        };
        let init = m.request("initialize", serde_json::from_str(INIT).unwrap());
        assert_eq!(init["result"]["serverInfo"]["name"], "zkwiki", "{init}");
        assert!(
            init["result"]["capabilities"]["resources"].is_object(),
            "{init}"
        );
        m.notify("notifications/initialized");
        let tools = m.request("tools/list", json!({}));
        for t in tools["result"]["tools"].as_array().unwrap() {
            m.schemas.insert(
                t["name"].as_str().unwrap().to_owned(),
                t["outputSchema"].clone(),
            );
        }
        m
    }

    fn url(&self) -> &str {
        match &self.transport {
            Transport::Http { url, .. } => url,
            Transport::Stdio { .. } => panic!("not over HTTP"),
        }
    }

    fn send(&mut self, msg: &Value) -> Option<Value> {
        match &mut self.transport {
            Transport::Stdio { stdin, .. } => {
                writeln!(stdin, "{msg}").unwrap();
                stdin.flush().unwrap();
                None
            }
            Transport::Http { url, token, agent } => {
                let a = http_post(agent, url, Some(token), msg);
                match msg["id"].as_u64() {
                    Some(id) => {
                        assert_eq!(a.status, 200, "{msg} answered {}: {}", a.status, a.body);
                        Some(message_in(&a.content_type, &a.body, id))
                    }
                    None => {
                        assert!(
                            a.status == 202 || a.status == 200,
                            "{msg}: {} {}",
                            a.status,
                            a.body
                        );
                        None
                    }
                }
            }
        }
    }

    fn notify(&mut self, method: &str) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method }));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if let Some(answer) = self.send(&msg) {
            return answer;
        }
        let Transport::Stdio { stdout, .. } = &mut self.transport else {
            unreachable!()
        };
        loop {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).unwrap();
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

    /// Calls a tool; returns the whole result.
    fn call_result(&mut self, tool: &str, args: Value) -> Value {
        let v = self.request("tools/call", json!({ "name": tool, "arguments": args }));
        let result = &v["result"];
        assert!(result.is_object(), "tools/call {tool} answered {v}");
        result.clone()
    }

    /// Calls a tool; returns (is_error, text).
    fn call(&mut self, tool: &str, args: Value) -> (bool, String) {
        let result = self.call_result(tool, args);
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (result["isError"].as_bool().unwrap_or(false), text)
    }

    /// Calls a tool that must succeed; returns its `structuredContent`, after checking it
    /// against the tool's output schema and that the text block carries the same JSON.
    fn ok(&mut self, tool: &str, args: Value) -> Value {
        let result = self.call_result(tool, args.clone());
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert!(
            !result["isError"].as_bool().unwrap_or(false),
            "{tool}({args}) failed: {text}"
        );
        let structured = result["structuredContent"].clone();
        assert!(
            structured.is_object(),
            "{tool}: no structuredContent: {result}"
        );
        let from_text: Value = serde_json::from_str(text).expect("the text block is JSON");
        assert_eq!(
            from_text, structured,
            "{tool}: text and structuredContent differ"
        );
        let schema = &self.schemas[tool];
        if let Err(e) = conforms(schema, schema, &structured, "$") {
            panic!(
                "{tool}: structuredContent breaks its outputSchema: {e}\n{structured}\n{schema}"
            );
        }
        structured
    }
}

/// Whether `v` conforms to `schema` (the parts of JSON Schema that schemars emits: `$ref` into
/// `$defs`, `type` (one or several), `const`, `enum`, `oneOf`/`anyOf`, `properties`, `required`,
/// `items`, `minimum`).
fn conforms(schema: &Value, root: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/$defs/").ok_or(format!("{at}: ref {r}"))?;
        return conforms(&root["$defs"][name], root, v, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array()
            && !alts.iter().any(|s| conforms(s, root, v, at).is_ok())
        {
            return Err(format!("{at}: {v} matches no {key} alternative"));
        }
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        return Err(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} not in {schema}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |t: &str| match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            return Err(format!("{at}: {v} is not of type {t}"));
        }
    }
    if let Some(min) = schema["minimum"].as_f64()
        && v.as_f64().is_some_and(|x| x < min)
    {
        return Err(format!("{at}: {v} < {min}"));
    }
    if let Some(obj) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                return Err(format!("{at}: required {r} missing"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, s) in props {
                if let Some(x) = obj.get(k) {
                    conforms(s, root, x, &format!("{at}.{k}"))?;
                }
            }
            if schema["additionalProperties"] == json!(false)
                && let Some(extra) = obj.keys().find(|k| !props.contains_key(*k))
            {
                return Err(format!("{at}: unexpected {extra}"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            conforms(items, root, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
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
    let paths: Vec<&str> = pages["pages"]
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
    assert_eq!(hits["hits"][0]["path"], "research/a.md", "{hits}");
    assert!(
        hits["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("gravel"),
        "{hits}"
    );
    let history = mcp.ok("page_history", json!({ "path": "notes/agent.md" }));
    let versions = &history["versions"];
    assert_eq!(versions.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(versions[0]["signer"], "scribe", "{history}");
    assert_eq!(versions[0]["author_claimed"], "scribe");
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
    let listed: Vec<&str> = listed["pages"]
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
    assert_eq!(listed["pages"].as_array().unwrap().len(), 2, "{listed}");
    let hits = mcp.ok("search", json!({ "query": "zeppelin" }));
    assert_eq!(hits["hits"][0]["path"], "news.md", "{hits}");
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

// --- MCP as agents expect it: tool metadata, structured results, resources, the new tools, a
// scoped agent's history, starting without the wiki server, and the HTTP transport.

/// Every tool: name, title, readOnlyHint, destructiveHint, idempotentHint.
const TOOLS: [(&str, &str, bool, bool, bool); 9] = [
    ("list_pages", "List pages", true, false, true),
    ("read_page", "Read a page", true, false, true),
    ("write_page", "Write a page", false, true, true),
    ("append_page", "Append to a page", false, false, false),
    ("move_page", "Move a page", false, false, true),
    ("delete_page", "Delete a page", false, true, true),
    ("search", "Search the wiki", true, false, true),
    ("page_history", "Page history", true, false, true),
    ("list_backlinks", "List backlinks", true, false, true),
];

fn paths_of(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn mcp_tools_are_annotated_and_pages_are_resources_moved_deleted_and_backlinked() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "team");
    alice.put(
        "Home.md",
        "# Home\nSee [[Plan]] and [the notes](projects/notes.md).\n",
    );
    alice.put("projects/Plan.md", "# Plan\nship it\n");
    alice.put(
        "projects/notes.md",
        "# Notes\nBack to [the plan](Plan.md \"t\") and [[projects/Plan|the plan]].\n![d](../files/diagram.png)\n",
    );
    alice.put(
        "other.md",
        "# Other\nnot links: `[[Plan]]` and\n```\n[[Plan]]\n```\n",
    );
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary".to_vec();
    let r = alice.run_with_input(&["put", "files/diagram.png"], &png);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key = grant_agent(&alice, "scribe", "write");
    let agent_env = Env::new(Some(&server));
    let mut mcp = Mcp::start(&agent_env, &key);

    // --- Tool metadata: title, annotations, an object output schema.
    let listed = mcp.request("tools/list", json!({}));
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), TOOLS.len(), "{listed}");
    for (name, title, read_only, destructive, idempotent) in TOOLS {
        let t = tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {listed}"));
        assert_eq!(t["title"], title, "{t}");
        let a = &t["annotations"];
        assert_eq!(a["title"], title, "{t}");
        assert_eq!(a["readOnlyHint"], read_only, "{name}: {a}");
        assert_eq!(a["destructiveHint"], destructive, "{name}: {a}");
        assert_eq!(a["idempotentHint"], idempotent, "{name}: {a}");
        assert_eq!(a["openWorldHint"], false, "{name}: {a}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert_eq!(t["outputSchema"]["type"], "object", "{t}");
        assert!(
            t["outputSchema"]["properties"]
                .as_object()
                .is_some_and(|p| !p.is_empty()),
            "{t}"
        );
    }

    // --- Resources: the pages, with URIs, names, titles, MIME types and sizes.
    let list = mcp.request("resources/list", json!({}));
    let resources = list["result"]["resources"].as_array().unwrap();
    let names: Vec<&str> = resources
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Home.md",
            "files/diagram.png",
            "other.md",
            "projects/Plan.md",
            "projects/notes.md"
        ],
        "{list}"
    );
    let res = |name: &str| resources.iter().find(|r| r["name"] == name).unwrap();
    let plan_uri = format!("zkwiki://{wiki}/projects/Plan.md");
    let png_uri = format!("zkwiki://{wiki}/files/diagram.png");
    assert_eq!(res("projects/Plan.md")["uri"], plan_uri.as_str());
    assert_eq!(res("projects/Plan.md")["title"], "Plan");
    assert_eq!(res("projects/Plan.md")["mimeType"], "text/markdown");
    assert_eq!(res("projects/Plan.md")["size"], "# Plan\nship it\n".len());
    assert_eq!(res("files/diagram.png")["uri"], png_uri.as_str());
    assert_eq!(res("files/diagram.png")["title"], "diagram.png");
    assert_eq!(res("files/diagram.png")["mimeType"], "image/png");
    assert_eq!(res("files/diagram.png")["size"], png.len());
    let templates = mcp.request("resources/templates/list", json!({}));
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        format!("zkwiki://{wiki}/{{+path}}"),
        "{templates}"
    );

    let md = mcp.request("resources/read", json!({ "uri": plan_uri }));
    let c = &md["result"]["contents"][0];
    assert_eq!(c["uri"], plan_uri.as_str(), "{md}");
    assert_eq!(c["mimeType"], "text/markdown");
    assert_eq!(c["text"], "# Plan\nship it\n");
    let bin = mcp.request("resources/read", json!({ "uri": png_uri }));
    let c = &bin["result"]["contents"][0];
    assert_eq!(c["mimeType"], "image/png", "{bin}");
    assert!(c.get("text").is_none(), "{bin}");
    assert_eq!(
        BASE64
            .decode(c["blob"].as_str().unwrap().as_bytes())
            .unwrap(),
        png
    );
    let missing = mcp.request(
        "resources/read",
        json!({ "uri": format!("zkwiki://{wiki}/nope.md") }),
    );
    assert_eq!(missing["error"]["code"], -32002, "{missing}");
    let foreign = mcp.request(
        "resources/read",
        json!({ "uri": format!("zkwiki://{}/Home.md", "ab".repeat(16)) }),
    );
    assert!(foreign["error"].is_object(), "{foreign}");
    let not_ours = mcp.request("resources/read", json!({ "uri": "file:///etc/passwd" }));
    assert!(not_ours["error"].is_object(), "{not_ours}");

    // --- read_page: an attachment as base64; a markdown path without `.md`.
    let att = mcp.ok("read_page", json!({ "path": "files/diagram.png" }));
    assert_eq!(att["kind"], "attachment");
    assert_eq!(att["encoding"], "base64");
    assert_eq!(
        BASE64
            .decode(att["content"].as_str().unwrap().as_bytes())
            .unwrap(),
        png
    );
    assert_eq!(att["uri"], png_uri.as_str());
    let plan = mcp.ok("read_page", json!({ "path": "projects/Plan" }));
    assert_eq!(plan["path"], "projects/Plan.md");
    assert_eq!(plan["kind"], "markdown");
    assert_eq!(plan["encoding"], "utf-8");

    // --- Backlinks: wiki links and relative links, not code; an attachment's too.
    let bl = mcp.ok("list_backlinks", json!({ "path": "projects/Plan.md" }));
    assert_eq!(bl["path"], "projects/Plan.md");
    assert_eq!(
        bl["pages"],
        json!([
            { "path": "Home.md", "links": 1 },
            { "path": "projects/notes.md", "links": 2 }
        ]),
        "{bl}"
    );
    let bl = mcp.ok("list_backlinks", json!({ "path": "files/diagram.png" }));
    assert_eq!(paths_of(&bl, "pages"), ["projects/notes.md"]);
    let bl = mcp.ok("list_backlinks", json!({ "path": "other.md" }));
    assert_eq!(bl["pages"], json!([]));

    // --- write_page is idempotent: the same text again writes nothing.
    let same = mcp.ok(
        "write_page",
        json!({ "path": "projects/Plan.md", "content": "# Plan\nship it\n" }),
    );
    assert_eq!(same["changed"], false, "{same}");
    assert_eq!(same["version"], plan["version"]);
    let changed = mcp.ok(
        "write_page",
        json!({ "path": "projects/Plan.md", "content": "# Plan\nshipped\n" }),
    );
    assert_eq!(changed["changed"], true);
    assert!(changed["seq"].as_u64() > same["seq"].as_u64(), "{changed}");
    assert_ne!(changed["version"], plan["version"]);

    // --- move_page: same page, new path (`.md` kept), history follows, links resolve anew.
    let mv = mcp.ok(
        "move_page",
        json!({ "from": "projects/Plan.md", "to": "archive/Plan" }),
    );
    assert_eq!(mv["from"], "projects/Plan.md");
    assert_eq!(mv["to"], "archive/Plan.md");
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "archive/Plan.md" }))),
        "# Plan\nshipped\n"
    );
    let (err, text) = mcp.call("read_page", json!({ "path": "projects/Plan.md" }));
    assert!(err && text.contains("no page"), "{text}");
    assert_eq!(alice.ok(&["cat", "archive/Plan.md"]), "# Plan\nshipped\n");
    let history = mcp.ok("page_history", json!({ "path": "archive/Plan.md" }));
    let signers: Vec<&str> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["signer"].as_str().unwrap())
        .collect();
    assert_eq!(signers, ["scribe", "scribe", "alice"], "{history}");
    // `[[Plan]]` still names the one page called Plan; notes' links named its old path.
    let bl = mcp.ok("list_backlinks", json!({ "path": "archive/Plan.md" }));
    assert_eq!(paths_of(&bl, "pages"), ["Home.md"], "{bl}");
    let (err, text) = mcp.call("move_page", json!({ "from": "other.md", "to": "Home.md" }));
    assert!(err && text.contains("already exists"), "{text}");

    // --- delete_page: the lost-update guard, then gone for everyone.
    let base = mcp.ok("read_page", json!({ "path": "other.md" }))["version"].clone();
    alice.put("other.md", "# Other\nchanged by alice\n");
    let (err, text) = mcp.call(
        "delete_page",
        json!({ "path": "other.md", "base_version": base }),
    );
    assert!(err && text.contains("changed since you read it"), "{text}");
    assert_eq!(
        alice.ok(&["cat", "other.md"]),
        "# Other\nchanged by alice\n"
    );
    let del = mcp.ok("delete_page", json!({ "path": "other.md" }));
    assert_eq!(del["path"], "other.md");
    assert!(del["seq"].as_u64().unwrap() > changed["seq"].as_u64().unwrap());
    assert_ne!(alice.run(&["cat", "other.md"]).code, 0);
    let pages = mcp.ok("list_pages", json!({}));
    assert!(!paths_of(&pages, "pages").contains(&"other.md".to_owned()));
    let (err, text) = mcp.call("delete_page", json!({ "path": "other.md" }));
    assert!(err && text.contains("no page"), "{text}");
    // A deleted page's history is still found by the path it had: the deletion first.
    let history = mcp.ok("page_history", json!({ "path": "other.md" }));
    assert_eq!(history["path"], "other.md", "{history}");
    let versions = history["versions"].as_array().unwrap();
    assert!(versions.len() >= 3, "{history}");
    assert_eq!(versions[0]["version"], Value::Null, "{history}");
    assert_eq!(versions[0]["signer"], "scribe", "{history}");
    let (err, text) = mcp.call("page_history", json!({ "path": "never-was.md" }));
    assert!(err && text.contains("no page"), "{text}");
    drop(mcp);

    // --- A reader key moves and deletes nothing.
    let reader = grant_agent(&alice, "reviewer", "read");
    let mut mcp = Mcp::start(&agent_env, &reader);
    for (tool, args) in [
        ("delete_page", json!({ "path": "Home.md" })),
        ("move_page", json!({ "from": "Home.md", "to": "Start.md" })),
    ] {
        let (err, text) = mcp.call(tool, args);
        assert!(err && text.contains("read-only"), "{tool}: {text}");
    }
    assert!(alice.ok(&["cat", "Home.md"]).contains("See [[Plan]]"));
}

#[test]
fn mcp_history_of_a_scoped_agent_marks_the_versions_it_never_held_keys_for() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "team");
    alice.put("research/a.md", "# A\nv1\n");
    alice.put("research/a.md", "# A\nv2\n");
    alice.put("Home.md", "# Home\nsee [[research/a]]\n");
    alice.put("research/b.md", "# B\nsee [a](a.md)\n");
    // The grant re-encrypts research/ under the folder's scope: v1 and v2 stay under the
    // whole-wiki key, which the scoped agent never gets.
    let scoped = alice.path("scoped.json");
    alice.ok(&[
        "agent",
        "grant",
        "researcher",
        "--role",
        "read",
        "--prefix",
        "research",
        "--expires",
        "1h",
        "--out",
        scoped.to_str().unwrap(),
    ]);
    alice.put("research/a.md", "# A\nv3\n");
    let whole = grant_agent(&alice, "reviewer", "read");
    let agent_env = Env::new(Some(&server));

    let mut mcp = Mcp::start(&agent_env, &scoped);
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "research/a.md" }))),
        "# A\nv3\n"
    );
    let h = mcp.ok("page_history", json!({ "path": "research/a.md" }));
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 4, "v3, the re-encryption, v2, v1: {h}");
    let seqs: Vec<u64> = versions
        .iter()
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {h}");
    for v in &versions[..2] {
        assert!(v["unreadable"].is_null(), "{h}");
        assert_eq!(v["author_claimed"], "alice", "{h}");
        assert!(v["written_at_ms"].is_i64(), "{h}");
    }
    for v in &versions[2..] {
        assert!(
            v["unreadable"].as_str().is_some_and(|w| !w.is_empty()),
            "an old version under a key it never held must be marked: {h}"
        );
        assert!(
            v["author_claimed"].is_null() && v["written_at_ms"].is_null(),
            "{h}"
        );
        assert_eq!(
            v["signer"], "alice",
            "the signer is in the signed state: {h}"
        );
        assert_eq!(v["version"].as_str().map(str::len), Some(16), "{h}");
    }
    // Backlinks come only from pages it can read: research/b.md, not Home.md.
    let bl = mcp.ok("list_backlinks", json!({ "path": "research/a.md" }));
    assert_eq!(paths_of(&bl, "pages"), ["research/b.md"], "{bl}");
    drop(mcp);

    // A whole-wiki reader sees the same versions, every one readable, and both backlinks.
    let mut mcp = Mcp::start(&agent_env, &whole);
    let all = mcp.ok("page_history", json!({ "path": "research/a.md" }));
    let all_versions = all["versions"].as_array().unwrap();
    assert_eq!(all_versions.len(), 4, "{all}");
    for (a, s) in all_versions.iter().zip(versions) {
        assert!(a["unreadable"].is_null(), "{all}");
        assert_eq!(a["seq"], s["seq"]);
        assert_eq!(a["version"], s["version"]);
    }
    let bl = mcp.ok("list_backlinks", json!({ "path": "research/a.md" }));
    assert_eq!(paths_of(&bl, "pages"), ["Home.md", "research/b.md"], "{bl}");
}

#[test]
fn mcp_starts_without_the_wiki_server_fails_per_call_and_recovers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_on(data.path(), "127.0.0.1:0");
    let listen = server.url.trim_start_matches("http://").to_owned();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "team");
    alice.put("a.md", "# A\nhello\n");
    let key = grant_agent(&alice, "reviewer", "read");
    let agent_env = Env::new(Some(&server));
    server.stop();

    // initialize and tools/list answer with the wiki server down (Mcp::start checks both).
    let mut mcp = Mcp::start(&agent_env, &key);
    assert_eq!(mcp.schemas.len(), TOOLS.len());
    for _ in 0..2 {
        let (err, text) = mcp.call("read_page", json!({ "path": "a.md" }));
        assert!(err, "{text}");
        assert!(
            text.contains("wiki server is unavailable") && text.contains("try the call again"),
            "{text}"
        );
    }
    let r = mcp.request("resources/list", json!({}));
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unavailable")),
        "{r}"
    );

    // Back: the next call opens the wiki.
    let server = Server::start_on(data.path(), &listen);
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "a.md" }))),
        "# A\nhello\n"
    );
    // Down again after the wiki was opened: the call fails, the verified session stays.
    server.stop();
    let (err, text) = mcp.call("list_pages", json!({}));
    assert!(err && text.contains("unavailable"), "{text}");
    let server = Server::start_on(data.path(), &listen);
    alice.put("a.md", "# A\nagain\n");
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "a.md" }))),
        "# A\nagain\n"
    );
    drop(mcp);

    // A refused token: the server still starts, and each call says why.
    alice.json(&["agent", "revoke", "reviewer"]);
    let mut mcp = Mcp::start(&agent_env, &key);
    let (err, text) = mcp.call("list_pages", json!({}));
    assert!(err && text.contains("refused"), "{text}");
    drop(server);
}

#[test]
fn mcp_over_http_needs_the_bearer_token_and_stays_on_loopback() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "team");
    alice.put("Home.md", "# Home\nover HTTP\n");
    let key = grant_agent(&alice, "scribe", "write");
    let agent_env = Env::new(Some(&server));

    let (mut mcp, said) = Mcp::start_http(&agent_env, &key, &[], None);
    let url = mcp.url().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    let Transport::Http { token, .. } = &mcp.transport else {
        unreachable!()
    };
    let token = token.clone();
    assert!(token.len() >= 40, "a generated token is long: {token}");
    assert_eq!(said.matches(&token).count(), 1, "printed once: {said}");

    // The tools and resources over HTTP, with structured results.
    assert_eq!(
        content(&mcp.ok("read_page", json!({ "path": "Home.md" }))),
        "# Home\nover HTTP\n"
    );
    let w = mcp.ok(
        "write_page",
        json!({ "path": "notes/http", "content": "# Via HTTP\n" }),
    );
    assert_eq!(w["path"], "notes/http.md");
    assert_eq!(alice.ok(&["cat", "notes/http.md"]), "# Via HTTP\n");
    let r = mcp.request(
        "resources/read",
        json!({ "uri": format!("zkwiki://{wiki}/Home.md") }),
    );
    assert_eq!(
        r["result"]["contents"][0]["text"], "# Home\nover HTTP\n",
        "{r}"
    );

    // Without the token, or with another: 401 before MCP sees the request.
    let agent = http_agent();
    let init: Value = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": serde_json::from_str::<Value>(INIT).unwrap()
    });
    let write = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "write_page", "arguments": { "path": "intruder.md", "content": "x" } }
    });
    for (bad, what) in [
        (None, "no token"),
        (Some(format!("{token}x")), "a longer token"),
        (Some(token[..token.len() - 1].to_owned()), "a shorter token"),
        (
            Some("not-the-token-at-all-0123456789".to_owned()),
            "another token",
        ),
    ] {
        for msg in [&init, &write] {
            let a = http_post(&agent, &url, bad.as_deref(), msg);
            assert_eq!(a.status, 401, "{what}: {}", a.body);
            assert!(a.www_authenticate.starts_with("Bearer"), "{what}");
            assert!(a.body.contains("unauthorized"), "{}", a.body);
        }
    }
    assert_ne!(
        alice.run(&["cat", "intruder.md"]).code,
        0,
        "nothing was written"
    );
    let a = http_post(&agent, &url, Some(&token), &init);
    assert_eq!(a.status, 200, "{}", a.body);
    // With the token: a page elsewhere naming this server (DNS rebinding) is refused; there
    // is no event stream to GET.
    let body = init.to_string();
    let post = |host: &str| {
        raw_http(
            &url,
            &format!(
                "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert!(post("evil.example").starts_with("HTTP/1.1 403"));
    let here = url.trim_start_matches("http://").trim_end_matches("/mcp");
    assert!(post(here).starts_with("HTTP/1.1 200"), "{}", post(here));
    let get = raw_http(
        &url,
        &format!(
            "GET /mcp HTTP/1.1\r\nHost: {here}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(get.starts_with("HTTP/1.1 405"), "{get}");

    // A token from a file: not printed; the generated token of another server is refused.
    let file = agent_env.path("token.txt");
    std::fs::write(&file, "0123456789abcdef-from-a-file\n").unwrap();
    let (mut mcp2, said2) = Mcp::start_http(
        &agent_env,
        &key,
        &["--http-token-file", file.to_str().unwrap()],
        Some("0123456789abcdef-from-a-file"),
    );
    assert!(
        !said2.contains("from-a-file") && !said2.contains("bearer token"),
        "{said2}"
    );
    assert_eq!(
        paths_of(&mcp2.ok("list_pages", json!({})), "pages").len(),
        2
    );
    assert_eq!(
        http_post(&agent, mcp2.url(), Some(&token), &init).status,
        401
    );

    // Refused at start: a non-loopback address (unless asked for) and a short token.
    let k = key.to_str().unwrap();
    let r = agent_env.run(&["mcp", "--key", k, "--http", "0.0.0.0:0"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not a loopback address"), "{}", r.stderr);
    std::fs::write(&file, "short\n").unwrap();
    let r = agent_env.run(&[
        "mcp",
        "--key",
        k,
        "--http",
        "127.0.0.1:0",
        "--http-token-file",
        file.to_str().unwrap(),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("at least 16"), "{}", r.stderr);
    let r = agent_env.run(&[
        "mcp",
        "--key",
        k,
        "--http-token-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "--http-token-file needs --http: {}", r.stderr);
}
