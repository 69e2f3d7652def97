//! The unlock agent, in the way of `ssh-agent`: `zkwiki unlock [--for 8h]` opens the sealed
//! identity once and hands it to a small per-user process listening on a Unix socket that only
//! this user can reach; every later command (git's `textconv` too) asks it instead of asking for
//! the passphrase. `zkwiki lock` ends it; it ends by itself when its time is up. Nothing secret is
//! ever written to disk: the identity lives only in the agent's memory.
//!
//! The socket is `DATA/profiles/<profile>/agent/sock` (or `$ZKWIKI_AGENT_SOCK`) in a 0700 folder, the socket itself
//! 0600, and the agent also checks the peer's uid (`SO_PEERCRED`) on every connection.
//! Protocol: one JSON line per request (`{"op": "identity"}`, `{"op": "status"}`,
//! `{"op": "lock"}`), one JSON line per answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use core_crypto::identity::UserIdentity;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{CliError, ErrorKind, Result};

/// Longest an agent may keep the keys (30 days).
pub const MAX_LIFETIME: u64 = 30 * 86_400;

/// Where the agent of a profile listens (`profile_dir/agent/sock`, or `$ZKWIKI_AGENT_SOCK`).
pub fn socket_path(profile_dir: &Path) -> PathBuf {
    std::env::var_os("ZKWIKI_AGENT_SOCK")
        .filter(|v| !v.is_empty())
        .map_or_else(|| profile_dir.join("agent").join("sock"), PathBuf::from)
}

#[derive(Serialize, Deserialize)]
struct Request {
    op: String,
}

#[derive(Serialize, Deserialize, Default)]
struct Answer {
    #[serde(default)]
    user: Option<String>,
    /// `x25519 secret ‖ ed25519 seed`, base64 (only for `identity`).
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A running agent's state as `zkwiki unlock --status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The account whose keys it holds.
    pub user: String,
    /// When it stops (unix seconds).
    pub expires_at: u64,
}

fn ask(socket: &Path, op: &str) -> Option<Answer> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let line = serde_json::to_string(&Request { op: op.to_owned() }).ok()?;
    writeln!(stream, "{line}").ok()?;
    let mut answer = Zeroizing::new(String::new());
    BufReader::new(stream).read_line(&mut answer).ok()?;
    serde_json::from_str(&answer).ok()
}

/// The identity the agent holds, when one runs for this user and holds `user`'s keys.
pub fn identity(socket: &Path, user: &str) -> Option<UserIdentity> {
    let a = ask(socket, "identity")?;
    if a.user.as_deref() != Some(user) {
        return None;
    }
    let secret = Zeroizing::new(
        data_encoding::BASE64
            .decode(a.secret.as_deref()?.as_bytes())
            .ok()?,
    );
    UserIdentity::from_secret_bytes(&secret).ok()
}

/// What the agent reports, if one runs.
pub fn status(socket: &Path) -> Option<Status> {
    let a = ask(socket, "status")?;
    Some(Status {
        user: a.user?,
        expires_at: a.expires_at?,
    })
}

/// Asks the agent to stop. Returns whether one was running.
pub fn lock(socket: &Path) -> bool {
    let was = ask(socket, "lock").is_some();
    // A socket file left by an agent that died is removed too.
    let _ = std::fs::remove_file(socket);
    was
}

