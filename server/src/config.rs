//! Server configuration: what `main` resolves from flags and the environment, and what tests build
//! directly.

use std::path::PathBuf;
use std::time::Duration;

use crate::proxy::TrustedProxies;

/// JSON bodies: 64 MiB.
pub const DEFAULT_MAX_JSON_BODY: usize = 64 * 1024 * 1024;
/// git request bodies: 16 MiB.
pub const DEFAULT_MAX_GIT_BODY: usize = 16 * 1024 * 1024;
/// Bodies of the routes that take no token (prelogin, register, login): 64 KiB. Their real
/// bodies are a few KiB, so nobody without an account can make the server wait for a large body.
pub const DEFAULT_MAX_PUBLIC_BODY: usize = 64 * 1024;
/// Request bodies in flight at once (bytes reserved by large uploads): 256 MiB.
pub const DEFAULT_MAX_BODY_MEMORY: u64 = 256 * 1024 * 1024;
/// Session lifetime: 12 hours.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// A request's line and headers must arrive within this time (and an idle keep-alive connection
/// is closed after it).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body that sends nothing for this long is cut off (`408 body_timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(20);
/// Open connections one client address may hold.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 128;
/// The request line and headers together: 64 KiB (`431 headers_too_large` beyond).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// At most this many header fields in one request (`431 headers_too_large` beyond).
pub const MAX_HEADERS: usize = 100;

/// Login attempt limits (token buckets in the database, shared by every process on it; see
/// `lockout.rs`). Every bucket regains one attempt per [`LoginLimits::refill`].
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Attempts for one user name from one client address.
    pub per_pair: u32,
    /// Attempts for one user name from devices that never logged in as that user (all addresses
    /// together). A device cookie of that user is exempt.
    pub per_user: u32,
    /// Failed attempts from one client address (all names), devices without a cookie only.
    pub per_ip: u32,
    /// Attempts with one device cookie.
    pub per_device: u32,
    /// Registrations from one client address.
    pub register_per_ip: u32,
    /// Time to regain one attempt.
    pub refill: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_pair: 10,
            per_user: 20,
            per_ip: 100,
            per_device: 10,
            register_per_ip: 60,
            refill: Duration::from_secs(6),
        }
    }
}

/// PostgreSQL connections one process keeps at most.
pub const DEFAULT_DATABASE_POOL: usize = 16;

/// Where accounts, sessions, tokens, the membership index and the rate limits live.
#[derive(Clone, Default)]
pub enum Database {
    /// `DATA/zkwiki.sqlite3`: nothing to set up; processes on one machine may share it.
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by every server process (several machines, Lambda).
    Postgres {
        /// A `postgres://` URL or a `key=value` connection string (it may hold a password: never
        /// logged or shown).
        url: String,
        /// Connections this process keeps at most.
        pool: usize,
        /// CA certificates (PEM) trusted for `sslmode=require` beside the Mozilla roots.
        ca_file: Option<PathBuf>,
    },
}

impl Database {
    /// `sqlite` (or empty) for the embedded database, a `postgres://` / `postgresql://` URL or a
    /// `key=value` connection string (one with `host=` or `dbname=`) for PostgreSQL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() || t == "sqlite" {
            return Ok(Self::Sqlite);
        }
        let url = t.starts_with("postgres://") || t.starts_with("postgresql://");
        let kv = t
            .split_whitespace()
            .any(|w| w.starts_with("host=") || w.starts_with("dbname="));
        if url || kv {
            return Ok(Self::Postgres {
                url: t.to_owned(),
                pool: DEFAULT_DATABASE_POOL,
                ca_file: None,
            });
        }
        Err(
            "the database is `sqlite` or a PostgreSQL connection string \
             (postgres://user:password@host:5432/dbname, or host=… dbname=…)"
                .to_owned(),
        )
    }

    /// `sqlite` or `postgres`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may carry a password.
        match self {
            Self::Sqlite => f.write_str("Sqlite"),
            Self::Postgres { pool, .. } => write!(f, "Postgres {{ url: <hidden>, pool: {pool} }}"),
        }
    }
}

/// Everything the server needs to know at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory: `wikis/`, `locks/`, `zkwiki.sqlite3` (unless the database is
    /// PostgreSQL), `server-secret`.
    pub data_dir: PathBuf,
    /// The metadata database.
    pub database: Database,
    /// The built web app, or `None` to serve a page explaining how to build it.
    pub web_dir: Option<PathBuf>,
    /// Largest JSON body (bytes).
    pub max_json_body: usize,
    /// Largest git request body (bytes).
    pub max_git_body: usize,
    /// Largest body of a route that takes no token (bytes).
    pub max_public_body: usize,
    /// Budget for large request bodies in flight at once (bytes); see `budget.rs`.
    pub max_body_memory: u64,
    /// How much of that budget one client address may hold (bytes).
    pub max_body_memory_per_client: u64,
    /// How long a large upload waits for room in that budget before `503 busy`.
    pub body_wait: Duration,
    /// Lifetime of a session token.
    pub session_ttl: Duration,
    /// Make every accepted commit durable (syncfs) before answering. Only benchmarks that want to
    /// see the cost of the software alone turn this off.
    pub fsync: bool,
    /// The CDN read path: blobs by hash are served to anyone who names them (no token), as
    /// `public, immutable`, so a shared cache (CloudFront) may keep and serve them. See
    /// `docs/deploy-aws.md` ("The CDN read path") for what that reveals.
    pub public_blobs: bool,
    /// Login and registration limits.
    pub login: LoginLimits,
    /// Time for a request's line and headers (also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Longest silence inside a request body.
    pub body_timeout: Duration,
    /// Open connections in all (`None`: derived from the descriptor limit at start).
    pub max_connections: Option<usize>,
    /// Open connections per client address (a trusted proxy is exempt).
    pub max_connections_per_client: usize,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers name the client (empty: none).
    pub trusted_proxies: TrustedProxies,
}

impl Config {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database: Database::Sqlite,
            web_dir: None,
            max_json_body: DEFAULT_MAX_JSON_BODY,
            max_git_body: DEFAULT_MAX_GIT_BODY,
            max_public_body: DEFAULT_MAX_PUBLIC_BODY,
            max_body_memory: DEFAULT_MAX_BODY_MEMORY,
            max_body_memory_per_client: DEFAULT_MAX_BODY_MEMORY / 4,
            body_wait: Duration::from_secs(5),
            session_ttl: DEFAULT_SESSION_TTL,
            fsync: true,
            public_blobs: false,
            login: LoginLimits::default(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: None,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            trusted_proxies: TrustedProxies::default(),
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
