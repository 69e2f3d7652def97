//! The metadata database: accounts, protectors, sessions, agent tokens, an index of wiki
//! membership for `GET /wikis`, and the login rate limits. SQLite (`DATA/zkwiki.sqlite3`, the
//! zero-setup default) or PostgreSQL (`--database postgres://…`, shared by many server
//! processes): one schema with one list of migrations (`sql::MIGRATIONS`), one set of
//! statements (`db/sql.rs`) and one set of checks (this module) on both; [`backend`] is all that
//! differs.
//!
//! Secrets are stored only as SHA-256 hashes under a server label ([`hash_secret`]) and compared in
//! constant time. Tokens are `zks_`/`zka_` + a 32-hex id + a 64-hex secret: the id finds the row,
//! the secret's hash is compared, so a timing difference can at most reveal whether an id exists,
//! and ids are random. Every decision that must be immediate for every process (a revoked token,
//! an ended session, a spent login bucket) reads the database, never a process-local cache.
//!
//! The membership table is a derived index: the wiki's git repository (its latest keyring) is
//! the truth. Under the wiki's lock, members a keyring change adds are indexed before the change
//! takes effect and the index is rewritten exactly after it, so a crash in between leaves it
//! naming too many members (harmless: the keyring decides), never too few; it is also
//! reconciled from the repositories at start-up.

pub mod backend;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use self::backend::{Backend, DbError, DbResult, Dialect, Durability, P, Row, Tx};
use self::postgres::Postgres;
use self::sqlite::Sqlite;
use crate::config::Database;
use crate::error::{AppError, AppResult};

/// The SQLite database's file name in the data directory.
pub const SQLITE_FILE: &str = "zkwiki.sqlite3";

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
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The schema this build writes. Each step of `sql::MIGRATIONS` moves a database one version
/// up; a database from a newer build is refused (restore a backup made before the upgrade to go
/// back).
pub const SCHEMA_VERSION: i64 = sql::MIGRATIONS.len() as i64;

/// Arbitrary key of the PostgreSQL advisory lock that serializes migrations of processes that
/// start at once.
const MIGRATION_LOCK: i64 = 0x7a6b_7769_6b69;

