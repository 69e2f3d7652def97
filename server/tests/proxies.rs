//! The reverse-proxy configurations of `docs/deploy.md`, run for real in front of the server
//! (where nginx or Caddy is installed; skipped with a message where not): HTTPS with HSTS, HTTP
//! redirected, `/metrics` not published, and the client's own address reaching the server through
//! `X-Forwarded-For` with `--trusted-proxy` (one address's failed logins do not limit another's).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::{Stopped, free_port, have, wait_for_port};
use common::*;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(rel)).unwrap()
}

/// `curl` from the loopback source `src` to `wiki.example.org:port` (resolved to 127.0.0.1):
/// status, headers (lowercase) and body.
fn curl(
    src: &str,
    scheme: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "--max-time",
        "10",
        "--interface",
        src,
        "-X",
        method,
        "-D",
        "-",
    ])
    .arg("--resolve")
    .arg(format!("wiki.example.org:{port}:127.0.0.1"))
    .arg(format!("{scheme}://wiki.example.org:{port}{path}"));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Skip any interim head (100 Continue).
    let text = text
        .rsplit_once("\r\n\r\nHTTP/")
        .map_or(text.clone(), |(_, r)| format!("HTTP/{r}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// What both proxies must show, with the server behind them on `server_port`.
fn check_through(https: u16, http: Option<u16>) {
    let (status, head, body) = curl("127.0.0.1", "https", https, "GET", "/healthz", None);
    assert_eq!(status, 200, "{head}{body}");
    assert!(
        head.contains("strict-transport-security: max-age=63072000"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-request-id: "), "{head}");
    let (status, _, _) = curl("127.0.0.1", "https", https, "GET", "/metrics", None);
    assert_eq!(status, 404, "the metrics stay private");
    if let Some(http) = http {
        let (status, head, _) = curl("127.0.0.1", "http", http, "GET", "/healthz", None);
        assert!(status == 301 || status == 308, "{head}");
        assert!(
            head.contains("location: https://wiki.example.org"),
            "{head}"
        );
    }
    // Failed logins from 127.0.0.2 reach the server as 127.0.0.2: after its name-and-address
    // bucket (10) is spent, 127.0.0.3 still gets its own.
    let wrong = r#"{"user":"mallory","protector":"passphrase","auth":"1111111111111111111111111111111111111111111111111111111111111111"}"#;
    let mut last = 0;
    for _ in 0..11 {
        last = curl(
            "127.0.0.2",
            "https",
            https,
            "POST",
            "/api/v1/login",
            Some(wrong),
        )
        .0;
    }
    assert_eq!(last, 429, "the attacker's address is limited");
    let (status, _, body) = curl(
        "127.0.0.3",
        "https",
        https,
        "POST",
        "/api/v1/login",
        Some(wrong),
    );
    assert_eq!(status, 401, "another address is not: {body}");
}

#[test]
fn nginx_config_of_the_guide_in_front_of_the_server() {
    if !(have("nginx") && have("openssl") && have("curl")) {
        eprintln!("SKIPPED: nginx, openssl or curl is not installed; the nginx config was not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Process::spawn_args(
        &d.join("data"),
        "warn",
        Stdio::null(),
        &["--trusted-proxy", "127.0.0.1,::1"],
    );
    let server_port = server.base.rsplit(':').next().unwrap().to_owned();
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=wiki.example.org",
        ])
        .arg("-keyout")
        .arg(d.join("privkey.pem"))
        .arg("-out")
        .arg(d.join("fullchain.pem"))
        .output()
        .unwrap();
    assert!(ok.status.success());
    let (http, https) = (free_port(), free_port());
    let site = read("server/deploy/nginx.conf")
        .replace(
            "/etc/letsencrypt/live/wiki.example.org",
            d.to_str().unwrap(),
        )
        .replace("/var/www/letsencrypt", d.to_str().unwrap())
        .replace("    listen [::]:80;\n", "")
        .replace("    listen [::]:443 ssl http2;\n", "")
        .replace("listen 80;", &format!("listen 127.0.0.1:{http};"))
        .replace(
            "listen 443 ssl http2;",
            &format!("listen 127.0.0.1:{https} ssl http2;"),
        )
        .replace(
            "return 301 https://$host$request_uri;",
            &format!("return 301 https://$host:{https}$request_uri;"),
        )
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{server_port}"));
    std::fs::write(d.join("site.conf"), site).unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_owned();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "user root;\npid {};\nerror_log {};\nevents {{}}\nhttp {{\n access_log off;\n \
             client_body_temp_path {};\n proxy_temp_path {};\n include {};\n}}\n",
            p("nginx.pid"),
            p("error.log"),
            p("body"),
            p("proxy"),
            p("site.conf")
        ),
    )
    .unwrap();
    let nginx = Stopped(
        Command::new("nginx")
            .args([
                "-e",
                &p("error.log"),
                "-c",
                &p("nginx.conf"),
                "-g",
                "daemon off;",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(https, "the proxy");
    check_through(https, Some(http));
    drop(nginx);
}

#[test]
fn caddy_config_of_the_guide_in_front_of_the_server() {
    if !(have("caddy") && have("curl")) {
        eprintln!("SKIPPED: caddy or curl is not installed; the Caddy config was not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Process::spawn_args(
        &d.join("data"),
        "warn",
        Stdio::null(),
        &["--trusted-proxy", "127.0.0.1,::1"],
    );
    let server_port = server.base.rsplit(':').next().unwrap().to_owned();
    let (http, https) = (free_port(), free_port());
    // The guide's site, with Caddy's own CA instead of Let's Encrypt and test ports.
    let caddyfile = format!(
        "{{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\thttp_port {http}\n\thttps_port {https}\n\tdefault_bind 127.0.0.1\n}}\n\n{}",
        read("server/deploy/Caddyfile")
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{server_port}"))
    );
    std::fs::write(d.join("Caddyfile"), caddyfile).unwrap();
    let caddy = Stopped(
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(d.join("Caddyfile"))
            .env("HOME", d)
            .env("XDG_DATA_HOME", d.join("share"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(https, "the proxy");
    // Caddy issues its local certificate just after it starts listening.
    let until = Instant::now() + Duration::from_secs(20);
    while curl("127.0.0.1", "https", https, "GET", "/healthz", None).0 != 200 {
        assert!(Instant::now() < until, "Caddy never served HTTPS");
        std::thread::sleep(Duration::from_millis(200));
    }
    check_through(https, Some(http));
    drop(caddy);
}
