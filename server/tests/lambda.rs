//! The Lambda entry point. In process: API Gateway HTTP API / function URL events (payload 2.0),
//! parsed by `lambda_http` exactly as the Lambda runtime hands them over, converted by
//! `server::lambda::to_app_request` and answered by the real app over a real data directory and
//! database (health, registration, login, an authenticated call, the event's source address as
//! the client address of the login limits). And for real: the built binary as a function under
//! `cargo-lambda`'s emulator of the Lambda control plane, driven through function URLs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::procs::free_port;
use common::*;
use core_crypto::identity::UserIdentity;
use rand_core::OsRng;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A payload-2.0 event as a function URL sends it.
fn event(method: &str, path: &str, token: Option<&str>, body: Option<&Value>, ip: &str) -> String {
    let mut headers = json!({"host": "abc.lambda-url.eu-west-1.on.aws", "user-agent": "test"});
    if let Some(t) = token {
        headers["authorization"] = json!(format!("Bearer {t}"));
    }
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": ip, "userAgent": "test"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "07/Dec/2026:21:00:00 +0000",
            "timeEpoch": 1796677200000u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
    .to_string()
}

struct App {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    app: axum::Router,
}

impl App {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cfg = server::config::Config::new(&data);
        cfg.database = store::database_for(&data);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = rt.block_on(server::AppState::open(cfg)).unwrap();
        state.reconcile().unwrap();
        Self {
            _dir: dir,
            rt,
            app: server::app(state),
        }
    }

    /// Sends one event through the adapter: status and JSON body (null when empty).
    fn call(&self, ev: &str) -> (u16, Value) {
        let req = server::lambda::to_app_request(lambda_http::request::from_str(ev).unwrap());
        self.rt.block_on(async {
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (status, body)
        })
    }
}

#[test]
fn function_url_events_reach_the_real_routes() {
    let app = App::new();
    let ip = "203.0.113.7";
    let (s, _) = app.call(&event("GET", "/healthz", None, None, ip));
    assert_eq!(s, 200);
    let identity = UserIdentity::make(&mut OsRng);
    let (reg, auth, _) = registration("alice", &identity);
    let (s, b) = app.call(&event("POST", "/api/v1/register", None, Some(&reg), ip));
    assert_eq!(s, 201, "{b}");
    let login = json!({"user": "alice", "protector": "passphrase", "auth": auth});
    let (s, b) = app.call(&event("POST", "/api/v1/login", None, Some(&login), ip));
    assert_eq!(s, 200, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();
    let (s, b) = app.call(&event("GET", "/api/v1/wikis", Some(&token), None, ip));
    assert_eq!((s, b), (200, json!({"wikis": []})));
    let (s, b) = app.call(&event("GET", "/api/v1/wikis", None, None, ip));
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    let (s, _) = app.call(&event("GET", "/api/v1/nowhere", Some(&token), None, ip));
    assert_eq!(s, 404);
}

#[test]
fn the_event_source_address_is_the_client_address_of_the_login_limits() {
    let app = App::new();
    let identity = UserIdentity::make(&mut OsRng);
    let (reg, _, _) = registration("bob", &identity);
    let (s, _) = app.call(&event(
        "POST",
        "/api/v1/register",
        None,
        Some(&reg),
        "198.51.100.1",
    ));
    assert_eq!(s, 201);
    let wrong = json!({"user": "bob", "protector": "passphrase", "auth": "0".repeat(64)});
    // One name from one address: 10 attempts (the default), then 429 for that address…
    for _ in 0..10 {
        let (s, _) = app.call(&event(
            "POST",
            "/api/v1/login",
            None,
            Some(&wrong),
            "198.51.100.2",
        ));
        assert_eq!(s, 401);
    }
    let (s, b) = app.call(&event(
        "POST",
        "/api/v1/login",
        None,
        Some(&wrong),
        "198.51.100.2",
    ));
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (429, json!("rate_limited"))
    );
    // …while another source address is still answered on its own merits.
    let (s, _) = app.call(&event(
        "POST",
        "/api/v1/login",
        None,
        Some(&wrong),
        "198.51.100.3",
    ));
    assert_eq!(s, 401);
}

