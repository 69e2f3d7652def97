//! The CDN read path measured for real: nginx with `proxy_cache` (a shared cache, as CloudFront
//! would be) in front of a server with `--public-blobs`, caching *every* route by URL alone, so
//! only the server's own `Cache-Control` decides what a shared cache keeps. Browsing sessions of
//! a member (log in, list wikis, keyring, head, the trail, every page's envelope by hash, pages
//! viewed by id, head refreshes) run through it while the wiki is being edited between sessions;
//! the test counts what the cache answered, and checks that it only ever answered blobs by hash.
//! Skipped with a message where nginx is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::procs::{Stopped, free_port, have, wait_for_port};
use common::*;
use core_crypto::ids::PageId;
use serde_json::json;

/// A shared cache on `port` in front of the server on `upstream`: every route cached by URL
/// (what the server's headers allow), `X-Cache-Status` on every answer. Blob requests reach the
/// server without `Authorization`, as a CDN cache policy keyed on the URL forwards none.
fn nginx_conf(dir: &std::path::Path, port: u16, upstream: &str) -> String {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    format!(
        "user root;\nworker_processes 1;\npid {pid};\nerror_log {err};\nevents {{}}\nhttp {{\n \
         access_log off;\n client_body_temp_path {body};\n proxy_temp_path {tmp};\n \
         proxy_cache_path {cache} levels=1:2 keys_zone=zk:10m max_size=200m inactive=1d \
         use_temp_path=off;\n server {{\n  listen 127.0.0.1:{port};\n  proxy_cache zk;\n  \
         proxy_cache_key $request_method$uri$is_args$args;\n  add_header X-Cache-Status \
         $upstream_cache_status always;\n  location ~ ^/api/v1/wikis/[0-9a-f]+/blobs/ {{\n   \
         proxy_set_header Authorization \"\";\n   proxy_pass {upstream};\n  }}\n  location / {{\n   \
         proxy_pass {upstream};\n  }}\n }}\n}}\n",
        pid = p("nginx.pid"),
        err = p("error.log"),
        body = p("body"),
        tmp = p("proxy"),
        cache = p("cache"),
    )
}

#[derive(Default, Debug)]
struct Tally {
    requests: usize,
    hits: usize,
    blob_requests: usize,
    blob_hits: usize,
}

impl Tally {
    /// Counts one answer; `blob` says whether it was a blob by hash.
    fn add(&mut self, r: &Resp, blob: bool, what: &str) {
        let hit = r.header("x-cache-status") == Some("HIT");
        assert!(
            blob || !hit,
            "a shared cache answered {what} ({}), which must stay private",
            r.status
        );
        self.requests += 1;
        self.hits += usize::from(hit);
        self.blob_requests += usize::from(blob);
        self.blob_hits += usize::from(blob && hit);
    }
}

#[test]
fn a_shared_cache_answers_blob_requests_and_nothing_private() {
    if !have("nginx") {
        eprintln!("SKIPPED: nginx is not installed; the CDN read path was not measured");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::spawn_args(
        &dir.path().join("data"),
        "warn",
        Stdio::null(),
        &["--public-blobs"],
    );
    let port = free_port();
    std::fs::write(
        dir.path().join("nginx.conf"),
        nginx_conf(dir.path(), port, &server.base),
    )
    .unwrap();
    let _nginx = Stopped(
        Command::new("nginx")
            .args(["-c", dir.path().join("nginx.conf").to_str().unwrap()])
            .args(["-e", dir.path().join("error.log").to_str().unwrap()])
            .args(["-g", "daemon off;"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "nginx");

    // The wiki: 40 pages of about 2 KiB, written straight to the server.
    let origin = server.client();
    let alice = register(&origin, "alice");
    let mut view = create_wiki(&origin, &alice);
    let w = view.wiki.clone();
    let mut pages: Vec<PageId> = (0..40)
        .map(|i| {
            let text = format!("# Page {i}\n\n{}", "lorem ipsum ".repeat(170));
            put_page(&origin, &alice, &mut view, &format!("p{i}.md"), &text).0
        })
        .collect();
    pages.sort();

    let cdn = Client::new(&format!("http://127.0.0.1:{port}"));
    let mut tally = Tally::default();
    let sessions = 6;
    for s in 0..sessions {
        if s > 0 {
            // Between sessions, three pages are edited (new blobs the cache has not seen).
            for k in 0..3 {
                let page = pages[(s * 3 + k) % pages.len()];
                let text = format!("# Edited in round {s}\n\n{}", "dolor sit ".repeat(200));
                put_page_id(&origin, &alice, &mut view, page, "edited.md", &text);
            }
        }
        // One member's browsing session in a fresh browser, as the web app makes it.
        let login = cdn.post(
            "/api/v1/login",
            None,
            &json!({"user": "alice", "protector": "passphrase", "auth": alice.passphrase_auth}),
        );
        login.expect(200, "");
        tally.add(&login, false, "a login");
        let token = login.json()["token"].as_str().unwrap().to_owned();
        for path in [
            "/api/v1/wikis".to_owned(),
            format!("/api/v1/wikis/{w}/keyring"),
            format!("/api/v1/wikis/{w}/head"),
            format!("/api/v1/wikis/{w}/states?from=1&to={}", view.snap.state.seq),
        ] {
            let r = cdn.get(&path, Some(&token));
            r.expect(200, "");
            tally.add(&r, false, &path);
        }
        // Every page's envelope by hash (the index, then the prefetch for search).
        for (_, entry) in view.snap.manifest.pages.iter() {
            let r = cdn.get(
                &format!("/api/v1/wikis/{w}/blobs/{}", entry.hash),
                Some(&token),
            );
            r.expect(200, "");
            tally.add(&r, true, "a blob");
        }
        // Eight pages viewed (the server's current copy, revalidated), two head refreshes.
        for page in pages.iter().skip(s).take(8) {
            let r = cdn.get(&format!("/api/v1/wikis/{w}/pages/{page}"), Some(&token));
            r.expect(200, "");
            tally.add(&r, false, "a page by id");
        }
        for _ in 0..2 {
            let r = cdn.get(&format!("/api/v1/wikis/{w}/head?manifest=0"), Some(&token));
            r.expect(200, "");
            tally.add(&r, false, "the head");
        }
    }
    let share = tally.hits as f64 / tally.requests as f64;
    let blob_share = tally.blob_hits as f64 / tally.blob_requests as f64;
    eprintln!(
        "CDN read path: {sessions} browsing sessions, {} requests, {} answered by the shared \
         cache ({:.1} %); blobs by hash: {} of {} ({:.1} %)",
        tally.requests,
        tally.hits,
        share * 100.0,
        tally.blob_hits,
        tally.blob_requests,
        blob_share * 100.0
    );
    // The first session fills the cache (40 misses); each later one misses only the 3 edited
    // pages.
    assert_eq!(tally.blob_requests, sessions * 40);
    assert_eq!(tally.blob_hits, (sessions - 1) * (40 - 3));
}
