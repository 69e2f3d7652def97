//! Test helpers: an isolated `zkwiki` environment per test, the real server on loopback, the
//! server's bare repositories for playing a malicious operator, and a git helper.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// The passphrase every test user has.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The `zkwiki` binary under test.
pub fn zkwiki_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zkwiki"))
}

/// Builds `zkwiki-server` once per test process and returns its path.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = zkwiki_bin().parent().expect("target dir").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace");
        let status = Command::new(cargo)
            .current_dir(root)
            .args(["build", "-p", "server", "--bin", "zkwiki-server"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building zkwiki-server failed");
        dir.join("zkwiki-server")
    })
    .clone()
}

/// A running `zkwiki-server` on 127.0.0.1 with its own data folder; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's data folder.
    pub data: PathBuf,
    /// Extra command-line arguments (kept for a restart).
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with a fresh data folder.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with a fresh data folder and extra command-line arguments.
    pub fn start_with(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().to_path_buf();
        let mut s = Self::start_on_with(&data, "127.0.0.1:0", args);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data folder.
    pub fn start_on(data: &Path, listen: &str) -> Self {
        Self::start_on_with(data, listen, &[])
    }

    fn start_on_with(data: &Path, listen: &str, args: &[&str]) -> Self {
        let mut child = Command::new(server_bin())
            .args(["--listen", listen, "--data-dir"])
            .arg(data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start zkwiki-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut url = None;
        for _ in 0..50 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(rest) = line.trim().strip_prefix("zkwiki-server listening on ") {
                url = Some(rest.trim().to_owned());
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        let url = url.expect("the server did not print its address");
        Self {
            child,
            url,
            data: data.to_path_buf(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            _tmp: None,
        }
    }

    /// The bare repository of a wiki.
    pub fn repo(&self, wiki: &str) -> PathBuf {
        self.data.join("wikis").join(format!("{wiki}.git"))
    }

    /// Stops the server and starts it again on the same data folder and address (it then
    /// rebuilds its membership index from the repositories as they are).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let addr = self.url.trim_start_matches("http://").to_owned();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut next = Self::start_on_with(&self.data, &addr, &args);
        std::mem::swap(&mut self.child, &mut next.child);
    }

    /// Stops the server.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One user's isolated zkwiki environment (config, data, working folder).
pub struct Env {
    /// Root temp folder.
    pub tmp: tempfile::TempDir,
    /// Server URL, if any.
    pub server: Option<String>,
    /// Extra environment variables.
    pub vars: Vec<(String, String)>,
}

/// The result of one run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Env {
    /// A fresh environment for a server.
    pub fn new(server: Option<&Server>) -> Self {
        Self {
            tmp: tempfile::tempdir().expect("tempdir"),
            server: server.map(|s| s.url.clone()),
            vars: Vec::new(),
        }
    }

    /// The working folder commands run in.
    pub fn work(&self) -> PathBuf {
        let p = self.tmp.path().join("work");
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    /// A path inside the working folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.work().join(rel)
    }

    /// The `zkwiki` command with this environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(zkwiki_bin());
        cmd.args(args)
            .current_dir(self.work())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path())
            .env("ZKWIKI_CONFIG_DIR", self.tmp.path().join("config"))
            .env("ZKWIKI_DATA_DIR", self.tmp.path().join("data"))
            .env("ZKWIKI_PASSPHRASE", PASSPHRASE)
            .env("ZKWIKI_TEST_KDF_FLOOR", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@invalid");
        if let Some(s) = &self.server {
            cmd.env("ZKWIKI_URL", s);
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `git -C dir ARGS` with this environment (so git's helpers, such as `zkwiki
    /// textconv`, run as this user); returns standard output and error together.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> String {
        let cmd = self.cmd(&[]);
        let out = Command::new("git")
            .env_clear()
            .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .expect("git");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Runs with stdin from `input`.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zkwiki");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.to_vec();
        let t = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait");
        let _ = t.join();
        Run::from(out)
    }

    /// Runs a command.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.cmd(args)
                .stdin(Stdio::null())
                .output()
                .expect("run zkwiki"),
        )
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "zkwiki {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            r.code, r.stdout, r.stderr
        );
        r.stdout
    }

    /// Runs a command that must fail with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "zkwiki {args:?}: expected exit {code}, got {}:\nstdout: {}\nstderr: {}",
            r.code, r.stdout, r.stderr
        );
        r.stderr
    }

    /// `put` from bytes.
    pub fn put(&self, path: &str, content: &str) -> String {
        let r = self.run_with_input(&["put", path, "-"], content.as_bytes());
        assert_eq!(r.code, 0, "put {path}: {}", r.stderr);
        r.stdout
    }

    /// Registers `user` and creates wiki `wiki`; returns the wiki id.
    pub fn setup(&self, user: &str, wiki: &str) -> String {
        self.ok(&["register", user, "--recovery-key-out", "recovery.txt"]);
        let out = self.ok(&["--json", "wiki", "create", wiki]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        v["wiki"].as_str().expect("wiki id").to_owned()
    }

    /// The current profile's folder in the data dir (sealed identity, session).
    pub fn profile_dir(&self) -> PathBuf {
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.tmp.path().join("config/config.json")).expect("config.json"),
        )
        .expect("config json");
        let name = config["profile"].as_str().expect("a current profile");
        self.tmp.path().join("data/profiles").join(name)
    }

    /// Parses JSON stdout of a successful command.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full)).expect("json output")
    }
}

