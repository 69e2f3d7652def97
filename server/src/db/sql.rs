//! Every statement the server runs, written once for both databases: PostgreSQL's `$1`
//! placeholders (numbered `?1` for SQLite), `"user"` quoted (a reserved word in PostgreSQL),
//! `ON CONFLICT … DO UPDATE` for upserts, and column types in the schema as `{int}`, `{real}`,
//! `{blob}` (rendered per dialect by [`render`]).

use super::backend::Dialect;

/// The schema steps: `MIGRATIONS[i]` takes a database from version `i` to `i + 1`.
pub const MIGRATIONS: [&str; 2] = [V1, V2];

/// Version 1: accounts, protectors, sessions, agent tokens, the membership index.
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    x25519 {blob} NOT NULL UNIQUE,
    ed25519 {blob} NOT NULL UNIQUE,
    created_at {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS protectors (
    "user" TEXT NOT NULL,
    kind TEXT NOT NULL,
    auth_hash {blob} NOT NULL,
    sealed {blob} NOT NULL,
    kdf {blob},
    PRIMARY KEY ("user", kind)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    "user" TEXT NOT NULL,
    secret_hash {blob} NOT NULL,
    expires_at {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_tokens (
    id TEXT PRIMARY KEY,
    wiki TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash {blob} NOT NULL,
    created_by TEXT NOT NULL,
    created_at {int} NOT NULL,
    expires_at {int} NOT NULL,
    revoked {int} NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS agent_tokens_wiki ON agent_tokens (wiki);
CREATE TABLE IF NOT EXISTS members (
    wiki TEXT NOT NULL,
    ed25519 {blob} NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (wiki, ed25519)
);
CREATE INDEX IF NOT EXISTS members_key ON members (ed25519);
"#;

/// Version 2: login rate-limit buckets and known addresses (shared by every process on the
/// database, see `lockout.rs`), and a small key/value table of server facts.
const V2: &str = r#"
CREATE TABLE IF NOT EXISTS login_buckets (
    key TEXT PRIMARY KEY,
    tokens {real} NOT NULL,
    at_ms {int} NOT NULL
);
CREATE INDEX IF NOT EXISTS login_buckets_at ON login_buckets (at_ms);
CREATE TABLE IF NOT EXISTS known_addresses (
    user_name TEXT NOT NULL,
    ip TEXT NOT NULL,
    at_ms {int} NOT NULL,
    PRIMARY KEY (user_name, ip)
);
CREATE INDEX IF NOT EXISTS known_addresses_at ON known_addresses (at_ms);
CREATE TABLE IF NOT EXISTS server_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// A schema step with its column types spelled for `dialect`.
pub fn render(step: &str, dialect: Dialect) -> String {
    let (int, real, blob) = match dialect {
        Dialect::Sqlite => ("INTEGER", "REAL", "BLOB"),
        Dialect::Postgres => ("BIGINT", "DOUBLE PRECISION", "BYTEA"),
    };
    step.replace("{int}", int)
        .replace("{real}", real)
        .replace("{blob}", blob)
}

// --- accounts ---
pub const INSERT_USER: &str =
    "INSERT INTO users (name, x25519, ed25519, created_at) VALUES ($1, $2, $3, $4)";
pub const USER_BY_NAME: &str = "SELECT name, x25519, ed25519 FROM users WHERE name = $1";
pub const USER_BY_KEY: &str = "SELECT name, x25519, ed25519 FROM users WHERE ed25519 = $1";
pub const INSERT_PROTECTOR: &str = r#"INSERT INTO protectors ("user", kind, auth_hash, sealed, kdf)
    VALUES ($1, $2, $3, $4, $5)"#;
pub const PROTECTOR: &str =
    r#"SELECT auth_hash, sealed, kdf FROM protectors WHERE "user" = $1 AND kind = $2"#;
pub const UPSERT_PROTECTOR: &str = r#"INSERT INTO protectors ("user", kind, auth_hash, sealed, kdf)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT ("user", kind) DO UPDATE SET auth_hash = excluded.auth_hash,
        sealed = excluded.sealed, kdf = excluded.kdf"#;

// --- sessions ---
pub const INSERT_SESSION: &str =
    r#"INSERT INTO sessions (id, "user", secret_hash, expires_at) VALUES ($1, $2, $3, $4)"#;
pub const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";
pub const SESSION: &str = r#"SELECT s.secret_hash, s.expires_at, u.name, u.x25519, u.ed25519
    FROM sessions s JOIN users u ON u.name = s."user" WHERE s.id = $1"#;
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";

// --- agent tokens ---
pub const INSERT_AGENT_TOKEN: &str = "INSERT INTO agent_tokens
    (id, wiki, name, role, secret_hash, created_by, created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const AGENT_TOKEN: &str = "SELECT id, wiki, name, role, expires_at, revoked, secret_hash
    FROM agent_tokens WHERE id = $1";
pub const AGENT_TOKENS_OF_WIKI: &str = "SELECT id, wiki, name, role, expires_at, revoked
    FROM agent_tokens WHERE wiki = $1 ORDER BY created_at DESC, id";
pub const REVOKE_AGENT_TOKEN: &str =
    "UPDATE agent_tokens SET revoked = 1 WHERE wiki = $1 AND id = $2";
pub const DELETE_AGENT_TOKENS_OF_WIKI: &str = "DELETE FROM agent_tokens WHERE wiki = $1";

// --- the membership index ---
pub const IS_MEMBER: &str = "SELECT 1 FROM members WHERE wiki = $1 AND ed25519 = $2";
pub const DELETE_MEMBERS_OF_WIKI: &str = "DELETE FROM members WHERE wiki = $1";
pub const UPSERT_MEMBER: &str = "INSERT INTO members (wiki, ed25519, role) VALUES ($1, $2, $3)
    ON CONFLICT (wiki, ed25519) DO UPDATE SET role = excluded.role";
pub const WIKIS_OF: &str = "SELECT wiki FROM members WHERE ed25519 = $1 ORDER BY wiki";
pub const INDEXED_WIKIS: &str = "SELECT DISTINCT wiki FROM members ORDER BY wiki";

// --- login rate limits (`lockout.rs`) ---
/// Creates a bucket (full) or leaves it as it is; either way the row is locked until the
/// transaction ends (PostgreSQL row lock; SQLite's write lock covers the whole file).
pub const LOCK_BUCKET: &str = "INSERT INTO login_buckets (key, tokens, at_ms) VALUES ($1, $2, $3)
    ON CONFLICT (key) DO UPDATE SET tokens = login_buckets.tokens";
pub const BUCKET: &str = "SELECT tokens, at_ms FROM login_buckets WHERE key = $1";
pub const SET_BUCKET: &str = "UPDATE login_buckets SET tokens = $2, at_ms = $3 WHERE key = $1";
/// Buckets untouched since before `$1` have refilled: a missing row means a full bucket.
pub const FORGET_FULL_BUCKETS: &str = "DELETE FROM login_buckets WHERE at_ms < $1";
pub const KNOWN_ADDRESS: &str =
    "SELECT 1 FROM known_addresses WHERE user_name = $1 AND ip = $2 AND at_ms > $3";
pub const REMEMBER_ADDRESS: &str = "INSERT INTO known_addresses (user_name, ip, at_ms)
    VALUES ($1, $2, $3) ON CONFLICT (user_name, ip) DO UPDATE SET at_ms = excluded.at_ms";
/// Keeps a user's `$2` most recent addresses.
pub const TRIM_ADDRESSES: &str = "DELETE FROM known_addresses WHERE user_name = $1 AND ip NOT IN
    (SELECT ip FROM known_addresses WHERE user_name = $1 ORDER BY at_ms DESC, ip LIMIT $2)";
pub const FORGET_OLD_ADDRESSES: &str = "DELETE FROM known_addresses WHERE at_ms <= $1";

// --- server facts ---
pub const META: &str = "SELECT value FROM server_meta WHERE name = $1";
pub const SET_META: &str = "INSERT INTO server_meta (name, value) VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_renders_without_placeholders_left() {
        for step in MIGRATIONS {
            for d in [Dialect::Sqlite, Dialect::Postgres] {
                let s = render(step, d);
                assert!(!s.contains('{') && !s.contains('}'), "{s}");
            }
        }
    }
}
