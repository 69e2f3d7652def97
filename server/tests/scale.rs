//! Many server processes as one server: three `zkwiki-server` processes on one data directory
//! and one PostgreSQL (the cluster `cargo xtask test` starts; skipped with a loud message
//! without it). A session made on one works on all; eight writers spread over the three write
//! 200 commits each while one process is killed with SIGKILL and restarted, and lose nothing and
//! give nothing up; a token revoked on one is refused by the others at once; a login attack is
//! counted across all three.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::writes::{OnTransportError, Progress, collect, run_writers, targets, verify};
use common::*;
use serde_json::json;

/// Three processes on one data directory and one PostgreSQL schema.
struct Fleet {
    _dir: tempfile::TempDir,
    data: PathBuf,
    url: String,
    procs: Vec<Process>,
}

/// A server process on `data` with its metadata in PostgreSQL at `url`. Login limits give no
/// attempt back during a test (by default one every 6 s: the login attack below counts exactly
/// ten tries, which a run slower than 6 s would not).
fn spawn(data: &Path, url: &str) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkwiki-server"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--login-refill",
        "3600",
        "--data-dir",
    ])
    .arg(data)
    .env("ZKWIKI_SERVER_DATABASE", url);
    Process::spawn_command(cmd, "warn", Stdio::inherit())
}

impl Fleet {
    /// `None` (after a loud message) when there is no PostgreSQL to test with.
    fn start(test: &str) -> Option<Self> {
        let cluster = store::require_postgres(test)?;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let url = store::fresh_schema(&cluster);
        let procs = (0..3).map(|_| spawn(&data, &url)).collect();
        Some(Self {
            _dir: dir,
            data,
            url,
            procs,
        })
    }

    fn clients(&self) -> Vec<Client> {
        self.procs.iter().map(Process::client).collect()
    }

    fn repo(&self, wiki: &str) -> PathBuf {
        self.data.join("wikis").join(format!("{wiki}.git"))
    }
}

#[test]
fn eight_writers_over_three_processes_one_killed_and_restarted_lose_nothing() {
    let Some(mut fleet) = Fleet::start("scale::eight_writers_over_three_processes") else {
        return;
    };
    let clients = fleet.clients();
    let alice = register(&clients[0], "alice");
    // The session made on process 0 works on 1 and 2: one database.
    for c in &clients[1..] {
        c.get("/api/v1/wikis", Some(&alice.token)).expect(200, "");
    }
    let view = create_wiki(&clients[1], &alice);
    let identity = Arc::new(alice.identity);
    let servers = targets(clients.clone());
    let progress = Progress::default();
    let t = Instant::now();
    let handles = run_writers(
        &servers,
        OnTransportError::NextServer,
        &alice.token,
        &identity,
        &view.wiki,
        8,
        200,
        &progress,
    );
    // Mid-load: SIGKILL process 2, restart it on the same data and database.
    while progress.acked.load(Ordering::SeqCst) < 400 && t.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let at_kill = progress.acked.load(Ordering::SeqCst);
    fleet.procs[2].kill9();
    std::thread::sleep(Duration::from_millis(200));
    fleet.procs[2] = spawn(&fleet.data, &fleet.url);
    servers.write().unwrap()[2] = fleet.procs[2].client();
    let all = collect(handles);
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "3 processes, 8 writers x 200: {} commits in {secs:.1} s ({:.0}/s), {} conflicts retried, \
         process 2 killed after {at_kill} acknowledged writes, {} requests cut off and retried \
         elsewhere",
        all.acks.len(),
        all.acks.len() as f64 / secs,
        all.conflicts,
        all.transport_errors,
    );
    // Nothing given up, nothing lost. A write cut off by the kill may have taken effect without
    // being acknowledged, so the head is at least 1 + 1600.
    assert_eq!(all.acks.len(), 1600);
    verify(&fleet.repo(&view.wiki), &all.acks, None);
    let head = check_repo(&fleet.repo(&view.wiki)).0.seq;
    assert!(
        (1601..=1601 + all.transport_errors as u64).contains(&head),
        "head {head}"
    );
    // Every process, the restarted one too, serves that head.
    let heads: Vec<_> = fleet
        .clients()
        .iter()
        .map(|c| {
            c.get(
                &format!("/api/v1/wikis/{}/head", view.wiki),
                Some(&alice.token),
            )
            .json()
        })
        .collect();
    assert!(heads.iter().all(|h| h == &heads[0]));
}

