//! Load and faults on real sockets: concurrent writers that retry on `409` lose no acknowledged
//! write (one server; two server processes on one data directory; a server killed with SIGKILL
//! mid-write and restarted). After each run: every acknowledged sequence is in `git log` with the
//! exact state that was acknowledged, the sequence has no gap, `git fsck --strict` is clean, and
//! every acknowledged page is in the final manifest with its acknowledged envelope.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use common::writes::{OnTransportError::GiveUp, Progress, collect, run_writers, targets, verify};
use common::*;
use core_crypto::identity::UserIdentity;

#[test]
fn eight_writers_two_hundred_writes_each_lose_nothing() {
    let s = Server::start();
    let c = s.client();
    let alice = register(&c, "alice");
    let view = create_wiki(&c, &alice);
    let identity = Arc::new(alice.identity);
    let progress = Progress::default();
    let t = Instant::now();
    let handles = run_writers(
        &targets(vec![c]),
        GiveUp,
        &alice.token,
        &identity,
        &view.wiki,
        8,
        200,
        &progress,
    );
    let all = collect(handles);
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "8 writers x 200: {} commits in {secs:.1} s ({:.0}/s), {} conflicts retried",
        all.acks.len(),
        all.acks.len() as f64 / secs,
        all.conflicts
    );
    assert_eq!(all.acks.len(), 1600);
    assert_eq!(all.transport_errors, 0);
    verify(&s.repo_dir(&view.wiki), &all.acks, Some(1601));
}

#[test]
fn two_server_processes_on_one_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = Process::spawn(&data);
    let b = Process::spawn(&data);
    let (ca, cb) = (a.client(), b.client());
    let alice = register(&ca, "alice");
    let view = create_wiki(&cb, &{
        // The session made on A is valid on B: one database.
        User {
            name: alice.name.clone(),
            identity: UserIdentity::from_secret_bytes(&alice.identity.to_secret_bytes()[..])
                .unwrap(),
            token: alice.token.clone(),
            passphrase_auth: String::new(),
            recovery_auth: String::new(),
        }
    });
    let identity = Arc::new(alice.identity);
    let progress = Progress::default();
    let handles = run_writers(
        &targets(vec![ca.clone(), cb.clone()]),
        GiveUp,
        &alice.token,
        &identity,
        &view.wiki,
        8,
        40,
        &progress,
    );
    let all = collect(handles);
    eprintln!(
        "two processes: {} commits, {} conflicts retried",
        all.acks.len(),
        all.conflicts
    );
    assert_eq!(all.acks.len(), 320);
    assert_eq!(all.transport_errors, 0);
    verify(
        &data.join("wikis").join(format!("{}.git", view.wiki)),
        &all.acks,
        Some(321),
    );
    // Both processes serve the same head.
    let ha = ca
        .get(
            &format!("/api/v1/wikis/{}/head", view.wiki),
            Some(&alice.token),
        )
        .json();
    let hb = cb
        .get(
            &format!("/api/v1/wikis/{}/head", view.wiki),
            Some(&alice.token),
        )
        .json();
    assert_eq!(ha, hb);
    drop((a, b));
}

#[test]
fn sigkill_mid_writes_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut p = Process::spawn(&data);
    let c = p.client();
    let alice = register(&c, "alice");
    let view = create_wiki(&c, &alice);
    let identity = Arc::new(alice.identity);
    let progress = Progress::default();
    let handles = run_writers(
        &targets(vec![c]),
        GiveUp,
        &alice.token,
        &identity,
        &view.wiki,
        4,
        usize::MAX,
        &progress,
    );
    let t = Instant::now();
    while progress.acked.load(Ordering::SeqCst) < 60 && t.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    p.kill9();
    progress.stop.store(true, Ordering::SeqCst);
    let all = collect(handles);
    eprintln!(
        "killed after {} acknowledged writes ({} writers cut off)",
        all.acks.len(),
        all.transport_errors
    );
    assert!(all.acks.len() >= 60);
    let repo = data.join("wikis").join(format!("{}.git", view.wiki));
    verify(&repo, &all.acks, None);

    // Restart on the same data: consistent, and writable again (a stale ref lock is cleared).
    let p2 = Process::spawn(&data);
    let c2 = p2.client();
    let token = login(&c2, "alice", "passphrase", &alice.passphrase_auth);
    let head_before = check_repo(&repo).0.seq;
    let progress = Progress::default();
    let more = collect(run_writers(
        &targets(vec![c2]),
        GiveUp,
        &token,
        &identity,
        &view.wiki,
        2,
        5,
        &progress,
    ));
    assert_eq!(more.acks.len(), 10);
    let mut every = all.acks.clone();
    every.extend(more.acks);
    verify(&repo, &every, Some(head_before + 10));
}

