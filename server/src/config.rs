//! Server configuration: what `main` resolves from flags and the environment, and what tests build
//! directly.

use std::path::PathBuf;
use std::time::Duration;

/// JSON bodies: 64 MiB.
pub const DEFAULT_MAX_JSON_BODY: usize = 64 * 1024 * 1024;
/// git request bodies: 16 MiB.
pub const DEFAULT_MAX_GIT_BODY: usize = 16 * 1024 * 1024;
/// Request bodies in flight at once (bytes reserved by large uploads): 256 MiB.
pub const DEFAULT_MAX_BODY_MEMORY: u64 = 256 * 1024 * 1024;
/// Session lifetime: 12 hours.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Everything the server needs to know at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory: `wikis/`, `locks/`, `zkwiki.sqlite3`, `server-secret`.
    pub data_dir: PathBuf,
    /// The built web app, or `None` to serve a page explaining how to build it.
    pub web_dir: Option<PathBuf>,
    /// Largest JSON body (bytes).
    pub max_json_body: usize,
    /// Largest git request body (bytes).
    pub max_git_body: usize,
    /// Budget for large request bodies in flight at once (bytes); see `budget.rs`.
    pub max_body_memory: u64,
    /// How long a large upload waits for room in that budget before `503 busy`.
    pub body_wait: Duration,
    /// Lifetime of a session token.
    pub session_ttl: Duration,
    /// Make every accepted commit durable (syncfs) before answering. Only benchmarks that want to
    /// see the cost of the software alone turn this off.
    pub fsync: bool,
    /// Login attempts allowed per user name before rate limiting (burst), refilled one per
    /// `login_refill`.
    pub login_burst_per_user: u32,
    /// Login/registration attempts allowed per client IP (burst).
    pub login_burst_per_ip: u32,
    /// Time to regain one attempt.
    pub login_refill: Duration,
}

impl Config {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            web_dir: None,
            max_json_body: DEFAULT_MAX_JSON_BODY,
            max_git_body: DEFAULT_MAX_GIT_BODY,
            max_body_memory: DEFAULT_MAX_BODY_MEMORY,
            body_wait: Duration::from_secs(5),
            session_ttl: DEFAULT_SESSION_TTL,
            fsync: true,
            login_burst_per_user: 10,
            login_burst_per_ip: 60,
            login_refill: Duration::from_secs(6),
        }
    }

    /// Where the bare repositories live.
    pub fn wikis_dir(&self) -> PathBuf {
        self.data_dir.join("wikis")
    }

    /// Where the per-wiki lock files live (outside the repositories, so deleting a wiki cannot
    /// race a writer that waits for its lock).
    pub fn locks_dir(&self) -> PathBuf {
        self.data_dir.join("locks")
    }
}
