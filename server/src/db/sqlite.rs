//! The embedded backend: one SQLite file (`DATA/zkwiki.sqlite3`) in WAL mode, a small pool of
//! connections. Several processes on one machine may share the file (SQLite's locks with a busy
//! timeout); not over a network file system, whose locking SQLite cannot trust (use PostgreSQL).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::backend::{Backend, DbError, DbResult, Dialect, Durability, P, Row, Tx, Val};
use crate::error::AppError;

/// Connections kept open for reuse.
const IDLE_MAX: usize = 16;

/// SQLite behind [`super::Db`].
pub struct Sqlite {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            P::Null => ValueRef::Null,
            P::Int(i) => ValueRef::Integer(i),
            P::Real(f) => ValueRef::Real(f),
            P::Text(s) => ValueRef::Text(s.as_bytes()),
            P::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                DbError::Unique
            }
            _ => DbError::Other(format!("sqlite: {e}")),
        }
    }
}

/// `$1`, `$2`, … (the statements' spelling) as SQLite's numbered `?1`, `?2`, …, which bind by
/// number exactly as PostgreSQL's do.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn rows(conn: &Connection, sql: &str, params: &[P<'_>]) -> DbResult<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&numbered(sql))?;
    let n = stmt.column_count();
    let mut out = Vec::new();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    while let Some(r) = rows.next()? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(match r.get_ref(i)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(v) => Val::Int(v),
                ValueRef::Real(v) => Val::Real(v),
                ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Val::Blob(b.to_vec()),
            });
        }
        out.push(Row(vals));
    }
    Ok(out)
}

fn execute(conn: &Connection, sql: &str, params: &[P<'_>]) -> DbResult<u64> {
    let mut stmt = conn.prepare_cached(&numbered(sql))?;
    Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
}

struct SqliteTx<'a>(&'a rusqlite::Transaction<'a>);

impl Tx for SqliteTx<'_> {
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> DbResult<Vec<Row>> {
        rows(self.0, sql, params)
    }
    fn execute(&mut self, sql: &str, params: &[P<'_>]) -> DbResult<u64> {
        execute(self.0, sql, params)
    }
    fn batch(&mut self, sql: &str) -> DbResult<()> {
        Ok(self.0.execute_batch(sql)?)
    }
}

impl Sqlite {
    /// Opens (creating) the database file; the schema is brought up to date by the caller.
    pub fn open(path: &Path) -> DbResult<Self> {
        let db = Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        // Fail now, not at the first request, when the file cannot be opened.
        let conn = db.connect()?;
        db.put_back(conn);
        Ok(db)
    }

    /// The schema version recorded in the file at `path` (for backups and restores).
    pub fn schema_version_of(path: &Path) -> rusqlite::Result<i64> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    fn connect(&self) -> DbResult<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A revoked token or a new account must survive a power cut once acknowledged.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }

    fn take(&self) -> DbResult<Connection> {
        match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_MAX
        {
            idle.push(conn);
        }
    }

    fn with_conn<R>(&self, f: impl FnOnce(&mut Connection) -> DbResult<R>) -> DbResult<R> {
        let mut conn = self.take()?;
        let out = f(&mut conn);
        // A connection is returned even after an error: SQLite rolls back anything unfinished
        // when a statement or transaction is dropped.
        self.put_back(conn);
        out
    }
}

impl Backend for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&self, sql: &str, params: &[P<'_>]) -> DbResult<Vec<Row>> {
        self.with_conn(|c| rows(c, sql, params))
    }

    fn execute(&self, sql: &str, params: &[P<'_>]) -> DbResult<u64> {
        self.with_conn(|c| execute(c, sql, params))
    }

    fn transaction(
        &self,
        durability: Durability,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let mut conn = self.take()?;
        let relaxed = durability == Durability::Relaxed;
        let out = (|| {
            if relaxed {
                // WAL with NORMAL: the commit reaches the log without a flush; a power cut may
                // lose it, never tear the database.
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(DbError::from)?;
            }
            // IMMEDIATE: the write lock is taken at BEGIN, so a transaction that reads and then
            // writes never fails half-way because another writer committed in between.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            f(&mut SqliteTx(&tx))?;
            tx.commit().map_err(DbError::from)?;
            Ok(())
        })();
        if relaxed && conn.pragma_update(None, "synchronous", "FULL").is_err() {
            // Never hand a relaxed connection to a caller that expects flushes.
            return out;
        }
        self.put_back(conn);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_become_numbered_question_marks() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = $1 AND c = $12 OR d = $2"),
            "SELECT a FROM t WHERE b = ?1 AND c = ?12 OR d = ?2"
        );
        assert_eq!(numbered("SELECT '$' || x"), "SELECT '$' || x");
    }
}
