//! Harness for the end-to-end browser tests: the real `zkwiki-server` on a loopback port with a
//! fresh data directory, serving the built web app, and Debian's headless Chromium driven through
//! chromedriver (WebDriver, via fantoccini).
//!
//! Inputs (all set by `cargo xtask test`): `ZKWIKI_WEB_DIR` (the built app, else
//! `target/web`), `CHROMEDRIVER` and `CHROMIUM` (else `/usr/bin/…`), and the server binary
//! (`ZKWIKI_SERVER_BIN`, else `zkwiki-server` next to this test's target directory). Anything
//! missing fails the test with a message saying to run `cargo xtask test`; nothing is skipped.

#![allow(dead_code)]

pub mod member;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long to wait for something to appear in the page.
pub const WAIT: Duration = Duration::from_secs(20);

/// The workspace root (this crate's parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo target directory this test was built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        };
    }
    // target/<profile>/deps/<test binary>
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn missing(what: &str) -> ! {
    panic!(
        "{what}\n\nThe browser tests need the built web app, zkwiki-server, Chromium and \
         chromedriver. Run them with `cargo xtask test` (it installs and builds all of it and \
         sets ZKWIKI_WEB_DIR); or build by hand: `cargo xtask serve` builds target/web, \
         `cargo build -p server` builds the server, `apt-get install -y chromium chromium-driver`."
    )
}

/// The built web app.
pub fn web_dir() -> PathBuf {
    let dir = std::env::var_os("ZKWIKI_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("web"));
    let index = dir.join("index.html");
    let Ok(html) = std::fs::read_to_string(&index) else {
        missing(&format!(
            "The web app is not built: {} is missing.",
            index.display()
        ));
    };
    if html.contains("@sri:") || !dir.join("pkg").join("web_wasm_bg.wasm").is_file() {
        missing(&format!(
            "{} is not a complete web build (no wasm, or integrity placeholders left).",
            dir.display()
        ));
    }
    dir
}

/// The server binary.
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ZKWIKI_SERVER_BIN") {
        // Relative to the workspace root (tests run in the package directory).
        return workspace_root().join(p);
    }
    let candidates = [
        std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.join("zkwiki-server"))),
        Some(target_dir().join("debug").join("zkwiki-server")),
        Some(target_dir().join("release").join("zkwiki-server")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| missing("zkwiki-server is not built (cargo build -p server)."))
}

/// The `zkwiki` CLI binary (built by `cargo test --workspace` for the cli's own tests).
pub fn cli_bin() -> PathBuf {
    let candidates = [
        std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.join("zkwiki"))),
        Some(target_dir().join("debug").join("zkwiki")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| missing("the zkwiki CLI is not built (cargo build -p cli)."))
}

