//! The embedded database (SQLite, WAL mode): accounts, protectors, sessions, agent tokens, and an
//! index of wiki membership for `GET /wikis`.
//!
//! Secrets are stored only as SHA-256 hashes under a server label ([`hash_secret`]) and compared in
//! constant time. Tokens are `zks_`/`zka_` + a 32-hex id + a 64-hex secret: the id finds the row,
//! the secret's hash is compared, so a timing difference can at most reveal whether an id exists,
//! and ids are random. Several server processes may share the file (SQLite locking with a busy
//! timeout); every decision that must be immediate (a revoked token) reads the database, never a
//! process-local cache.
//!
//! The membership table is a derived index: the wiki's git repository (its latest keyring) is
//! the truth. It is rewritten under the wiki's lock after every keyring change and reconciled
//! from the repositories at start-up.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AppError, AppResult};

/// Label of the stored hash of an auth secret (`docs/api.md`).
pub const AUTH_HASH_LABEL: &[u8] = core_crypto::labels::SERVER_AUTH_HASH;
/// Label of the stored hash of a token secret.
pub const TOKEN_HASH_LABEL: &[u8] = core_crypto::labels::SERVER_TOKEN_HASH;

/// `SHA-256(label ‖ secret)`.
pub fn hash_secret(label: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(secret);
    h.finalize().into()
}

/// Constant-time equality of two stored hashes.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    x25519 BLOB NOT NULL UNIQUE,
    ed25519 BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS protectors (
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    auth_hash BLOB NOT NULL,
    sealed BLOB NOT NULL,
    kdf BLOB,
    PRIMARY KEY (user, kind)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_tokens (
    id TEXT PRIMARY KEY,
    wiki TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS agent_tokens_wiki ON agent_tokens (wiki);
CREATE TABLE IF NOT EXISTS members (
    wiki TEXT NOT NULL,
    ed25519 BLOB NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (wiki, ed25519)
);
CREATE INDEX IF NOT EXISTS members_key ON members (ed25519);
";

/// The schema this build writes (`PRAGMA user_version`). Each step of the migrations list moves a
/// database one version up; a database from a newer build is refused (restore a backup made
/// before the upgrade to go back).
pub const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[i]` takes a database from version `i` to `i + 1`, inside the start-up transaction.
/// Version 0 is a new file (or one from before versioning, whose tables `CREATE ... IF NOT
/// EXISTS` leaves as they are).
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [SCHEMA];

/// A small pool of connections to one database file.
pub struct Db {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// A pooled connection; returns to the pool on drop.
pub struct Conn<'a> {
    db: &'a Db,
    conn: Option<Connection>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Always Some until drop.
        match &self.conn {
            Some(c) => c,
            None => unreachable!("connection used after drop"),
        }
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        match &mut self.conn {
            Some(c) => c,
            None => unreachable!("connection used after drop"),
        }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut idle)) = (self.conn.take(), self.db.idle.lock())
            && idle.len() < 16
        {
            idle.push(c);
        }
    }
}

/// An account's public record.
#[derive(Clone, Debug)]
pub struct User {
    /// User name.
    pub name: String,
    /// X25519 public key.
    pub x25519: [u8; 32],
    /// Ed25519 public key (what keyrings name).
    pub ed25519: [u8; 32],
}

/// One protector of an account.
#[derive(Clone, Debug)]
pub struct Protector {
    /// Stored hash of the auth secret.
    pub auth_hash: Vec<u8>,
    /// The sealed identity.
    pub sealed: Vec<u8>,
    /// KDF parameters (passphrase protector).
    pub kdf: Option<Vec<u8>>,
}

/// One protector to store: kind name, auth hash, sealed identity, KDF parameters.
pub type NewProtector = (&'static str, [u8; 32], Vec<u8>, Option<Vec<u8>>);

/// Registration input.
#[derive(Debug)]
pub struct NewAccount<'a> {
    /// User name (checked).
    pub name: &'a str,
    /// X25519 public key.
    pub x25519: [u8; 32],
    /// Ed25519 public key.
    pub ed25519: [u8; 32],
    /// Protectors: kind name, auth hash, sealed identity, KDF parameters.
    pub protectors: Vec<NewProtector>,
}

/// An agent token's record.
#[derive(Clone, Debug)]
pub struct AgentToken {
    /// Token id.
    pub id: String,
    /// The wiki it is scoped to (hex).
    pub wiki: String,
    /// Display name.
    pub name: String,
    /// `read` or `write`.
    pub role: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Revoked.
    pub revoked: bool,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

impl Db {
    /// Opens (creating) the database and brings its schema up to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> AppResult<Self> {
        let db = Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        db.migrate()?;
        Ok(db)
    }

