//! A private PostgreSQL cluster for the tests: Debian's `initdb` and `pg_ctl` on a fresh
//! directory, listening only on a Unix socket in that directory (no TCP port is opened; the port
//! number only names the socket), trust authentication, stopped and deleted when dropped.
//!
//! PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user that
//! Debian's package creates, in a directory that user owns; otherwise as the current user.

use crate::install::is_root;
use crate::proc::{probe, show};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The env var the tests read the cluster's connection string from.
pub const CONN_ENV: &str = "ZKWIKI_TEST_POSTGRES";

/// A running cluster.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    owner: Option<String>,
    /// `key=value` connection string (Unix socket, trust authentication).
    pub conninfo: String,
    keep: bool,
}

/// The directory of Debian's PostgreSQL programs: the newest `/usr/lib/postgresql/*/bin`, or
/// wherever `initdb` is on `PATH`.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .or_else(|| crate::paths::which("initdb").and_then(|p| p.parent().map(Path::to_path_buf)))
}

/// A free port number (for the socket's name).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Cluster {
    /// `program args…`, as the cluster's owner.
    fn as_owner(&self, program: &str) -> Command {
        command_as(self.owner.as_deref(), &self.bin.join(program))
    }

    /// Initializes and starts a cluster in a new directory under the system's temp dir.
    pub fn start() -> Result<Self> {
        let bin = bin_dir().context(
            "PostgreSQL's programs (initdb, pg_ctl) are not installed: apt-get install postgresql",
        )?;
        let owner = if is_root() {
            probe(Command::new("id").args(["-u", "postgres"])).context(
                "running as root and there is no `postgres` user to run PostgreSQL as \
                 (Debian's postgresql package creates it)",
            )?;
            Some("postgres".to_owned())
        } else {
            None
        };
        let dir =
            std::env::temp_dir().join(format!("zkwiki-pg-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(dir.join("run"))?;
        if let Some(user) = &owner {
            run(Command::new("chown").args(["-R", user]).arg(&dir))?;
        }
        let port = free_port()?;
        let cluster = Self {
            conninfo: format!(
                "host={} port={port} user=postgres dbname=postgres",
                dir.join("run").display()
            ),
            dir,
            bin,
            owner,
            keep: false,
        };
        let data = cluster.dir.join("data");
        run(cluster
            .as_owner("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdout(std::process::Stdio::null()))?;
        let opts = format!(
            "-k {} -p {port} -c listen_addresses='' -c max_connections=300",
            cluster.dir.join("run").display()
        );
        let log = cluster.dir.join("postgres.log");
        let started = cluster
            .as_owner("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(&log)
            .arg("start")
            .stdout(std::process::Stdio::null())
            .status();
        if !started.is_ok_and(|s| s.success()) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("pg_ctl could not start PostgreSQL; its log:\n{tail}");
        }
        Ok(cluster)
    }

    /// Leaves the cluster running when dropped (`cargo xtask postgres`); returns its directory.
    pub fn detach(mut self) -> PathBuf {
        self.keep = true;
        self.dir.clone()
    }

    /// Stops the cluster in `dir` (made by [`Cluster::start`]) and deletes it.
    pub fn stop_dir(dir: &Path) -> Result<()> {
        let bin = bin_dir().context("PostgreSQL's programs are not installed")?;
        let owner = is_root().then(|| "postgres".to_owned());
        let mut cmd = command_as(owner.as_deref(), &bin.join("pg_ctl"));
        cmd.args(["-m", "immediate", "-D"])
            .arg(dir.join("data"))
            .arg("stop")
            .stdout(std::process::Stdio::null());
        let line = show(&cmd);
        let status = cmd
            .status()
            .with_context(|| format!("could not run `{line}`"))?;
        if !status.success() {
            eprintln!(
                "xtask: `{line}` failed ({status}); deleting {} anyway",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))
    }
}

/// Runs `cmd`, echoing it on stderr (stdout is the `export` line of `cargo xtask postgres`).
fn run(cmd: &mut Command) -> Result<()> {
    let line = show(cmd);
    eprintln!("  $ {line}");
    let status = cmd
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

fn command_as(owner: Option<&str>, program: &Path) -> Command {
    match owner {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = Self::stop_dir(&self.dir) {
            eprintln!("xtask: stopping the test PostgreSQL: {e:#}");
        }
    }
}

/// `cargo xtask postgres [--stop]`: starts a cluster that outlives the command and prints the
/// `export` line for the tests (its directory is kept in `target/test-postgres`), or stops it.
pub fn developer(stop: bool) -> Result<()> {
    let root = crate::paths::repo_root();
    let note = crate::paths::target_dir(&root).join("test-postgres");
    if let Ok(dir) = std::fs::read_to_string(&note) {
        Cluster::stop_dir(Path::new(dir.trim()))?;
        std::fs::remove_file(&note)?;
        eprintln!("xtask: stopped the test PostgreSQL in {}", dir.trim());
    }
    if stop {
        return Ok(());
    }
    let cluster = Cluster::start()?;
    let conninfo = cluster.conninfo.clone();
    let dir = cluster.detach();
    std::fs::create_dir_all(note.parent().unwrap_or(&root))?;
    std::fs::write(&note, dir.display().to_string())?;
    eprintln!(
        "xtask: PostgreSQL runs in {} (stop it: cargo xtask postgres --stop)",
        dir.display()
    );
    println!("export {CONN_ENV}='{conninfo}'");
    Ok(())
}