/// A child process killed (by its own id) when dropped.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `GET base/healthz` until it answers 200; the time it took.
fn first_answer(base: &str, since: std::time::Instant) -> std::time::Duration {
    let c = Client::new(base);
    loop {
        if let Ok(r) = c.try_raw("GET", "/healthz", &[], None)
            && r.status == 200
        {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < std::time::Duration::from_secs(60),
            "no answer from {base}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The real thing: `cargo-lambda`'s emulator of the Lambda control plane (its runtime API and
/// function URLs), the built `zkwiki-server` as the function (started without
/// `lambda`: `AWS_LAMBDA_RUNTIME_API` alone selects the Lambda mode), and the API driven through
/// function URLs: register, log in, create a wiki, write and read pages, blobs, head, an agent
/// token and its revocation. Cold start (process start → first answer through the emulator) is
/// printed beside the native process's. Skipped loudly without `CARGO_LAMBDA` (set by `cargo
/// xtask test`, which installs it).
#[test]
fn the_api_answers_through_the_cargo_lambda_emulator() {
    let Some(cargo_lambda) = std::env::var_os("CARGO_LAMBDA").filter(|v| !v.is_empty()) else {
        eprintln!(
            "\n*** SKIPPED lambda::the_api_answers_through_the_cargo_lambda_emulator: \
             CARGO_LAMBDA is not set (cargo xtask test installs cargo-lambda into .venv-lambda \
             and sets it) ***\n"
        );
        return;
    };
    let port = free_port();
    let _emulator = Child(
        std::process::Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "--disable-cors"])
            .args(["-A", "127.0.0.1", "-P", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "the emulator never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zkwiki-server"));
    cmd.env(
        "AWS_LAMBDA_RUNTIME_API",
        format!("http://127.0.0.1:{port}/.rt"),
    )
    .env("AWS_LAMBDA_FUNCTION_NAME", "_")
    .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    .env("ZKWIKI_SERVER_DATA_DIR", &data)
    .env("RUST_LOG", "warn")
    .stdout(std::process::Stdio::null());
    if let server::config::Database::Postgres { url, .. } = store::database_for(&data) {
        cmd.env("ZKWIKI_SERVER_DATABASE", url);
    }
    let t = std::time::Instant::now();
    let _function = Child(cmd.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}/lambda-url/_");
    let cold = first_answer(&base, t);

    let c = Client::new(&base);
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    let w = view.wiki.clone();
    let (page, hash, seq) = put_page(&c, &alice, &mut view, "Home.md", "# Hello from Lambda");
    assert_eq!(seq, 2);
    let r = c.get(
        &format!("/api/v1/wikis/{w}/pages/{page}"),
        Some(&alice.token),
    );
    r.expect(200, "");
    let opened = view.snap.open_page(&view.keys, &page, &r.body).unwrap();
    assert_eq!(opened.content, b"# Hello from Lambda");
    let b = c.get(
        &format!("/api/v1/wikis/{w}/blobs/{hash}"),
        Some(&alice.token),
    );
    assert_eq!(b.body, r.body, "binary bodies cross the adapter intact");
    let head = c.get(
        &format!("/api/v1/wikis/{w}/head?manifest=0"),
        Some(&alice.token),
    );
    head.expect(200, "");
    assert_eq!(unb64(&head.json()["state"]), view.snap.state.as_bytes());
    let list = c.get("/api/v1/wikis", Some(&alice.token)).json();
    assert_eq!(list["wikis"][0]["wiki"], json!(w));
    let r = c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&alice.token),
        &json!({"name": "bot", "role": "read", "expires_in": 600}),
    );
    r.expect(201, "");
    let (id, token) = (
        r.json()["id"].as_str().unwrap().to_owned(),
        r.json()["token"].as_str().unwrap().to_owned(),
    );
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&token))
        .expect(200, "");
    c.delete(
        &format!("/api/v1/wikis/{w}/tokens/{id}"),
        Some(&alice.token),
    )
    .expect(204, "");
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&token))
        .expect(401, "unauthorized");
    c.get("/api/v1/wikis", None).expect(401, "unauthorized");

    // The same binary as a native process on a new data directory, for comparison.
    let native_dir = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let native = Process::spawn_with(
        &native_dir.path().join("data"),
        "warn",
        std::process::Stdio::null(),
    );
    let native_cold = first_answer(&native.base, t);
    eprintln!(
        "cold start to the first answer: Lambda emulator {:.1} ms, native process {:.1} ms \
         (debug build, new data directory)",
        cold.as_secs_f64() * 1e3,
        native_cold.as_secs_f64() * 1e3
    );
}