/// A signed head as stored: keyring chain, state, manifest, and the git tree (path, blob id).
pub type HeadBytes = (Vec<Vec<u8>>, Vec<u8>, Vec<u8>, Vec<(String, String)>);

/// Runs git in a folder and returns stdout (panics on failure).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "mallory")
        .env("GIT_AUTHOR_EMAIL", "m@invalid")
        .env("GIT_COMMITTER_NAME", "mallory")
        .env("GIT_COMMITTER_EMAIL", "m@invalid")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs git with stdin.
pub fn git_in(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "mallory")
        .env("GIT_AUTHOR_EMAIL", "m@invalid")
        .env("GIT_COMMITTER_NAME", "mallory")
        .env("GIT_COMMITTER_EMAIL", "m@invalid")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A malicious operator's tools on a bare wiki repository: rewrite `main` to a tree where some
/// files are replaced, removed or added, as a new commit on top (or anywhere).
pub struct Operator {
    /// The bare repository.
    pub repo: PathBuf,
}

impl Operator {
    /// As a writer whose key the operator has (or who colludes with it, or whose client it
    /// showed an old head), grows `main` by one signed state that adds a page at `path`: how a
    /// second branch is built on the server's disk.
    pub fn extend(&self, signer: &core_crypto::identity::UserIdentity, path: &str, text: &str) {
        use core_crypto::envelope::{PageKind, PageRecord, seal_page};
        use core_crypto::ids::PageId;
        use core_crypto::snapshot::{SeenRecord, Snapshot};
        use core_crypto::state::{Manifest, ManifestEntry, StateDraft, WikiState};
        let (chain, state, manifest, tree) = self.head_bytes();
        let snap = Snapshot::verify(&chain, &state, &manifest, &SeenRecord::default()).unwrap();
        let keys = snap.keyring.unlock(signer).unwrap();
        let page = PageId::random(&mut rand_core::OsRng);
        let record = PageRecord {
            kind: PageKind::Markdown,
            path: path.into(),
            author: "alice".into(),
            written_at_ms: 1,
            note: Default::default(),
            content: text.as_bytes().to_vec(),
        };
        let key = keys.key_for_writing(path).unwrap();
        let blob = seal_page(
            &mut rand_core::OsRng,
            &key,
            &snap.keyring.wiki,
            &page,
            &record,
        )
        .unwrap();
        let mut m = Manifest::decode(&manifest).unwrap();
        m.pages
            .insert(page, ManifestEntry::for_envelope(&blob).unwrap());
        let next =
            StateDraft::next(&WikiState::decode(&state).unwrap(), &snap.keyring, &m).sign(signer);
        let mut files: Vec<(String, String)> = tree
            .into_iter()
            .filter(|(p, _)| p != "state" && p != "manifest")
            .collect();
        files.push(("state".into(), self.write_blob(next.as_bytes())));
        files.push(("manifest".into(), self.write_blob(&m.encode())));
        files.push((format!("pages/{page}"), self.write_blob(&blob)));
        self.commit_tree(&files);
    }

    /// The operator of a repository.
    pub fn new(repo: PathBuf) -> Self {
        Self { repo }
    }

    /// `path → blob id` of `rev`'s tree.
    pub fn tree(&self, rev: &str) -> Vec<(String, String)> {
        git(&self.repo, &["ls-tree", "-r", "--full-tree", rev])
            .lines()
            .filter_map(|l| {
                let (meta, path) = l.split_once('\t')?;
                Some((path.to_owned(), meta.split(' ').nth(2)?.to_owned()))
            })
            .collect()
    }