    /// Runs the migrations a database needs, in one transaction (a fresh database costs one
    /// flush, not one per statement; a failed upgrade changes nothing).
    fn migrate(&self) -> AppResult<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(AppError::internal(format_args!(
                "the database has schema version {found}, newer than this zkwiki-server knows \
                 ({SCHEMA_VERSION}): run the newer server, or restore a backup made before the \
                 upgrade"
            )));
        }
        let from = usize::try_from(found.max(0)).unwrap_or(0);
        for (i, step) in MIGRATIONS.iter().enumerate().skip(from) {
            tx.execute_batch(step)?;
            tracing::info!(from = i, to = i + 1, "database schema migrated");
        }
        if found != SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The schema version of the database file at `path` (for backups and restores).
    pub fn schema_version_of(path: &Path) -> rusqlite::Result<i64> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    fn connect(&self) -> AppResult<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A revoked token or a new account must survive a power cut once acknowledged.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }

    /// A connection from the pool.
    pub fn conn(&self) -> AppResult<Conn<'_>> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        Ok(Conn {
            db: self,
            conn: Some(conn),
        })
    }

    /// Creates an account with its protectors; `name_taken` if the name (or a key) exists.
    pub fn register(&self, acc: &NewAccount<'_>) -> AppResult<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO users (name, x25519, ed25519, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![acc.name, &acc.x25519[..], &acc.ed25519[..], now_unix()],
        );
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::ConflictCode {
                    code: "name_taken",
                    message: "this user name (or one of these public keys) is already registered",
                });
            }
            Err(e) => return Err(e.into()),
        }
        for (kind, hash, sealed, kdf) in &acc.protectors {
            tx.execute(
                "INSERT INTO protectors (user, kind, auth_hash, sealed, kdf) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![acc.name, kind, &hash[..], sealed, kdf],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// An account by name.
    pub fn user(&self, name: &str) -> AppResult<Option<User>> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT name, x25519, ed25519 FROM users WHERE name = ?1",
                params![name],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(name, x, e)| to_user(name, &x, &e)).transpose()
    }

    /// The account holding this Ed25519 key (keys are unique across accounts).
    pub fn user_by_key(&self, ed25519: &[u8; 32]) -> AppResult<Option<User>> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT name, x25519, ed25519 FROM users WHERE ed25519 = ?1",
                params![&ed25519[..]],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(name, x, e)| to_user(name, &x, &e)).transpose()
    }

    /// One protector of an account.
    pub fn protector(&self, user: &str, kind: &str) -> AppResult<Option<Protector>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT auth_hash, sealed, kdf FROM protectors WHERE user = ?1 AND kind = ?2",
                params![user, kind],
                |r| {
                    Ok(Protector {
                        auth_hash: r.get(0)?,
                        sealed: r.get(1)?,
                        kdf: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Replaces (or adds) one protector.
    pub fn put_protector(
        &self,
        user: &str,
        kind: &str,
        auth_hash: &[u8; 32],
        sealed: &[u8],
        kdf: Option<&[u8]>,
    ) -> AppResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO protectors (user, kind, auth_hash, sealed, kdf) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user, kind) DO UPDATE SET auth_hash = excluded.auth_hash,
                 sealed = excluded.sealed, kdf = excluded.kdf",
            params![user, kind, &auth_hash[..], sealed, kdf],
        )?;
        Ok(())
    }

    /// Stores a new session (`secret_hash` of its secret) valid until `expires_at`.
    pub fn create_session(
        &self,
        id: &str,
        user: &str,
        secret_hash: &[u8; 32],
        expires_at: i64,
    ) -> AppResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO sessions (id, user, secret_hash, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, user, &secret_hash[..], expires_at],
        )?;
        // Keep the table small: expired sessions are useless.
        conn.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1",
            params![now_unix()],
        )?;
        Ok(())
    }

    /// The user of a live session whose secret hashes to `secret_hash`.
    pub fn session_user(&self, id: &str, secret_hash: &[u8; 32]) -> AppResult<Option<User>> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(
                "SELECT s.secret_hash, s.expires_at, u.name, u.x25519, u.ed25519
                 FROM sessions s JOIN users u ON u.name = s.user WHERE s.id = ?1",
            )?
            .query_row(params![id], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })
            .optional()?;
        let Some((hash, expires_at, name, x, e)) = row else {
            return Ok(None);
        };
        if !ct_eq(&hash, secret_hash) || expires_at <= now_unix() {
            return Ok(None);
        }
        to_user(name, &x, &e).map(Some)
    }

    /// Ends a session.
    pub fn delete_session(&self, id: &str) -> AppResult<()> {
        let conn = self.conn()?;
        conn.execute("DELETE FROM sessions WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Stores a new agent token.
    #[allow(clippy::too_many_arguments)]
    pub fn create_agent_token(
        &self,
        id: &str,
        wiki: &str,
        name: &str,
        role: &str,
        secret_hash: &[u8; 32],
        created_by: &str,
        expires_at: i64,
    ) -> AppResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO agent_tokens (id, wiki, name, role, secret_hash, created_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, wiki, name, role, &secret_hash[..], created_by, now_unix(), expires_at],
        )?;
        Ok(())
    }

    /// A live agent token whose secret hashes to `secret_hash` (not revoked, not expired).
    pub fn agent_token(&self, id: &str, secret_hash: &[u8; 32]) -> AppResult<Option<AgentToken>> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(
                "SELECT id, wiki, name, role, expires_at, revoked, secret_hash FROM agent_tokens WHERE id = ?1",
            )?
            .query_row(
                params![id],
                |r| {
                    Ok((
                        AgentToken {
                            id: r.get(0)?,
                            wiki: r.get(1)?,
                            name: r.get(2)?,
                            role: r.get(3)?,
                            expires_at: r.get(4)?,
                            revoked: r.get::<_, i64>(5)? != 0,
                        },
                        r.get::<_, Vec<u8>>(6)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.and_then(|(tok, hash)| {
            (ct_eq(&hash, secret_hash) && !tok.revoked && tok.expires_at > now_unix())
                .then_some(tok)
        }))
    }

    /// Every agent token of a wiki (newest first).
    pub fn list_agent_tokens(&self, wiki: &str) -> AppResult<Vec<AgentToken>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, wiki, name, role, expires_at, revoked FROM agent_tokens
             WHERE wiki = ?1 ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map(params![wiki], |r| {
            Ok(AgentToken {
                id: r.get(0)?,
                wiki: r.get(1)?,
                name: r.get(2)?,
                role: r.get(3)?,
                expires_at: r.get(4)?,
                revoked: r.get::<_, i64>(5)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a token of a wiki; false if there is no such token.
    pub fn revoke_agent_token(&self, wiki: &str, id: &str) -> AppResult<bool> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE agent_tokens SET revoked = 1 WHERE wiki = ?1 AND id = ?2",
            params![wiki, id],
        )?;
        Ok(n > 0)
    }

    /// Whether the membership index lists `ed25519` in `wiki`: one primary-key lookup, the same
    /// work whether the wiki exists or not.
    pub fn is_indexed_member(&self, wiki: &str, ed25519: &[u8; 32]) -> AppResult<bool> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT 1 FROM members WHERE wiki = ?1 AND ed25519 = ?2")?;
        Ok(stmt.exists(params![wiki, &ed25519[..]])?)
    }

    /// Replaces the membership index of a wiki.
    pub fn set_members(&self, wiki: &str, members: &[([u8; 32], &'static str)]) -> AppResult<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM members WHERE wiki = ?1", params![wiki])?;
        for (key, role) in members {
            tx.execute(
                "INSERT OR REPLACE INTO members (wiki, ed25519, role) VALUES (?1, ?2, ?3)",
                params![wiki, &key[..], role],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Wikis whose membership index names this key.
    pub fn wikis_of(&self, ed25519: &[u8; 32]) -> AppResult<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT wiki FROM members WHERE ed25519 = ?1 ORDER BY wiki")?;
        let rows = stmt.query_map(params![&ed25519[..]], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every wiki in the membership index.
    pub fn indexed_wikis(&self) -> AppResult<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT DISTINCT wiki FROM members")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets a deleted wiki: its membership index and its agent tokens.
    pub fn delete_wiki(&self, wiki: &str) -> AppResult<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM members WHERE wiki = ?1", params![wiki])?;
        tx.execute("DELETE FROM agent_tokens WHERE wiki = ?1", params![wiki])?;
        tx.commit()?;
        Ok(())
    }
}

fn to_user(name: String, x: &[u8], e: &[u8]) -> AppResult<User> {
    let x25519 = <[u8; 32]>::try_from(x).map_err(|_| AppError::internal("stored x25519 key"))?;
    let ed25519 = <[u8; 32]>::try_from(e).map_err(|_| AppError::internal("stored ed25519 key"))?;
    Ok(User {
        name,
        x25519,
        ed25519,
    })
}
