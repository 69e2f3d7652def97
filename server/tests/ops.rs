//! What an operator relies on: `/metrics` (scraped and parsed as Prometheus text), readiness
//! distinct from liveness, JSON logs whose every request line names the request, and a refusal of
//! another user's wiki that never reads the wiki (so its timing cannot tell that it exists).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::*;
use core_crypto::ids::PageId;
use rand_core::OsRng;
use serde_json::Value;

/// One sample of the exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus text (0.0.4): `# HELP`/`# TYPE` lines, and `name{l="v",…} value` samples.
/// Panics on anything else, and on a sample whose family was not declared before it.
fn parse_metrics(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut val = String::new();
                    loop {
                        match chars.next().unwrap() {
                            '\\' => val.push(match chars.next().unwrap() {
                                'n' => '\n',
                                c => c,
                            }),
                            '"' => break,
                            c => val.push(c),
                        }
                    }
                    labels.insert(key, val);
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (name.to_owned(), labels)
            }
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(&name);
        assert!(types.contains_key(family), "no # TYPE before {line}");
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (types, samples)
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels)
        .unwrap_or_else(|| panic!("{name} {labels:?} missing"))
        .value
}

fn wait_ready(c: &Client) {
    let until = Instant::now() + Duration::from_secs(20);
    while c.get("/readyz", None).status != 200 {
        assert!(Instant::now() < until, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_are_prometheus_text() {
    let s = Server::start();
    let c = s.client();
    wait_ready(&c);
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    let stale = prepare_put(
        &view,
        &alice.identity,
        PageId::random(&mut OsRng),
        "A.md",
        "a",
    );
    for i in 0..3 {
        put_page(&c, &alice, &mut view, &format!("P{i}.md"), "text");
    }
    let commits = format!("/api/v1/wikis/{}/commits", view.wiki);
    c.post(&commits, Some(&alice.token), &commit_body(&stale))
        .expect(409, "conflict");
    c.get("/api/v1/nope", None).expect(404, "not_found");

    let r = c.get("/metrics", None);
    r.expect(200, "");
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(r.body.clone()).unwrap();
    let (types, samples) = parse_metrics(&text);
    let route = "/api/v1/wikis/{wiki}/commits";
    assert_eq!(value(&samples, "zkwiki_commits_total", &[]), 3.0);
    assert_eq!(value(&samples, "zkwiki_commit_conflicts_total", &[]), 1.0);
    let req = |status| {
        value(
            &samples,
            "zkwiki_http_requests_total",
            &[("route", route), ("method", "POST"), ("status", status)],
        )
    };
    assert_eq!((req("200"), req("409")), (3.0, 1.0));
    assert_eq!(
        value(
            &samples,
            "zkwiki_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(types["zkwiki_http_request_duration_seconds"], "histogram");
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| {
            s.name == "zkwiki_http_request_duration_seconds_bucket" && s.labels["route"] == route
        })
        .map(|s| {
            let le = &s.labels["le"];
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, s.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() >= 10);
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    let count = value(
        &samples,
        "zkwiki_http_request_duration_seconds_count",
        &[("route", route)],
    );
    assert_eq!((buckets.last().unwrap().1, count), (4.0, 4.0));
    assert!(
        value(
            &samples,
            "zkwiki_http_request_duration_seconds_sum",
            &[("route", route)]
        ) > 0.0
    );
    assert!(value(&samples, "zkwiki_open_connections", &[]) >= 1.0);
    assert_eq!(
        value(&samples, "zkwiki_upload_budget_bytes", &[]),
        256.0 * 1024.0 * 1024.0
    );
    assert_eq!(
        value(&samples, "zkwiki_upload_budget_bytes_in_use", &[]),
        0.0
    );
    assert_eq!(value(&samples, "zkwiki_ready", &[]), 1.0);
    assert!(value(&samples, "zkwiki_logins_total", &[]) >= 1.0);
    assert!(value(&samples, "zkwiki_data_dir_free_bytes", &[]) > 0.0);
    assert_eq!(types["zkwiki_connections_refused_total"], "counter");
    // Route templates only: no wiki id, user name or page in the metrics.
    assert!(!text.contains(&view.wiki) && !text.contains("alice"));

    // Not for the world: through a proxy (a forwarding header), 404 (another host: a unit test
    // of `health::metrics_allowed`, as every test peer is on the loopback interface).
    for h in ["X-Forwarded-For", "Forwarded", "X-Real-IP"] {
        c.raw("GET", "/metrics", &[(h, "203.0.113.1")], None)
            .expect(404, "not_found");
    }
}

#[test]
fn readiness_is_distinct_from_liveness() {
    let s = Server::start();
    let c = s.client();
    wait_ready(&c);
    c.get("/readyz", None).expect(200, "");
    let wikis = s.data.join("wikis");
    let aside = s.data.join("wikis-aside");
    std::fs::rename(&wikis, &aside).unwrap();
    let r = c.get("/readyz", None);
    r.expect(503, "not_ready");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wikis directory")
    );
    c.get("/healthz", None).expect(200, "");
    std::fs::rename(&aside, &wikis).unwrap();
    c.get("/readyz", None).expect(200, "");
}

/// The refusal of another user's wiki is decided from the membership index and never reads the
/// repository: with the repository destroyed, its owner gets `500`, while another user still
/// gets exactly the `404` of a wiki that never existed. (So the refusal does the same work for
/// both; `examples/existence_timing.rs` measures it.)
#[test]
fn another_users_wiki_is_refused_without_reading_it() {
    let s = Server::start();
    let c = s.client();
    wait_ready(&c);
    let alice = register(&c, "alice");
    let bob = register(&c, "bob");
    let mut view = create_wiki(&c, &alice);
    put_page(&c, &alice, &mut view, "A.md", "a");
    let w = view.wiki.clone();
    let repo = s.repo_dir(&w);
    for entry in std::fs::read_dir(repo.join("objects")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().len() == 2 {
            std::fs::remove_dir_all(path).unwrap();
        }
    }
    std::fs::write(repo.join("refs/heads/main"), "garbage\n").unwrap();
    let random = "7".repeat(32);
    for route in ["head", "keyring", "history"] {
        let theirs = c.get(&format!("/api/v1/wikis/{w}/{route}"), Some(&bob.token));
        let none = c.get(&format!("/api/v1/wikis/{random}/{route}"), Some(&bob.token));
        theirs.expect(404, "not_found");
        assert_eq!(theirs.without_request_id(), none.without_request_id());
    }
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&alice.token))
        .expect(500, "internal");
}

/// `--log-format json`: one JSON object per line; every line logged while handling a request
/// carries the request's id (the one its answer names), and `--metrics-listen` serves the
/// metrics on a private port without the loopback rule.
#[test]
fn json_logs_name_the_request_in_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ops = format!("127.0.0.1:{port}");
    let mut p = Process::spawn_args(
        &dir.path().join("data"),
        "server=debug,zkwiki_server=debug,git-http-backend=debug,warn",
        std::fs::File::create(&log_path).unwrap(),
        &["--log-format", "json", "--metrics-listen", &ops],
    );
    let c = p.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    put_page(&c, &alice, &mut view, "Page.md", "secret words");
    let mut ids = Vec::new();
    for r in [
        c.post(
            "/api/v1/login",
            None,
            &serde_json::json!({"user": "alice", "protector": "passphrase", "auth": "00".repeat(32)}),
        ),
        c.get("/api/v1/wikis/0123/head", Some(&alice.token)),
    ] {
        assert!(r.status >= 400);
        let _checked = r.without_request_id();
        ids.push(r.json()["error"]["request_id"].clone());
    }
    let ops_metrics = Client::new(&format!("http://{ops}"));
    let m = ops_metrics.raw(
        "GET",
        "/metrics",
        &[("X-Forwarded-For", "203.0.113.1")],
        None,
    );
    m.expect(200, "");
    assert!(String::from_utf8_lossy(&m.body).contains("zkwiki_commits_total 1"));
    assert!(p.terminate().success());

    let logs = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let in_request = |l: &Value| {
        let target = l["target"].as_str().unwrap_or("");
        let msg = l["message"].as_str().unwrap_or("");
        target.starts_with("server::routes")
            || target == "git-http-backend"
            || [
                "request",
                "login",
                "login failed",
                "commit accepted",
                "wiki created",
            ]
            .contains(&msg)
    };
    let request_lines: Vec<&Value> = lines.iter().filter(|l| in_request(l)).collect();
    assert!(request_lines.len() >= 8, "{logs}");
    for l in &request_lines {
        let id = l["span"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no request id: {l}"));
        assert_eq!(id.len(), 16, "{l}");
    }
    for id in ids {
        assert!(
            request_lines.iter().any(|l| l["span"]["id"] == id),
            "the id {id} of an error answer is in the log"
        );
    }
    assert!(!logs.contains("secret words") && !logs.contains(&alice.token[4..]));
}

/// An older server refuses a database a newer one migrated (its schema version is higher), with
/// a message that says what to do, and changes nothing.
#[test]
fn a_database_from_a_newer_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut p = Process::spawn_with(&data, "warn", std::process::Stdio::null());
    assert!(p.terminate().success());
    // The schema version: SQLite's user_version, or PostgreSQL's zkwiki_schema table.
    let pg = match store::database_for(&data) {
        server::config::Database::Postgres { url, .. } => Some(url),
        server::config::Database::Sqlite => None,
    };
    let db = data.join("zkwiki.sqlite3");
    let version = || match &pg {
        Some(url) => store::query_i64(url, "SELECT version FROM zkwiki_schema"),
        None => rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap(),
    };
    assert_eq!(version(), server::db::SCHEMA_VERSION);
    match &pg {
        Some(url) => store::batch(url, "UPDATE zkwiki_schema SET version = 99"),
        None => rusqlite::Connection::open(&db)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap(),
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zkwiki-server"));
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data);
    if let Some(url) = &pg {
        cmd.env("ZKWIKI_SERVER_DATABASE", url);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schema version 99") && err.contains("restore a backup"),
        "{err}"
    );
    assert_eq!(version(), 99);
}
