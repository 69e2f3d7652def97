//! Load generator for `docs/benchmarks.md` ("Server"): starts the release `zkwiki-server` on
//! loopback with a fresh data directory and measures
//!
//! - process start → first answered request (`/healthz`), over several starts;
//! - page reads (`GET /api/v1/wikis/{w}/pages/{p}`, 4 KiB pages, session token) with N keep-alive
//!   connections: requests/s, p50, p99;
//! - commits (`POST /api/v1/wikis/{w}/commits`, one new 4 KiB page each, signed with
//!   `core_crypto::snapshot`): one writer on one wiki (commits are serial per wiki), and N writers
//!   on N wikis; commits/s, p50, p99.
//!
//! Usage (after `cargo build --release -p server --bin zkwiki-server --example loadgen`):
//! `target/release/examples/loadgen [--secs S] [--conns N] [--writers N] [--no-fsync]`.
//! With `--processes N --database URL` it starts N server processes on one data directory with
//! their metadata in the PostgreSQL at URL, and spreads connections and writers over them
//! round-robin (`docs/benchmarks.md`, "Many processes").
//! With `--otterwiki URL` it instead runs the same read and write workload (view a page, save a
//! page) against an Otterwiki at URL (see `docs/benchmarks.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::kdf::KdfParams;
use core_crypto::keyring::{KeyringDraft, MemberKind, WikiKeys};
use core_crypto::protector::{ProtectorKey, ProtectorKind, RecoveryKey};
use core_crypto::snapshot::Snapshot;
use data_encoding::BASE64;
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};

struct Opts {
    secs: f64,
    conns: usize,
    writers: usize,
    fsync: bool,
    otterwiki: Option<String>,
    starts: usize,
    processes: usize,
    database: Option<String>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        secs: 5.0,
        conns: 4,
        writers: 4,
        fsync: true,
        otterwiki: None,
        starts: 20,
        processes: 1,
        database: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let next = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--secs" => o.secs = next().parse().unwrap(),
            "--conns" => o.conns = next().parse().unwrap(),
            "--writers" => o.writers = next().parse().unwrap(),
            "--starts" => o.starts = next().parse().unwrap(),
            "--otterwiki" => o.otterwiki = Some(next()),
            "--processes" => o.processes = next().parse().unwrap(),
            "--database" => o.database = Some(next()),
            "--no-fsync" => {
                o.fsync = false;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    o
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_redirects(0)
        .build()
        .into()
}

fn server_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/release/examples/loadgen → target/release/zkwiki-server
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("zkwiki-server")
}

