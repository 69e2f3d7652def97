//! What a witness keeps, in SQLite (`DATA/witness/witness.sqlite3`): per wiki, the latest state it
//! accepted and the keyring sequence that state names; and every refused fork, as the two signed
//! states that show it. Nothing else: no page, manifest, keyring or member name.
//!
//! Each write is one transaction with `synchronous = FULL`: a checkpoint is durable before it is
//! co-signed, so a crash cannot make the witness show a client less than it co-signed before.

use std::path::Path;

use core_crypto::ids::WikiId;
use core_crypto::state::WikiState;
use core_crypto::witness::Held;
use rusqlite::{Connection, OptionalExtension, params};

/// Most pieces of evidence kept per wiki (the oldest go first): a hostile submitter cannot fill
/// the disk with refused states.
pub const MAX_EVIDENCE_PER_WIKI: i64 = 64;

/// One refused fork.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The state the witness held.
    pub held: Vec<u8>,
    /// The submitted state that contradicts it.
    pub refused: Vec<u8>,
    /// When it was refused (ms since 1970).
    pub time_ms: u64,
}

/// The witness's database.
pub struct Store {
    conn: Connection,
}

fn sql(e: rusqlite::Error) -> String {
    format!("witness database: {e}")
}

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, String> {
        let conn = Connection::open(path).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS held (
                 wiki TEXT PRIMARY KEY,
                 state BLOB NOT NULL,
                 keyring_seq INTEGER NOT NULL,
                 updated_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS evidence (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 wiki TEXT NOT NULL,
                 held BLOB NOT NULL,
                 refused BLOB NOT NULL,
                 time_ms INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS evidence_wiki ON evidence (wiki, id);",
        )
        .map_err(sql)?;
        Ok(Self { conn })
    }

    /// What is held for `wiki` (its stored state is decoded and its signature checked again).
    pub fn held(&self, wiki: &WikiId) -> Result<Option<Held>, String> {
        let row: Option<(Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT state, keyring_seq FROM held WHERE wiki = ?1",
                params![wiki.to_hex()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql)?;
        let Some((state, keyring_seq)) = row else {
            return Ok(None);
        };
        let state = WikiState::decode(&state).map_err(|e| format!("stored state: {e}"))?;
        Ok(Some(Held {
            state,
            keyring_seq: u64::try_from(keyring_seq).map_err(|_| "stored keyring seq")?,
        }))
    }

    /// Holds `held` for its wiki from now on.
    pub fn hold(&mut self, held: &Held, now_ms: u64) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT INTO held (wiki, state, keyring_seq, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (wiki) DO UPDATE SET state = ?2, keyring_seq = ?3, updated_ms = ?4",
                params![
                    held.state.wiki.to_hex(),
                    held.state.as_bytes(),
                    i64::try_from(held.keyring_seq).map_err(|_| "keyring seq too large")?,
                    i64::try_from(now_ms).unwrap_or(i64::MAX),
                ],
            )
            .map_err(sql)?;
        Ok(())
    }

    /// Keeps a refused fork (and drops the oldest beyond [`MAX_EVIDENCE_PER_WIKI`]).
    pub fn keep_evidence(
        &mut self,
        wiki: &WikiId,
        held: &WikiState,
        refused: &WikiState,
        now_ms: u64,
    ) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(sql)?;
        let hex = wiki.to_hex();
        let already: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM evidence WHERE wiki = ?1 AND held = ?2 AND refused = ?3)",
                params![hex, held.as_bytes(), refused.as_bytes()],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if !already {
            tx.execute(
                "INSERT INTO evidence (wiki, held, refused, time_ms) VALUES (?1, ?2, ?3, ?4)",
                params![
                    hex,
                    held.as_bytes(),
                    refused.as_bytes(),
                    i64::try_from(now_ms).unwrap_or(i64::MAX)
                ],
            )
            .map_err(sql)?;
            tx.execute(
                "DELETE FROM evidence WHERE wiki = ?1 AND id NOT IN
                 (SELECT id FROM evidence WHERE wiki = ?1 ORDER BY id DESC LIMIT ?2)",
                params![hex, MAX_EVIDENCE_PER_WIKI],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// The refused forks of `wiki`, oldest first.
    pub fn evidence(&self, wiki: &WikiId) -> Result<Vec<Evidence>, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT held, refused, time_ms FROM evidence WHERE wiki = ?1 ORDER BY id")
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![wiki.to_hex()], |r| {
                Ok(Evidence {
                    held: r.get(0)?,
                    refused: r.get(1)?,
                    time_ms: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql)
    }
}