/// Starts an agent process holding `identity` for `lifetime`: this executable, run as
/// `zkwiki unlock --serve`, reading the secret from its standard input (never argv or the
/// environment). Returns once it listens.
pub fn spawn(socket: &Path, user: &str, identity: &UserIdentity, lifetime: u64) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = crate::git::self_exe()?;
    let mut child = std::process::Command::new(exe)
        .args(["unlock", "--serve", "--for", &format!("{lifetime}s")])
        .env("ZKWIKI_AGENT_SOCK", socket)
        .env("ZKWIKI_AGENT_USER", user)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        // Its own process group: a Ctrl-C at the terminal does not stop it.
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::general(format!("cannot start the unlock agent: {e}")))?;
    {
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| CliError::general("unlock agent: no stdin"))?;
        let secret = identity.to_secret_bytes();
        stdin
            .write_all(data_encoding::BASE64.encode(secret.as_ref()).as_bytes())
            .map_err(|e| CliError::io("handing the keys to the agent", e))?;
    }
    let mut ready = String::new();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| CliError::general("unlock agent: no stdout"))?;
    BufReader::new(stdout)
        .read_line(&mut ready)
        .map_err(|e| CliError::io("waiting for the unlock agent", e))?;
    if ready.trim() != "ready" {
        let _ = child.kill();
        return Err(CliError::general(
            "the unlock agent did not start (is another one running, or the folder not writable?)",
        ));
    }
    Ok(())
}

/// The agent itself (`zkwiki unlock --serve`): reads the secret from standard input, listens,
/// answers this user's processes, and exits after `lifetime` seconds or on `lock`.
pub fn serve(socket: &Path, user: &str, lifetime: u64) -> Result<()> {
    let mut encoded = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut encoded)
        .map_err(|e| CliError::io("reading the keys", e))?;
    let secret = Zeroizing::new(
        data_encoding::BASE64
            .decode(encoded.trim().as_bytes())
            .map_err(|_| CliError::usage("the unlock agent reads its keys from its parent"))?,
    );
    let identity = UserIdentity::from_secret_bytes(&secret)?;
    drop(secret);
    drop(encoded);
    let dir = socket
        .parent()
        .ok_or_else(|| CliError::usage("the agent socket needs a folder"))?;
    crate::fsutil::create_private_dir(dir).map_err(|e| CliError::io(dir.display(), e))?;
    if UnixStream::connect(socket).is_ok() {
        return Err(CliError::new(
            ErrorKind::Usage,
            "an unlock agent is already running",
        ));
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(|e| CliError::io(socket.display(), e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CliError::io(socket.display(), e))?;
    }
    let expires_at = now() + lifetime;
    let held: Arc<Mutex<Option<UserIdentity>>> = Arc::new(Mutex::new(Some(identity)));
    let socket_file = socket.to_path_buf();
    {
        let held = Arc::clone(&held);
        let socket_file = socket_file.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(lifetime));
            if let Ok(mut h) = held.lock() {
                h.take();
            }
            let _ = std::fs::remove_file(&socket_file);
            std::process::exit(0);
        });
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let me = rustix::process::getuid();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        // Only this user's processes (the folder is 0700 and the socket 0600 already).
        let peer = rustix::net::sockopt::socket_peercred(&stream).ok();
        if peer.map(|c| c.uid) != Some(me) {
            continue;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let op = serde_json::from_str::<Request>(&line)
            .map(|r| r.op)
            .unwrap_or_default();
        let mut answer = Answer {
            user: Some(user.to_owned()),
            expires_at: Some(expires_at),
            ..Answer::default()
        };
        match op.as_str() {
            "identity" => {
                let guard = held.lock().ok();
                match guard.as_ref().and_then(|g| g.as_ref()) {
                    Some(id) => {
                        let s = id.to_secret_bytes();
                        answer.secret = Some(data_encoding::BASE64.encode(s.as_ref()));
                    }
                    None => answer.error = Some("locked".into()),
                }
            }
            "status" => {}
            "lock" => {
                if let Ok(mut h) = held.lock() {
                    h.take();
                }
                let _ = writeln!(
                    stream,
                    "{}",
                    serde_json::to_string(&answer).unwrap_or_default()
                );
                let _ = std::fs::remove_file(&socket_file);
                std::process::exit(0);
            }
            _ => answer.error = Some("unknown request".into()),
        }
        let text = Zeroizing::new(serde_json::to_string(&answer).unwrap_or_default());
        let _ = writeln!(stream, "{}", text.as_str());
        if let Some(s) = answer.secret.as_mut() {
            zeroize::Zeroize::zeroize(s);
        }
    }
    Ok(())
}