fn spawn_server(data: &std::path::Path, fsync: bool, database: Option<&str>) -> (Child, String) {
    let mut cmd = Command::new(server_bin());
    if let Some(url) = database {
        cmd.env("ZKWIKI_SERVER_DATABASE", url);
    }
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !fsync {
        cmd.arg("--unsafe-no-fsync");
    }
    let mut child = cmd
        .spawn()
        .expect("run target/release/zkwiki-server (build it first)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("zkwiki-server listening on ")
        .unwrap()
        .to_owned();
    (child, base)
}

/// Latency summary.
fn summary(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| lat[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "{name}: {n} in {:.2} s = {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat[n - 1].as_secs_f64() * 1e3
    );
}

/// Process start → first `200` from `/healthz`, over `starts` cold starts on fresh data dirs.
fn startup(starts: usize, fsync: bool) {
    let (mut times, mut again) = (Vec::new(), Vec::new());
    for _ in 0..starts {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let mut cmd = Command::new(server_bin());
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped());
        if !fsync {
            cmd.arg("--unsafe-no-fsync");
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        let a = agent();
        loop {
            if let Ok(r) = a.get(format!("{base}/healthz")).call()
                && r.status() == 200
            {
                break;
            }
        }
        times.push(t.elapsed());
        let _ = child.kill();
        let _ = child.wait();
        // A restart on an existing data dir (the common case) is measured too.
        let t = Instant::now();
        let (mut child, base) = spawn_server(dir.path(), fsync, None);
        while a.get(format!("{base}/healthz")).call().is_err() {}
        again.push(t.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    // `summary` divides by the wall time; one second makes its rate column meaningless but
    // harmless: read the latencies.
    summary(
        "start to first answered request, new data dir",
        times,
        Duration::from_secs(1),
    );
    summary(
        "start to first answered request, existing data dir",
        again,
        Duration::from_secs(1),
    );
}

struct Wiki {
    id: String,
    chain: Vec<Vec<u8>>,
    snap: Snapshot,
    keys: WikiKeys,
}

fn post(a: &ureq::Agent, url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut r = a.post(url);
    if let Some(t) = token {
        r = r.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = r.send_json(body).unwrap();
    let status = resp.status().as_u16();
    let v = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, v)
}

fn setup_user(a: &ureq::Agent, base: &str) -> (UserIdentity, String) {
    let rng = &mut OsRng;
    let id = UserIdentity::make(rng);
    let kdf = KdfParams::make(rng, KdfParams::FLOOR).unwrap();
    let pk = ProtectorKey::derive_from_passphrase(&kdf, b"bench").unwrap();
    let rk = RecoveryKey::make(rng).derive_protector_key();
    let p = id.public();
    let body = json!({
        "user": "bench",
        "x25519": BASE64.encode(&p.x25519), "ed25519": BASE64.encode(&p.ed25519),
        "kdf": BASE64.encode(&kdf.encode()),
        "auth": pk.derive_auth_secret().to_hex().to_string(),
        "sealed_identity": BASE64.encode(&id.seal(rng, &pk.derive_seal_key(), ProtectorKind::Passphrase, "bench", Some(&kdf)).unwrap()),
        "recovery": {
            "auth": rk.derive_auth_secret().to_hex().to_string(),
            "sealed_identity": BASE64.encode(&id.seal(rng, &rk.derive_seal_key(), ProtectorKind::Recovery, "bench", None).unwrap()),
        },
        "proof": BASE64.encode(&id.registration_proof("bench").unwrap()),
    });
    assert_eq!(
        post(a, &format!("{base}/api/v1/register"), None, &body).0,
        201
    );
    let (s, v) = post(
        a,
        &format!("{base}/api/v1/login"),
        None,
        &json!({"user": "bench", "protector": "passphrase", "auth": pk.derive_auth_secret().to_hex().to_string()}),
    );
    assert_eq!(s, 200);
    (id, v["token"].as_str().unwrap().to_owned())
}

fn create_wiki(a: &ureq::Agent, base: &str, id: &UserIdentity, token: &str) -> Wiki {
    let rng = &mut OsRng;
    let genesis = KeyringDraft::genesis(rng, id, "bench", MemberKind::Person)
        .unwrap()
        .sign(rng, id)
        .unwrap();
    let snap = Snapshot::genesis(genesis.clone(), id).unwrap();
    let (s, v) = post(
        a,
        &format!("{base}/api/v1/wikis"),
        Some(token),
        &json!({"keyring": BASE64.encode(genesis.as_bytes()), "state": BASE64.encode(snap.state.as_bytes()), "manifest": BASE64.encode(&snap.manifest.encode())}),
    );
    assert_eq!(s, 201);
    let keys = snap.keyring.unlock(id).unwrap();
    Wiki {
        id: v["wiki"].as_str().unwrap().to_owned(),
        chain: vec![genesis.as_bytes().to_vec()],
        snap,
        keys,
    }
}

fn page_text(i: usize) -> String {
    let mut s = format!("# Page {i}\n\nSee [[Page {}]].\n\n", i + 1);
    while s.len() < 4000 {
        s.push_str("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ");
    }
    s
}

/// Writes one new page; returns the latency.
fn write_one(
    a: &ureq::Agent,
    base: &str,
    token: &str,
    id: &UserIdentity,
    w: &mut Wiki,
    i: usize,
) -> Duration {
    let rng = &mut OsRng;
    let page = PageId::random(rng);
    let mut batch = w.snap.begin_write();
    let rec = PageRecord {
        kind: PageKind::Markdown,
        path: format!("bench/{i}.md"),
        author: "bench".into(),
        written_at_ms: 0,
        content: page_text(i).into_bytes(),
    };
    batch.put(rng, &w.keys, page, &rec).unwrap();
    let commit = batch.finish(id).unwrap();
    let body = json!({
        "state": BASE64.encode(commit.state.as_bytes()),
        "manifest": BASE64.encode(&commit.manifest.encode()),
        "blobs": commit.blobs.iter().map(|b| BASE64.encode(b)).collect::<Vec<_>>(),
        "keyring": null,
    });
    let t = Instant::now();
    let (s, v) = post(
        a,
        &format!("{base}/api/v1/wikis/{}/commits", w.id),
        Some(token),
        &body,
    );
    let took = t.elapsed();
    assert_eq!(s, 200, "{v}");
    w.snap = commit.into_snapshot(&w.snap);
    let _ = &w.chain;
    took
}

fn zkwiki(o: &Opts) {
    println!(
        "# zkwiki-server ({})",
        if o.fsync {
            "fsync on"
        } else {
            "--unsafe-no-fsync"
        }
    );
    if o.starts > 0 {
        startup(o.starts, o.fsync);
    }
    let dir = tempfile::tempdir().unwrap();
    let servers: Vec<(Child, String)> = (0..o.processes.max(1))
        .map(|_| spawn_server(dir.path(), o.fsync, o.database.as_deref()))
        .collect();
    let bases: Vec<String> = servers.iter().map(|(_, b)| b.clone()).collect();
    if bases.len() > 1 {
        println!(
            "{} processes on one data directory, metadata in {}",
            bases.len(),
            if o.database.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            }
        );
    }
    let base = bases[0].clone();
    let a = agent();
    let (id, token) = setup_user(&a, &base);
    let mut wiki = create_wiki(&a, &base, &id, &token);
    for i in 0..100 {
        write_one(&a, &base, &token, &id, &mut wiki, i);
    }
    let pages: Vec<PageId> = wiki.snap.manifest.pages.keys().copied().collect();
    assert_eq!(pages.len(), 100);

    // Reads.
    let stop = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let handles: Vec<_> = (0..o.conns)
        .map(|n| {
            let (stop, base, token, wid, pages) = (
                stop.clone(),
                bases[n % bases.len()].clone(),
                token.clone(),
                wiki.id.clone(),
                pages.clone(),
            );
            std::thread::spawn(move || {
                let a = agent();
                let mut lat = Vec::new();
                let auth = format!("Bearer {token}");
                while !stop.load(Ordering::Relaxed) {
                    let p = pages[OsRng.next_u32() as usize % pages.len()];
                    let t = Instant::now();
                    let mut r = a
                        .get(format!("{base}/api/v1/wikis/{wid}/pages/{p}"))
                        .header("Authorization", &auth)
                        .call()
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let body = r.body_mut().read_to_vec().unwrap();
                    assert!(body.len() > 4000);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(o.secs));
    stop.store(true, Ordering::Relaxed);
    let lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    summary(
        &format!("page reads, {} connections", o.conns),
        lat,
        t.elapsed(),
    );

    // Writes: one writer on one wiki (serial by design).
    let t = Instant::now();
    let mut lat = Vec::new();
    let mut i = 1000;
    while t.elapsed().as_secs_f64() < o.secs {
        lat.push(write_one(&a, &base, &token, &id, &mut wiki, i));
        i += 1;
    }
    summary("commits, 1 writer on 1 wiki", lat, t.elapsed());

    // Writes: N writers on N wikis.
    let wikis: Vec<Wiki> = (0..o.writers)
        .map(|_| create_wiki(&a, &base, &id, &token))
        .collect();
    let id = Arc::new(id);
    let t = Instant::now();
    let secs = o.secs;
    let handles: Vec<_> = wikis
        .into_iter()
        .enumerate()
        .map(|(n, mut w)| {
            let (base, token, id) = (bases[n % bases.len()].clone(), token.clone(), id.clone());
            std::thread::spawn(move || {
                let a = agent();
                let mut lat = Vec::new();
                let t = Instant::now();
                let mut i = 0;
                while t.elapsed().as_secs_f64() < secs {
                    lat.push(write_one(&a, &base, &token, &id, &mut w, i));
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    summary(
        &format!("commits, {} writers on {} wikis", o.writers, o.writers),
        lat,
        t.elapsed(),
    );
    for (mut child, _) in servers {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The same workload against Otterwiki: view a page (rendered), save a page (a git commit).
fn otterwiki(o: &Opts, base: &str) {
    println!("# Otterwiki at {base}");
    let a = agent();
    let save = |a: &ureq::Agent, name: &str, text: &str| -> (u16, Duration) {
        let form = [("content", text), ("commit", "bench"), ("revision", "")];
        let t = Instant::now();
        let r = a
            .post(format!("{base}/{name}/save"))
            .send_form(form)
            .unwrap();
        (r.status().as_u16(), t.elapsed())
    };
    for i in 0..100 {
        let (s, _) = save(&a, &format!("Page{i}"), &page_text(i));
        assert!(s == 302 || s == 200, "save answered {s}");
    }
    let r = a.get(format!("{base}/Page1")).call().unwrap();
    assert_eq!(r.status(), 200);
    let stop = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let handles: Vec<_> = (0..o.conns)
        .map(|_| {
            let (stop, base) = (stop.clone(), base.to_owned());
            std::thread::spawn(move || {
                let a = agent();
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let p = OsRng.next_u32() % 100;
                    let t = Instant::now();
                    let mut r = a.get(format!("{base}/Page{p}")).call().unwrap();
                    assert_eq!(r.status(), 200);
                    let _ = r.body_mut().read_to_vec().unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(o.secs));
    stop.store(true, Ordering::Relaxed);
    let lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    summary(
        &format!("page views, {} connections", o.conns),
        lat,
        t.elapsed(),
    );
    let t = Instant::now();
    let mut lat = Vec::new();
    let mut i = 1000;
    while t.elapsed().as_secs_f64() < o.secs {
        let (s, d) = save(&a, &format!("Page{i}"), &page_text(i));
        assert!(s == 302 || s == 200);
        lat.push(d);
        i += 1;
    }
    summary("page saves, 1 writer", lat, t.elapsed());
}

fn main() {
    let o = parse_opts();
    match &o.otterwiki {
        Some(url) => otterwiki(&o, url),
        None => zkwiki(&o),
    }
}