/// The metadata database, SQLite or PostgreSQL: the same statements and checks on either.
pub struct Db {
    backend: Arc<dyn Backend>,
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

fn agent_token(r: &Row) -> DbResult<AgentToken> {
    Ok(AgentToken {
        id: r.text(0)?,
        wiki: r.text(1)?,
        name: r.text(2)?,
        role: r.text(3)?,
        expires_at: r.int(4)?,
        revoked: r.int(5)? != 0,
    })
}

/// Adds or updates members in a wiki's membership index, inside `tx`.
fn upsert_members(
    tx: &mut dyn Tx,
    wiki: &str,
    members: &[([u8; 32], &'static str)],
) -> AppResult<()> {
    for (key, role) in members {
        tx.execute(
            sql::UPSERT_MEMBER,
            &[wiki.into(), key.into(), (*role).into()],
        )?;
    }
    Ok(())
}

fn first(rows: Vec<Row>) -> Option<Row> {
    rows.into_iter().next()
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction (a fresh database costs one
/// flush, not one per statement; a failed upgrade changes nothing).
fn migrate(backend: &dyn Backend) -> AppResult<()> {
    let dialect = backend.dialect();
    backend.transaction(Durability::Full, &mut |tx| {
        let found = match dialect {
            Dialect::Sqlite => tx.query("PRAGMA user_version", &[])?,
            Dialect::Postgres => {
                // Processes that start at once wait for the first one's migration.
                tx.batch(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))?;
                tx.batch("CREATE TABLE IF NOT EXISTS zkwiki_schema (version BIGINT NOT NULL)")?;
                tx.query("SELECT version FROM zkwiki_schema", &[])?
            }
        };
        let found = first(found).map(|r| r.int(0)).transpose()?.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(AppError::internal(format_args!(
                "the database has schema version {found}, newer than this zkwiki-server knows \
                 ({SCHEMA_VERSION}): run the newer server, or restore a backup made before the \
                 upgrade"
            )));
        }
        let from = usize::try_from(found.max(0)).unwrap_or(0);
        for (i, step) in sql::MIGRATIONS.iter().enumerate().skip(from) {
            tx.batch(&sql::render(step, dialect))?;
            tracing::info!(from = i, to = i + 1, "database schema migrated");
        }
        if found != SCHEMA_VERSION {
            match dialect {
                Dialect::Sqlite => tx.batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?,
                Dialect::Postgres => tx.batch(&format!(
                    "DELETE FROM zkwiki_schema; INSERT INTO zkwiki_schema VALUES ({SCHEMA_VERSION})"
                ))?,
            }
        }
        Ok(())
    })
}

impl Db {
    /// Opens the database `cfg` names (creating `DATA/zkwiki.sqlite3`, or connecting to
    /// PostgreSQL) and brings its schema up to [`SCHEMA_VERSION`]. Runs inside the tokio runtime
    /// that will serve (PostgreSQL's connections live on it).
    pub async fn open(database: &Database, data_dir: &Path) -> AppResult<Self> {
        let backend: Arc<dyn Backend> = match database {
            Database::Sqlite => Arc::new(Sqlite::open(&data_dir.join(SQLITE_FILE))?),
            Database::Postgres { url, pool, ca_file } => {
                Arc::new(Postgres::connect(url, *pool, ca_file.as_deref()).await?)
            }
        };
        let b = backend.clone();
        tokio::task::spawn_blocking(move || migrate(&*b)).await??;
        Ok(Self { backend })
    }

    /// The schema version of the SQLite database file at `path` (for backups and restores).
    pub fn schema_version_of(path: &Path) -> Result<i64, DbError> {
        Ok(Sqlite::schema_version_of(path)?)
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.backend.dialect()
    }

    /// One round trip (readiness).
    pub fn ping(&self) -> AppResult<()> {
        self.backend.query("SELECT 1", &[])?;
        Ok(())
    }

    /// Runs `f` in one write transaction (committed on `Ok`).
    pub(crate) fn transaction<R>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut dyn Tx) -> AppResult<R>,
    ) -> AppResult<R> {
        let mut f = Some(f);
        let mut out = None;
        self.backend.transaction(durability, &mut |tx| {
            let f = f
                .take()
                .ok_or_else(|| AppError::internal("a transaction body ran twice"))?;
            out = Some(f(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| AppError::internal("a transaction ended without its result"))
    }

    pub(crate) fn rows(&self, sql: &str, params: &[P<'_>]) -> AppResult<Vec<Row>> {
        Ok(self.backend.query(sql, params)?)
    }

    fn row(&self, sql: &str, params: &[P<'_>]) -> AppResult<Option<Row>> {
        Ok(first(self.rows(sql, params)?))
    }

    fn exec(&self, sql: &str, params: &[P<'_>]) -> AppResult<u64> {
        Ok(self.backend.execute(sql, params)?)
    }

    /// Creates an account with its protectors; `name_taken` if the name (or a key) exists.
    pub fn register(&self, acc: &NewAccount<'_>) -> AppResult<()> {
        self.transaction(Durability::Full, |tx| {
            let inserted = tx.execute(
                sql::INSERT_USER,
                &[
                    acc.name.into(),
                    (&acc.x25519).into(),
                    (&acc.ed25519).into(),
                    now_unix().into(),
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(DbError::Unique) => {
                    return Err(AppError::ConflictCode {
                        code: "name_taken",
                        message: "this user name (or one of these public keys) is already registered",
                    });
                }
                Err(e) => return Err(e.into()),
            }
            for (kind, hash, sealed, kdf) in &acc.protectors {
                tx.execute(
                    sql::INSERT_PROTECTOR,
                    &[
                        acc.name.into(),
                        (*kind).into(),
                        hash.into(),
                        sealed.into(),
                        kdf.as_ref().into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// An account by name.
    pub fn user(&self, name: &str) -> AppResult<Option<User>> {
        self.row(sql::USER_BY_NAME, &[name.into()])?
            .map(|r| to_user(r.text(0)?, &r.blob(1)?, &r.blob(2)?))
            .transpose()
    }

    /// The account holding this Ed25519 key (keys are unique across accounts).
    pub fn user_by_key(&self, ed25519: &[u8; 32]) -> AppResult<Option<User>> {
        self.row(sql::USER_BY_KEY, &[ed25519.into()])?
            .map(|r| to_user(r.text(0)?, &r.blob(1)?, &r.blob(2)?))
            .transpose()
    }

    /// One protector of an account.
    pub fn protector(&self, user: &str, kind: &str) -> AppResult<Option<Protector>> {
        self.row(sql::PROTECTOR, &[user.into(), kind.into()])?
            .map(|r| {
                Ok(Protector {
                    auth_hash: r.blob(0)?,
                    sealed: r.blob(1)?,
                    kdf: r.opt_blob(2)?,
                })
            })
            .transpose()
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
        self.exec(
            sql::UPSERT_PROTECTOR,
            &[
                user.into(),
                kind.into(),
                auth_hash.into(),
                sealed.into(),
                kdf.into(),
            ],
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
        self.transaction(Durability::Full, |tx| {
            tx.execute(
                sql::INSERT_SESSION,
                &[
                    id.into(),
                    user.into(),
                    secret_hash.into(),
                    expires_at.into(),
                ],
            )?;
            // Keep the table small: expired sessions are useless.
            tx.execute(sql::DELETE_EXPIRED_SESSIONS, &[now_unix().into()])?;
            Ok(())
        })
    }

    /// The user of a live session whose secret hashes to `secret_hash`.
    pub fn session_user(&self, id: &str, secret_hash: &[u8; 32]) -> AppResult<Option<User>> {
        let Some(r) = self.row(sql::SESSION, &[id.into()])? else {
            return Ok(None);
        };
        if !ct_eq(&r.blob(0)?, secret_hash) || r.int(1)? <= now_unix() {
            return Ok(None);
        }
        to_user(r.text(2)?, &r.blob(3)?, &r.blob(4)?).map(Some)
    }

    /// Ends a session.
    pub fn delete_session(&self, id: &str) -> AppResult<()> {
        self.exec(sql::DELETE_SESSION, &[id.into()])?;
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
        self.exec(
            sql::INSERT_AGENT_TOKEN,
            &[
                id.into(),
                wiki.into(),
                name.into(),
                role.into(),
                secret_hash.into(),
                created_by.into(),
                now_unix().into(),
                expires_at.into(),
            ],
        )?;
        Ok(())
    }

    /// A live agent token whose secret hashes to `secret_hash` (not revoked, not expired).
    pub fn agent_token(&self, id: &str, secret_hash: &[u8; 32]) -> AppResult<Option<AgentToken>> {
        let Some(r) = self.row(sql::AGENT_TOKEN, &[id.into()])? else {
            return Ok(None);
        };
        let tok = agent_token(&r)?;
        let hash = r.blob(6)?;
        Ok(
            (ct_eq(&hash, secret_hash) && !tok.revoked && tok.expires_at > now_unix())
                .then_some(tok),
        )
    }

    /// Every agent token of a wiki (newest first).
    pub fn list_agent_tokens(&self, wiki: &str) -> AppResult<Vec<AgentToken>> {
        self.rows(sql::AGENT_TOKENS_OF_WIKI, &[wiki.into()])?
            .iter()
            .map(|r| Ok(agent_token(r)?))
            .collect()
    }

    /// Revokes a token of a wiki; false if there is no such token.
    pub fn revoke_agent_token(&self, wiki: &str, id: &str) -> AppResult<bool> {
        Ok(self.exec(sql::REVOKE_AGENT_TOKEN, &[wiki.into(), id.into()])? > 0)
    }

    /// Whether the membership index lists `ed25519` in `wiki`: one primary-key lookup, the same
    /// work whether the wiki exists or not.
    pub fn is_indexed_member(&self, wiki: &str, ed25519: &[u8; 32]) -> AppResult<bool> {
        Ok(self
            .row(sql::IS_MEMBER, &[wiki.into(), ed25519.into()])?
            .is_some())
    }

    /// Replaces the membership index of a wiki.
    pub fn set_members(&self, wiki: &str, members: &[([u8; 32], &'static str)]) -> AppResult<()> {
        self.transaction(Durability::Full, |tx| {
            tx.execute(sql::DELETE_MEMBERS_OF_WIKI, &[wiki.into()])?;
            upsert_members(tx, wiki, members)
        })
    }

    /// Adds members to the index of a wiki without removing any (before a keyring change takes
    /// effect, so a crash leaves the index naming too many members, never too few).
    pub fn add_members(&self, wiki: &str, members: &[([u8; 32], &'static str)]) -> AppResult<()> {
        self.transaction(Durability::Full, |tx| upsert_members(tx, wiki, members))
    }

    /// Wikis whose membership index names this key.
    pub fn wikis_of(&self, ed25519: &[u8; 32]) -> AppResult<Vec<String>> {
        self.rows(sql::WIKIS_OF, &[ed25519.into()])?
            .iter()
            .map(|r| Ok(r.text(0)?))
            .collect()
    }

    /// Every wiki in the membership index.
    pub fn indexed_wikis(&self) -> AppResult<Vec<String>> {
        self.rows(sql::INDEXED_WIKIS, &[])?
            .iter()
            .map(|r| Ok(r.text(0)?))
            .collect()
    }

    /// Forgets a deleted wiki: its membership index and its agent tokens.
    pub fn delete_wiki(&self, wiki: &str) -> AppResult<()> {
        self.transaction(Durability::Full, |tx| {
            tx.execute(sql::DELETE_MEMBERS_OF_WIKI, &[wiki.into()])?;
            tx.execute(sql::DELETE_AGENT_TOKENS_OF_WIKI, &[wiki.into()])?;
            Ok(())
        })
    }

    /// A server fact (`server_meta`).
    pub fn meta(&self, name: &str) -> AppResult<Option<String>> {
        self.row(sql::META, &[name.into()])?
            .map(|r| Ok(r.text(0)?))
            .transpose()
    }

    /// Records a server fact.
    pub fn set_meta(&self, name: &str, value: &str) -> AppResult<()> {
        self.exec(sql::SET_META, &[name.into(), value.into()])?;
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
