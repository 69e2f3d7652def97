//! Shared test harness: a real server on 127.0.0.1 with a random port and a temp data dir (in
//! this process, or the built binary), a blocking HTTP client, and client-side crypto helpers
//! that build accounts, wikis and signed commits with core-crypto exactly as clients do.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod procs;
pub mod store;
pub mod writes;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::{Digest32, PageId};
use core_crypto::kdf::KdfParams;
use core_crypto::keyring::{Keyring, KeyringDraft, MemberKind, WikiKeys};
use core_crypto::protector::{ProtectorKey, ProtectorKind, RecoveryKey};
use core_crypto::snapshot::{PreparedCommit, SeenRecord, Snapshot};
use core_crypto::state::{Manifest, WikiState};
use data_encoding::{BASE64, HEXLOWER};
use rand_core::OsRng;
use serde_json::{Value, json};
use server::config::Config;

/// A server running in this process on its own runtime thread.
pub struct Server {
    pub base: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = Self::start_in(&data, tune);
        s._dir = Some(dir);
        s
    }

    pub fn start_in(data: &Path, tune: impl FnOnce(&mut Config)) -> Self {
        // `ZKWIKI_TEST_LOG=debug` shows the in-process servers' logs (internal errors, …).
        if let Ok(filter) = std::env::var("ZKWIKI_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let mut cfg = Config::new(data);
        cfg.login.per_ip = 10_000;
        cfg.login.per_user = 1_000;
        cfg.login.per_pair = 1_000;
        cfg.login.register_per_ip = 10_000;
        cfg.database = store::database_for(data);
        tune(&mut cfg);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = rt.block_on(server::AppState::open(cfg)).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                server::serve(listener, state, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        Self {
            base: format!("http://{addr}"),
            data: data.to_owned(),
            _dir: None,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub fn repo_dir(&self, wiki: &str) -> PathBuf {
        self.data.join("wikis").join(format!("{wiki}.git"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The built `zkwiki-server` binary, running as a child process.
pub struct Process {
    pub base: String,
    pub child: Child,
}

impl Process {
    pub fn spawn(data: &Path) -> Self {
        Self::spawn_with(data, "warn", Stdio::inherit())
    }

    /// Spawns with a log filter and a destination for the logs (stderr).
    pub fn spawn_with(data: &Path, rust_log: &str, stderr: impl Into<Stdio>) -> Self {
        Self::spawn_args(data, rust_log, stderr, &[])
    }

    /// Spawns with extra command-line arguments.
    pub fn spawn_args(
        data: &Path,
        rust_log: &str,
        stderr: impl Into<Stdio>,
        extra: &[&str],
    ) -> Self {
        // `option_env!`: the examples include this module too, without the binary.
        let Some(bin) = option_env!("CARGO_BIN_EXE_zkwiki-server") else {
            panic!("the server binary is only known to integration tests");
        };
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra);
        if let server::config::Database::Postgres { url, .. } = store::database_for(data) {
            cmd.env("ZKWIKI_SERVER_DATABASE", url);
        }
        Self::spawn_command(cmd, rust_log, stderr)
    }

    /// Spawns a prepared command (e.g. the binary under a shell that lowers its limits), which
    /// must print the server's first line.
    pub fn spawn_command(mut cmd: Command, rust_log: &str, stderr: impl Into<Stdio>) -> Self {
        let mut child = cmd
            .env_remove("ZKWIKI_SERVER_WEB_DIR")
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("zkwiki-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self { base, child }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
    /// The body with the error's `request_id` taken out (it differs on every request), for
    /// comparing two error answers; asserts the id was there.
    pub fn without_request_id(&self) -> Value {
        let mut v = self.json();
        let id = v["error"]
            .as_object_mut()
            .and_then(|e| e.remove("request_id"));
        assert!(
            id.as_ref()
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()),
            "an error body names its request: {v}"
        );
        assert_eq!(
            id.as_ref().and_then(Value::as_str),
            self.header("x-request-id"),
            "the body and the X-Request-Id header name the same request"
        );
        v
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the status and, for errors, the JSON error code.
    pub fn expect(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        if !code.is_empty() {
            assert_eq!(
                self.code(),
                code,
                "body: {}",
                String::from_utf8_lossy(&self.body)
            );
            assert!(
                self.json()["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
        self
    }
}

/// A blocking client for one server.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Self {
            base: base.to_owned(),
            agent,
        }
    }

    /// Any request; `body` is sent as is. Transport errors are returned as `Err`.
    pub fn try_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Resp, ureq::Error> {
        let url = format!("{}{}", self.base, path);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (n, v) in headers {
            builder = builder.header(*n, *v);
        }
        let result = match body {
            Some(b) => self.agent.run(builder.body(b).unwrap()),
            None => self.agent.run(builder.body(()).unwrap()),
        };
        let mut resp = result?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(200 * 1024 * 1024)
            .read_to_vec()?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        self.try_raw(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let bytes = body.map(|b| {
            headers.push(("Content-Type", "application/json"));
            serde_json::to_vec(b).unwrap()
        });
        self.raw(method, path, &headers, bytes)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, None)
    }
    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call("POST", path, token, Some(body))
    }
    pub fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("DELETE", path, token, None)
    }
}

/// One gauge or counter from the metrics text (labels included in `name`).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the metrics:\n{text}"))
}

/// Waits until the upload budget holds `bytes` (a stalled upload's reservation is taken when its
/// headers reach the server, a moment after the client wrote them).
pub fn wait_for_budget_in_use(c: &Client, bytes: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = String::from_utf8(c.get("/metrics", None).body).unwrap();
        let in_use = metric(&metrics, "zkwiki_upload_budget_bytes_in_use");
        if in_use != 0.0 {
            assert_eq!(in_use, bytes as f64, "{metrics}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never reserved its body:\n{metrics}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A request over a raw socket whose body is written by another thread while the answer is read,
/// for bodies the server refuses before reading them (a blocking client would see a broken pipe).
/// Returns the status and the body of the answer.
pub fn send_oversized(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    for _attempt in 0..3 {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut w = stream.try_clone().unwrap();
        let payload = body.clone();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(&payload);
        });
        let mut answer = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        let _ = writer.join();
        let text = String::from_utf8_lossy(&answer).into_owned();
        let Some((head, rest)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        // The body may be chunked or sized; take the JSON object in it.
        let json = rest
            .find('{')
            .and_then(|a| rest.rfind('}').map(|b| &rest[a..=b]))
            .unwrap_or("null");
        return (status, serde_json::from_str(json).unwrap_or(Value::Null));
    }
    panic!("no answer to the oversized request");
}

/// A TCP connection to `base`'s server from the loopback source address `src` (127.0.0.2, …),
/// with reads and writes bounded by `timeout`.
pub fn connect_from(src: &str, base: &str, timeout: Duration) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{src}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect_timeout(&addr.into(), timeout).unwrap();
    let stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    stream
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one answer (head, then a `content-length` body) from `stream`.
pub fn read_answer(stream: &mut std::net::TcpStream) -> std::io::Result<RawAnswer> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf[head_end + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut answer = RawAnswer {
        status,
        head,
        body: Vec::new(),
    };
    let len: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while body.len() < len {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&byte[..n]);
    }
    body.truncate(len);
    answer.body = body;
    Ok(answer)
}

/// One request from the loopback source address `src` on a fresh connection (closed after).
pub fn request_from(
    src: &str,
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawAnswer {
    use std::io::Write;
    let mut stream = connect_from(src, base, Duration::from_secs(20));
    let host = base.strip_prefix("http://").unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_answer(&mut stream).unwrap()
}

/// A JSON POST from the loopback source address `src`.
pub fn post_from(
    src: &str,
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> RawAnswer {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    request_from(
        src,
        base,
        "POST",
        path,
        &h,
        &serde_json::to_vec(body).unwrap(),
    )
}

pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    BASE64.decode(v.as_str().unwrap().as_bytes()).unwrap()
}

/// A registered, logged-in user.
pub struct User {
    pub name: String,
    pub identity: UserIdentity,
    pub token: String,
    pub passphrase_auth: String,
    pub recovery_auth: String,
}

/// The registration body and auth secrets for a fresh identity (cheap KDF: the client floor).
pub fn registration(name: &str, identity: &UserIdentity) -> (Value, String, String) {
    let rng = &mut OsRng;
    let kdf = KdfParams::make(rng, KdfParams::FLOOR).unwrap();
    let pk = ProtectorKey::derive_from_passphrase(&kdf, b"correct horse").unwrap();
    let sealed = identity
        .seal(
            rng,
            &pk.derive_seal_key(),
            ProtectorKind::Passphrase,
            name,
            Some(&kdf),
        )
        .unwrap();
    let rk = RecoveryKey::make(rng).derive_protector_key();
    let rec_sealed = identity
        .seal(
            rng,
            &rk.derive_seal_key(),
            ProtectorKind::Recovery,
            name,
            None,
        )
        .unwrap();
    let public = identity.public();
    let auth = pk.derive_auth_secret().to_hex().to_string();
    let rec_auth = rk.derive_auth_secret().to_hex().to_string();
    let body = json!({
        "user": name,
        "x25519": b64(&public.x25519),
        "ed25519": b64(&public.ed25519),
        "kdf": b64(&kdf.encode()),
        "auth": auth,
        "sealed_identity": b64(&sealed),
        "recovery": {"auth": rec_auth, "sealed_identity": b64(&rec_sealed)},
        "proof": b64(&identity.registration_proof(name).unwrap()),
    });
    (body, auth, rec_auth)
}

pub fn register(c: &Client, name: &str) -> User {
    let identity = UserIdentity::make(&mut OsRng);
    let (body, auth, rec_auth) = registration(name, &identity);
    c.post("/api/v1/register", None, &body).expect(201, "");
    let token = login(c, name, "passphrase", &auth);
    User {
        name: name.to_owned(),
        identity,
        token,
        passphrase_auth: auth,
        recovery_auth: rec_auth,
    }
}

pub fn login(c: &Client, name: &str, protector: &str, auth: &str) -> String {
    let r = c.post(
        "/api/v1/login",
        None,
        &json!({"user": name, "protector": protector, "auth": auth}),
    );
    r.expect(200, "");
    r.json()["token"].as_str().unwrap().to_owned()
}

/// A client's view of one wiki: its verified snapshot, keys and keyring chain.
pub struct WikiView {
    pub wiki: String,
    pub chain: Vec<Vec<u8>>,
    pub snap: Snapshot,
    pub keys: WikiKeys,
}

impl WikiView {
    /// Rebuilds the view from a `head` JSON object (a `409` body or `GET /head`).
    pub fn rebase(&mut self, head: &Value, identity: &UserIdentity) {
        let state = unb64(&head["state"]);
        let manifest = unb64(&head["manifest"]);
        let keyring = self.snap.keyring.hash();
        self.snap = Snapshot::verify(&self.chain, &state, &manifest, &SeenRecord::default())
            .expect("head verifies");
        if self.snap.keyring.hash() != keyring {
            self.keys = self.snap.keyring.unlock(identity).unwrap();
        }
    }

    /// Fetches the keyring chain and head, and verifies them.
    pub fn fetch(c: &Client, token: &str, wiki: &str, identity: &UserIdentity) -> Self {
        let kr = c.get(&format!("/api/v1/wikis/{wiki}/keyring"), Some(token));
        kr.expect(200, "");
        let chain: Vec<Vec<u8>> = kr.json()["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(unb64)
            .collect();
        let head = c.get(&format!("/api/v1/wikis/{wiki}/head"), Some(token));
        head.expect(200, "");
        let h = head.json();
        let snap = Snapshot::verify(
            &chain,
            &unb64(&h["state"]),
            &unb64(&h["manifest"]),
            &SeenRecord::default(),
        )
        .unwrap();
        let keys = snap.keyring.unlock(identity).unwrap();
        Self {
            wiki: wiki.to_owned(),
            chain,
            snap,
            keys,
        }
    }
}

/// Creates a wiki owned by `user` and returns the owner's view.
pub fn create_wiki(c: &Client, user: &User) -> WikiView {
    let rng = &mut OsRng;
    let genesis = KeyringDraft::genesis(rng, &user.identity, &user.name, MemberKind::Person)
        .unwrap()
        .sign(rng, &user.identity)
        .unwrap();
    let snap = Snapshot::genesis(genesis.clone(), &user.identity).unwrap();
    let r = c.post(
        "/api/v1/wikis",
        Some(&user.token),
        &json!({
            "keyring": b64(genesis.as_bytes()),
            "state": b64(snap.state.as_bytes()),
            "manifest": b64(&snap.manifest.encode()),
        }),
    );
    r.expect(201, "");
    let wiki = r.json()["wiki"].as_str().unwrap().to_owned();
    assert_eq!(wiki, genesis.wiki.to_hex());
    let keys = snap.keyring.unlock(&user.identity).unwrap();
    WikiView {
        wiki,
        chain: vec![genesis.as_bytes().to_vec()],
        snap,
        keys,
    }
}

pub fn record(path: &str, text: &str) -> PageRecord {
    PageRecord {
        kind: PageKind::Markdown,
        path: path.into(),
        author: "test".into(),
        written_at_ms: 1_700_000_000_000,
        note: Default::default(),
        content: text.as_bytes().to_vec(),
    }
}

/// A signed commit putting one page.
pub fn prepare_put(
    view: &WikiView,
    identity: &UserIdentity,
    page: PageId,
    path: &str,
    text: &str,
) -> PreparedCommit {
    let mut batch = view.snap.begin_write();
    batch
        .put(&mut OsRng, &view.keys, page, &record(path, text))
        .unwrap();
    batch.finish(identity).unwrap()
}

/// The JSON body of a commit.
pub fn commit_body(c: &PreparedCommit) -> Value {
    json!({
        "state": b64(c.state.as_bytes()),
        "manifest": b64(&c.manifest.encode()),
        "blobs": c.blobs.iter().map(|b| b64(b)).collect::<Vec<_>>(),
        "keyring": c.keyring.as_ref().map(|k| b64(k.as_bytes())),
    })
}

/// Posts a commit; on success advances the view.
pub fn send_commit(c: &Client, token: &str, view: &mut WikiView, commit: PreparedCommit) -> Resp {
    let r = c.post(
        &format!("/api/v1/wikis/{}/commits", view.wiki),
        Some(token),
        &commit_body(&commit),
    );
    if r.status == 200 {
        if let Some(k) = &commit.keyring {
            view.chain.push(k.as_bytes().to_vec());
        }
        let snap = commit.into_snapshot(&view.snap);
        view.snap = snap;
    }
    r
}

/// Writes one page and returns (page id, envelope hash, new seq).
pub fn put_page(
    c: &Client,
    user: &User,
    view: &mut WikiView,
    path: &str,
    text: &str,
) -> (PageId, Digest32, u64) {
    let page = PageId::random(&mut OsRng);
    put_page_id(c, user, view, page, path, text)
}

pub fn put_page_id(
    c: &Client,
    user: &User,
    view: &mut WikiView,
    page: PageId,
    path: &str,
    text: &str,
) -> (PageId, Digest32, u64) {
    let commit = prepare_put(view, &user.identity, page, path, text);
    let hash = commit.manifest.pages[&page].hash;
    let r = send_commit(c, &user.token, view, commit);
    r.expect(200, "");
    (page, hash, r.json()["seq"].as_u64().unwrap())
}

/// Runs `git` with arguments, returning stdout (panics on failure).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git log` of a bare repo as `seq commit` lines, newest first.
pub fn git_log(repo: &Path) -> Vec<String> {
    git(repo, &["log", "--format=%s", "main"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Checks a repository: `git fsck --strict` clean, and the sequence 1..=n without gaps, each
/// commit's state carrying its sequence. Returns the head state.
pub fn check_repo(repo: &Path) -> (WikiState, Manifest) {
    git(repo, &["fsck", "--strict", "--no-dangling"]);
    let subjects = git_log(repo);
    let n = subjects.len() as u64;
    for (i, s) in subjects.iter().enumerate() {
        assert_eq!(
            s,
            &format!("zkwiki state {}", n - i as u64),
            "gap or disorder in git log"
        );
    }
    let state = WikiState::decode(&git_show(repo, "main:state")).unwrap();
    let manifest = Manifest::decode(&git_show(repo, "main:manifest")).unwrap();
    assert_eq!(state.seq, n);
    (state, manifest)
}

pub fn git_show(repo: &Path, spec: &str) -> Vec<u8> {
    let out = Command::new("git")
        .args(["cat-file", "blob", spec])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "git cat-file {spec}");
    out.stdout
}

/// The SHA-256 of the state at every sequence (index `seq - 1`), read with libgit2 along the
/// first-parent chain of `main`.
pub fn state_hashes(repo: &Path) -> Vec<Digest32> {
    let r = git2::Repository::open_bare(repo).unwrap();
    let mut commit = r
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let mut out = Vec::new();
    loop {
        let tree = commit.tree().unwrap();
        let blob = r.find_blob(tree.get_name("state").unwrap().id()).unwrap();
        out.push(Digest32::of(blob.content()));
        match commit.parent(0) {
            Ok(p) => commit = p,
            Err(_) => break,
        }
    }
    out.reverse();
    out
}

pub fn keyring_of(view: &WikiView) -> &Keyring {
    &view.snap.keyring
}

pub fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}