/// Runs the CLI in an isolated home with `args`; returns its standard output (panics on failure).
pub fn cli(home: &Path, args: &[&str]) -> String {
    std::fs::create_dir_all(home).expect("cli home");
    let out = Command::new(cli_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("ZKWIKI_CONFIG_DIR", home.join("config"))
        .env("ZKWIKI_DATA_DIR", home.join("data"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .current_dir(home)
        .output()
        .expect("run zkwiki");
    assert!(
        out.status.success(),
        "zkwiki {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tool(env: &str, default: &str) -> PathBuf {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if !p.is_file() {
        missing(&format!("{} not found (set {env}).", p.display()));
    }
    p
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A child process killed (by its own id) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running zkwiki-server with its own data directory.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its data directory.
    pub data: PathBuf,
    _proc: Proc,
}

impl Server {
    /// Starts the server on a free port with a fresh data directory.
    pub fn start(name: &str) -> Server {
        Self::start_serving(name, &web_dir())
    }

    /// Like [`Server::start`], serving the web app from `web`.
    pub fn start_serving(name: &str, web: &Path) -> Server {
        let data = target_dir()
            .join("tmp")
            .join(format!("web-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("data dir");
        let mut child = Command::new(server_bin())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--web-dir")
            .arg(web)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start zkwiki-server");
        let stdout = child.stdout.take().expect("stdout");
        let proc = Proc(child);
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("zkwiki-server exited before listening");
            };
            if let Some(url) = line.split("listening on ").nth(1) {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            base,
            data,
            _proc: proc,
        }
    }

    /// The bare git repository of a wiki.
    pub fn repo(&self, wiki: &str) -> PathBuf {
        self.data.join("wikis").join(format!("{wiki}.git"))
    }
}

/// chromedriver and a headless Chromium session.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    _driver: Proc,
}

/// The capabilities of a headless Chromium with a fresh profile, plus `extra` flags.
fn chromium_capabilities(extra: &[&str]) -> serde_json::Map<String, Value> {
    let mut caps = json!({
        "goog:chromeOptions": {
            "binary": tool("CHROMIUM", "/usr/bin/chromium"),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1360,900", "--disable-dev-shm-usage",
            ],
        },
        "unhandledPromptBehavior": "ignore",
    });
    if let Some(args) = caps["goog:chromeOptions"]["args"].as_array_mut() {
        args.extend(extra.iter().map(|a| json!(a)));
    }
    match caps {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (fresh profile).
    pub async fn start() -> Browser {
        Self::start_with(&[]).await
    }

    /// Like [`Browser::start`], with extra Chromium flags (e.g. `--force-dark-mode`).
    pub async fn start_with(extra: &[&str]) -> Browser {
        // The workspace enables both of rustls' crypto providers (ring via ureq, aws-lc-rs via the
        // AWS SDK), so rustls cannot pick one by itself: choose ring for the WebDriver client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let caps = chromium_capabilities(extra);
        // A loaded CI machine may start chromedriver slowly, and a port picked free can be taken
        // by a parallel test before chromedriver binds it: retry on a fresh port.
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let driver = Command::new(tool("CHROMEDRIVER", "/usr/bin/chromedriver"))
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let mut driver = Proc(driver);
            let url = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(45) {
                match ClientBuilder::rustls()
                    .expect("rustls")
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => {
                        return Browser {
                            client,
                            _driver: driver,
                        };
                    }
                    Err(e) => last_error = e.to_string(),
                }
                if let Ok(Some(status)) = driver.0.try_wait() {
                    last_error = format!("chromedriver exited ({status}): {last_error}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        panic!("could not start a Chromium session after 3 attempts: {last_error}");
    }

    /// Waits for an element by CSS selector.
    pub async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
    }

    /// Waits until a JavaScript expression is truthy; returns its value.
    pub async fn wait_js(&self, expr: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self
                .client
                .execute(&format!("return ({expr});"), vec![])
                .await
                .unwrap_or(Value::Null);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if started.elapsed() > WAIT {
                self.screenshot("failure").await;
                let text = self.text("body").await;
                let logs = self
                    .client
                    .execute("return JSON.stringify(window.zkwikiErrors || []);", vec![])
                    .await
                    .unwrap_or(Value::Null);
                eprintln!("page errors: {logs}");
                panic!("timed out waiting for `{expr}`; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs JavaScript and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The visible text of the first element matching `css` (empty if none).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Types into a field (cleared first).
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.wait(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Sets a textarea's value at once (long text) and fires `input`.
    pub async fn set_value(&self, css: &str, text: &str) {
        self.wait(css).await;
        self.client
            .execute(
                "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
                 e.dispatchEvent(new Event('input', {bubbles: true}));",
                vec![json!(css), json!(text)],
            )
            .await
            .expect("set value");
    }

    /// Clicks an element (found again if the app redrew it meanwhile).
    pub async fn click(&self, css: &str) {
        let mut last = String::new();
        for _ in 0..20 {
            match self.wait(css).await.click().await {
                Ok(()) => return,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("click {css}: {last}");
    }

    /// Goes to a URL hash of the app (no reload).
    pub async fn route(&self, hash: &str) {
        self.client
            .execute("location.hash = arguments[0];", vec![json!(hash)])
            .await
            .expect("route");
    }

    /// Signs in through the form at `base` (ticking "keep me signed in" when `keep`) and waits
    /// for the app to name the user.
    pub async fn login_with(&self, base: &str, user: &str, pass: &str, keep: bool) {
        self.client.goto(&format!("{base}/")).await.unwrap();
        self.fill("#login-user", user).await;
        self.fill("#login-pass", pass).await;
        if keep {
            self.click("#keep-signed-in").await;
        }
        self.click("#login-submit").await;
        self.wait_js(&format!(
            "document.getElementById('whoami')?.textContent === '{user}'"
        ))
        .await;
    }

    /// [`Self::login_with`] without "keep me signed in".
    pub async fn login(&self, base: &str, user: &str, pass: &str) {
        self.login_with(base, user, pass, false).await;
    }

    /// Opens a page of `wiki` and waits for *its* body (not the one shown before the route
    /// changed) in this wiki.
    pub async fn open_page(&self, wiki: &str, path: &str) {
        let enc = path.replace(' ', "%20");
        self.route(&format!("#/w/{wiki}/p/{enc}")).await;
        self.wait_js(&format!(
            "document.getElementById('page-body')?.dataset.path === {path:?} && decodeURIComponent(location.hash).endsWith({path:?}) && window.zkwikiTest.wiki() === {wiki:?}"
        ))
        .await;
    }

    /// Fails the test if the page logged a script error or a CSP violation.
    pub async fn no_script_errors(&self) {
        let errors = self.js("return window.zkwikiErrors;").await;
        assert_eq!(errors, json!([]), "script errors or CSP violations");
    }

    /// Saves a PNG screenshot as `target/artifacts/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = target_dir().join("artifacts").join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// Runs git with `args` in a bare repository.
pub fn git(repo: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(repo).args(args);
    cmd.env("GIT_INDEX_FILE", repo.join("zkwiki-e2e-index"));
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("git");
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).expect("git stdin");
    }
    let out = child.wait_with_output().expect("git");
    assert!(out.status.success(), "git {args:?} failed");
    out.stdout
}

/// Tampers with the server's storage as a malicious operator would: a new commit on `main` whose
/// tree has one byte flipped in the envelope of `page` (the state and manifest are untouched).
pub fn flip_byte_in_page(repo: &Path, page: &str) {
    let path = format!("pages/{page}");
    let mut blob = git(repo, &["cat-file", "blob", &format!("main:{path}")], None);
    let i = blob.len() - 5;
    blob[i] ^= 0x01;
    let oid = String::from_utf8(git(repo, &["hash-object", "-w", "--stdin"], Some(&blob)))
        .expect("oid")
        .trim()
        .to_owned();
    git(repo, &["read-tree", "main"], None);
    git(
        repo,
        &[
            "update-index",
            "--cacheinfo",
            &format!("100644,{oid},{path}"),
        ],
        None,
    );
    let tree = String::from_utf8(git(repo, &["write-tree"], None))
        .expect("tree")
        .trim()
        .to_owned();
    let parent = String::from_utf8(git(repo, &["rev-parse", "main"], None))
        .expect("rev")
        .trim()
        .to_owned();
    let commit = String::from_utf8(git(
        repo,
        &[
            "-c",
            "user.name=zkwiki",
            "-c",
            "user.email=zkwiki@invalid",
            "commit-tree",
            &tree,
            "-p",
            &parent,
            "-m",
            "tampered",
        ],
        None,
    ))
    .expect("commit")
    .trim()
    .to_owned();
    git(
        repo,
        &["update-ref", "refs/heads/main", &commit, &parent],
        None,
    );
    let _ = std::fs::remove_file(repo.join("zkwiki-e2e-index"));
}

/// Runs git in a bare repository and returns its trimmed output.
pub fn git_text(repo: &Path, args: &[&str]) -> String {
    String::from_utf8(git(repo, args, None))
        .expect("git output")
        .trim()
        .to_owned()
}

/// The commit of each state on `main`, as `(seq, commit)`, oldest first (commit messages are
/// `zkwiki state <seq>`).
pub fn state_commits(repo: &Path) -> Vec<(u64, String)> {
    let log = git_text(
        repo,
        &["log", "--first-parent", "--format=%H %s", "refs/heads/main"],
    );
    let mut out: Vec<(u64, String)> = log
        .lines()
        .filter_map(|l| {
            let (commit, subject) = l.split_once(' ')?;
            let seq = subject.strip_prefix("zkwiki state ")?.trim().parse().ok()?;
            Some((seq, commit.to_owned()))
        })
        .collect();
    out.reverse();
    out
}

/// Moves `main` to `commit`, as an operator with access to the disk can.
pub fn set_main(repo: &Path, commit: &str) {
    git(repo, &["update-ref", "refs/heads/main", commit], None);
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).expect("copy");
        }
    }
}