#[test]
fn sigterm_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::spawn(&dir.path().join("data"));
    p.client().get("/healthz", None).expect(200, "");
    let status = p.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn logs_never_contain_secrets_and_time_startup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut p = Process::spawn_with(&data, "debug", log);
    let c = p.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    put_page(
        &c,
        &alice,
        &mut view,
        "Secret page title.md",
        "very secret text",
    );
    let t = c.post(
        &format!("/api/v1/wikis/{}/tokens", view.wiki),
        Some(&alice.token),
        &serde_json::json!({"name": "bot", "role": "read", "expires_in": 600}),
    );
    let agent = t.json()["token"].as_str().unwrap().to_owned();
    c.get(&format!("/api/v1/wikis/{}/head", view.wiki), Some(&agent))
        .expect(200, "");
    let basic = format!("Basic {}", b64(format!("x:{agent}").as_bytes()));
    c.raw(
        "GET",
        &format!("/git/{}.git/info/refs?service=git-upload-pack", view.wiki),
        &[("Authorization", &basic)],
        None,
    )
    .expect(200, "");
    c.post(
        "/api/v1/login",
        None,
        &serde_json::json!({"user": "alice", "protector": "passphrase", "auth": "ab".repeat(32)}),
    )
    .expect(401, "bad_credentials");
    assert!(p.terminate().success());
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("startup") && logs.contains("phase") && logs.contains("ready"),
        "{logs}"
    );
    assert!(
        logs.contains("request"),
        "request logs expected at debug level"
    );
    for secret in [
        &alice.token[4..],
        &agent[4..],
        &alice.passphrase_auth,
        &alice.recovery_auth,
        &"ab".repeat(32),
    ] {
        // The secret half of a token (its last 64 hex digits) and auth secrets never appear.
        let tail = &secret[secret.len() - 64..];
        assert!(!logs.contains(tail), "a secret reached the log");
    }
    for plain in ["Secret page title", "very secret text"] {
        assert!(!logs.contains(plain));
    }
    // The server secret is private to the server's user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("server-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data dir is private");
    }
}

#[test]
fn configuration_from_the_environment() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("env-data");
    let web = dir.path().join("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), "<title>from env</title>").unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zkwiki-server"))
        .env("ZKWIKI_SERVER_LISTEN", "127.0.0.1:0")
        .env("ZKWIKI_SERVER_DATA_DIR", &data)
        .env("ZKWIKI_SERVER_WEB_DIR", &web)
        .env("ZKWIKI_SERVER_MAX_JSON_BODY", "1024")
        .env("ZKWIKI_SERVER_LOGIN_REFILL", "3600")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("zkwiki-server listening on ")
        .unwrap()
        .to_owned();
    assert!(
        !base.ends_with(":0"),
        "the printed address carries the real port: {base}"
    );
    let c = Client::new(&base);
    assert!(String::from_utf8_lossy(&c.get("/", None).body).contains("from env"));
    let (status, _) = send_oversized(&base, "/api/v1/wikis", &[], vec![b' '; 2048]);
    assert_eq!(status, 413);
    assert!(data.join("zkwiki.sqlite3").exists() && data.join("wikis").is_dir());
    // A spent login limit gives its next attempt back after the refill: an hour here.
    let wrong =
        serde_json::json!({"user": "eve", "protector": "passphrase", "auth": "ab".repeat(32)});
    for _ in 0..10 {
        c.post("/api/v1/login", None, &wrong)
            .expect(401, "bad_credentials");
    }
    let r = c.post("/api/v1/login", None, &wrong);
    r.expect(429, "rate_limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 3000, "retry after {wait} s");
}

/// Large uploads share one memory budget: while one large body is in flight, another that does not
/// fit is refused with `503 busy` (and `Retry-After`) before its body is read, a smaller one that
/// fits still goes through, and once the first finishes the refused one is accepted again. (Only
/// requests with a valid token reserve: `stalled.rs` shows the rest.)
#[test]
fn large_uploads_share_a_memory_budget() {
    use std::io::{Read, Write};
    let s = Server::start_with(|c| {
        c.max_json_body = 2 * 1024 * 1024;
        c.max_body_memory = 1536 * 1024;
        c.max_body_memory_per_client = 1536 * 1024;
        c.body_wait = std::time::Duration::from_millis(300);
        // A stays silent while B and C are sent: far longer than that on a loaded machine.
        c.body_timeout = std::time::Duration::from_secs(120);
    });
    let alice = register(&s.client(), "alice");
    let auth = format!("Bearer {}", alice.token);
    let headers = [("Authorization", auth.as_str())];
    let path = format!("/api/v1/wikis/{}/commits", "0".repeat(32));
    let base = s.client().base.clone();
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    let big = 1_000_000usize;

    // A: a 1 MB body that arrives slowly (headers and a few bytes, then nothing for now).
    let mut a = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        a,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {big}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    a.write_all(b"{\"state\": ").unwrap();

    // B: another 1 MB body does not fit beside A: refused without being read. B is sent only
    // once A holds its share (the server takes it when A's headers arrive, not when connect
    // returns; a B that came first would hold the share and A would be the one refused).
    // (The budget counts 64 KiB units: A's 1,000,000 bytes hold 16 of them.)
    wait_for_budget_in_use(&s.client(), 16 * 64 * 1024);
    let (status, body) = send_oversized(&base, &path, &headers, vec![b' '; big]);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "busy", "{body}");

    // C: a 300 kB body fits in what is left and is handled (a JSON error: it is all spaces).
    let (status, body) = send_oversized(&base, &path, &headers, vec![b' '; 300_000]);
    assert_eq!(status, 400, "{body}");
    // Small requests never wait.
    s.client()
        .post(
            "/api/v1/prelogin",
            None,
            &serde_json::json!({"user": "ann"}),
        )
        .expect(200, "");

    // A finishes: its answer comes, and its share is free again.
    a.write_all(&vec![b' '; big - 10]).unwrap();
    let mut answer = String::new();
    a.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let (status, body) = send_oversized(&base, &path, &headers, vec![b' '; big]);
    assert_eq!(status, 400, "{body}");
}
