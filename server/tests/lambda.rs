//! The Lambda adapter in process: API Gateway HTTP API / function URL events (payload 2.0), parsed
//! by `lambda_http` exactly as the Lambda runtime hands them over, converted by
//! `server::lambda::to_app_request` and answered by the real app over a real data directory and
//! database: health, registration, login, an authenticated call, and the event's source address
//! reaching the login limits as the client address. (Not the `cargo-lambda` emulator: the runtime
//! API loop itself is `lambda_http::run`, not tested here.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