    /// Bytes of a blob.
    pub fn blob(&self, oid: &str) -> Vec<u8> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.repo)
            .args(["cat-file", "blob", oid])
            .output()
            .expect("git");
        out.stdout
    }

    /// Writes a blob.
    pub fn write_blob(&self, bytes: &[u8]) -> String {
        git_in(&self.repo, &["hash-object", "-w", "--stdin"], bytes)
            .trim()
            .to_owned()
    }

    /// The commit `main` points to.
    pub fn head(&self) -> String {
        git(&self.repo, &["rev-parse", "refs/heads/main"])
            .trim()
            .to_owned()
    }

    /// Commits a tree given as `path → blob id` on top of `main` and moves `main` to it.
    pub fn commit_tree(&self, files: &[(String, String)]) -> String {
        // Build nested trees with `git mktree` from the deepest folders up.
        fn build(op: &Operator, files: &[(String, String)], prefix: &str) -> String {
            let mut entries = Vec::new();
            let mut dirs: Vec<String> = Vec::new();
            for (path, oid) in files {
                let Some(rest) = path.strip_prefix(prefix) else {
                    continue;
                };
                match rest.split_once('/') {
                    None => entries.push(format!("100644 blob {oid}\t{rest}")),
                    Some((dir, _)) => {
                        if !dirs.contains(&dir.to_owned()) {
                            dirs.push(dir.to_owned());
                        }
                    }
                }
            }
            for d in dirs {
                let sub = build(op, files, &format!("{prefix}{d}/"));
                entries.push(format!("040000 tree {sub}\t{d}"));
            }
            entries.sort_by(|a, b| a.split('\t').nth(1).cmp(&b.split('\t').nth(1)));
            let mut input = entries.join("\n");
            input.push('\n');
            git_in(&op.repo, &["mktree"], input.as_bytes())
                .trim()
                .to_owned()
        }
        let tree = build(self, files, "");
        let head = self.head();
        let commit = git(
            &self.repo,
            &[
                "commit-tree",
                &tree,
                "-p",
                &head,
                "-m",
                "zkwiki state tampered",
            ],
        )
        .trim()
        .to_owned();
        git(&self.repo, &["update-ref", "refs/heads/main", &commit]);
        commit
    }

    /// The signed head of `main`: keyring chain, state, manifest, and the tree.
    pub fn head_bytes(&self) -> HeadBytes {
        let tree = self.tree("refs/heads/main");
        let mut chain: Vec<(String, Vec<u8>)> = tree
            .iter()
            .filter(|(p, _)| p.starts_with("keyring/"))
            .map(|(p, oid)| (p.clone(), self.blob(oid)))
            .collect();
        chain.sort();
        let get = |name: &str| self.blob(&tree.iter().find(|(p, _)| p == name).unwrap().1);
        (
            chain.into_iter().map(|(_, b)| b).collect(),
            get("state"),
            get("manifest"),
            tree,
        )
    }

    /// Moves `main` to an older commit.
    pub fn reset(&self, commit: &str) {
        git(&self.repo, &["update-ref", "refs/heads/main", commit]);
    }
}

/// Files under a folder (relative paths, sorted), skipping `.zkwiki`.
pub fn list_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".zkwiki") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .expect("prefix")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A running witness (`zkwiki-server witness`) on 127.0.0.1 with its own data folder; killed on
/// drop.
pub struct Witness {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its key's fingerprint, as it printed it.
    pub fingerprint: String,
    /// Its data folder (the key and the database are under `witness/`).
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Witness {
    /// Starts a witness with a fresh data folder (so a new key) on a free port.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().to_path_buf();
        let mut w = Self::start_on(&data, "127.0.0.1:0");
        w._tmp = Some(tmp);
        w
    }

    /// Starts a witness on an existing data folder and address (`host:port`).
    pub fn start_on(data: &Path, listen: &str) -> Self {
        let mut child = Command::new(server_bin())
            .arg("--data-dir")
            .arg(data)
            .args(["witness", "--listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start zkwiki-server witness");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let (mut url, mut fingerprint) = (None, None);
        for _ in 0..50 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim();
            if let Some(fp) = line.strip_prefix("zkwiki-witness key fingerprint ") {
                fingerprint = Some(fp.to_owned());
            }
            if let Some(rest) = line.strip_prefix("zkwiki-witness listening on ") {
                url = Some(rest.to_owned());
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Self {
            child,
            url: url.expect("the witness did not print its address"),
            fingerprint: fingerprint.expect("the witness did not print its fingerprint"),
            data: data.to_path_buf(),
            _tmp: None,
        }
    }

    /// `host:port`, to start another process on the same address.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// Stops the witness (its data folder stays while `self` lives... so hand it over first).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Takes the temporary data folder out (so it outlives this process).
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.kill();
    }
}