#[test]
fn a_token_revoked_on_one_process_is_refused_by_all_at_once() {
    let Some(fleet) = Fleet::start("scale::a_token_revoked_on_one_process") else {
        return;
    };
    let c = fleet.clients();
    let alice = register(&c[0], "alice");
    let view = create_wiki(&c[0], &alice);
    let w = &view.wiki;
    let r = c[1].post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&alice.token),
        &json!({"name": "bot", "role": "read", "expires_in": 3600}),
    );
    r.expect(201, "");
    let (id, token) = (
        r.json()["id"].as_str().unwrap().to_owned(),
        r.json()["token"].as_str().unwrap().to_owned(),
    );
    for p in &c {
        p.get(&format!("/api/v1/wikis/{w}/head"), Some(&token))
            .expect(200, "");
    }
    c[2].delete(
        &format!("/api/v1/wikis/{w}/tokens/{id}"),
        Some(&alice.token),
    )
    .expect(204, "");
    // No delay, no cache: the very next request on every process is refused.
    for p in &c {
        p.get(&format!("/api/v1/wikis/{w}/head"), Some(&token))
            .expect(401, "unauthorized");
    }
    // A session ended on one process is ended on all.
    c[0].post("/api/v1/logout", Some(&alice.token), &json!({}))
        .expect(204, "");
    for p in &c {
        p.get("/api/v1/wikis", Some(&alice.token))
            .expect(401, "unauthorized");
    }
}

#[test]
fn a_login_attack_is_counted_across_all_processes() {
    let Some(fleet) = Fleet::start("scale::a_login_attack_is_counted_across_all_processes") else {
        return;
    };
    let c = fleet.clients();
    // Bob registers and logs in on process 0: his device token is good on every process.
    let bob = register(&c[0], "bob");
    let first = c[0].post(
        "/api/v1/login",
        None,
        &json!({"user": "bob", "protector": "passphrase", "auth": bob.passphrase_auth}),
    );
    first.expect(200, "");
    let device = first.json()["device"].as_str().unwrap().to_owned();
    // Wrong passphrases for bob from one address, round robin over the three processes: the
    // default limit of one name from one address (10 attempts) holds for all of them together,
    // not per process (which would let 30 through).
    let wrong = "0".repeat(64);
    let mut refused_as_wrong = 0;
    let mut first_limited = None;
    for i in 0..40 {
        let r = c[i % 3].post(
            "/api/v1/login",
            None,
            &json!({"user": "bob", "protector": "passphrase", "auth": wrong}),
        );
        match r.status {
            401 => refused_as_wrong += 1,
            429 => {
                first_limited.get_or_insert(i);
            }
            s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    eprintln!(
        "wrong passphrases answered 401: {refused_as_wrong}, then 429 from attempt {first_limited:?}"
    );
    assert_eq!(refused_as_wrong, 10, "one limit for all processes");
    assert_eq!(first_limited, Some(10));
    // Every process refuses the next attempt, even with the right passphrase…
    for p in &c {
        p.post(
            "/api/v1/login",
            None,
            &json!({"user": "bob", "protector": "passphrase", "auth": bob.passphrase_auth}),
        )
        .expect(429, "rate_limited");
    }
    // …but bob's own device gets in on any of them: the attack does not lock him out.
    for p in &c {
        p.post(
            "/api/v1/login",
            None,
            &json!({"user": "bob", "protector": "passphrase", "auth": bob.passphrase_auth,
                    "device": device}),
        )
        .expect(200, "");
    }
}
