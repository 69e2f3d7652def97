//! What a database engine must provide so that [`super::Db`] can run its one set of statements
//! (`db/sql.rs`) on it: statements with positional parameters (`$1`, `$2`, … as PostgreSQL
//! writes them), rows of a few plain value types, and transactions. Everything above this line
//! (queries, checks, the rate-limit arithmetic) is shared by SQLite and PostgreSQL.

use crate::error::AppError;

/// The SQL dialect of a backend, for the few statements that differ (schema version, locks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, one file in the data directory).
    Sqlite,
    /// PostgreSQL (shared by every server process).
    Postgres,
}

/// A statement parameter.
#[derive(Clone, Copy, Debug)]
pub enum P<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl<'a> From<&'a str> for P<'a> {
    fn from(s: &'a str) -> Self {
        P::Text(s)
    }
}

impl<'a> From<&'a String> for P<'a> {
    fn from(s: &'a String) -> Self {
        P::Text(s)
    }
}

impl<'a> From<&'a [u8]> for P<'a> {
    fn from(b: &'a [u8]) -> Self {
        P::Blob(b)
    }
}

impl<'a> From<&'a [u8; 32]> for P<'a> {
    fn from(b: &'a [u8; 32]) -> Self {
        P::Blob(b)
    }
}

impl<'a> From<&'a Vec<u8>> for P<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        P::Blob(b)
    }
}

impl From<i64> for P<'_> {
    fn from(i: i64) -> Self {
        P::Int(i)
    }
}

impl From<f64> for P<'_> {
    fn from(f: f64) -> Self {
        P::Real(f)
    }
}

impl<'a, T: Into<P<'a>>> From<Option<T>> for P<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(P::Null, Into::into)
    }
}

/// A column value as read.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// One result row.
#[derive(Debug)]
pub struct Row(pub Vec<Val>);

fn column(what: &str, i: usize) -> DbError {
    DbError::Other(format!("column {i} is not {what}"))
}

impl Row {
    fn get(&self, i: usize) -> Result<&Val, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::Other(format!("no column {i}")))
    }

    /// An integer column.
    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        match self.get(i)? {
            Val::Int(v) => Ok(*v),
            _ => Err(column("an integer", i)),
        }
    }

    /// A floating-point column (SQLite may hand back a whole number as an integer).
    pub fn real(&self, i: usize) -> Result<f64, DbError> {
        match self.get(i)? {
            Val::Real(v) => Ok(*v),
            Val::Int(v) => Ok(*v as f64),
            _ => Err(column("a number", i)),
        }
    }

    /// A text column.
    pub fn text(&self, i: usize) -> Result<String, DbError> {
        match self.get(i)? {
            Val::Text(v) => Ok(v.clone()),
            _ => Err(column("text", i)),
        }
    }

    /// A bytes column.
    pub fn blob(&self, i: usize) -> Result<Vec<u8>, DbError> {
        self.opt_blob(i)?.ok_or_else(|| column("bytes", i))
    }

    /// A bytes column that may be NULL.
    pub fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        match self.get(i)? {
            Val::Blob(v) => Ok(Some(v.clone())),
            Val::Null => Ok(None),
            _ => Err(column("bytes", i)),
        }
    }
}

/// A database failure, with the one kind callers act on told apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique or primary-key constraint refused the row.
    #[error("a row with this key exists")]
    Unique,
    /// Anything else (connection, syntax, locks, types): a server fault.
    #[error("database: {0}")]
    Other(String),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        AppError::internal(e)
    }
}

/// Results of the database layer.
pub type DbResult<T> = Result<T, DbError>;

/// How much a transaction's commit must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Flushed before the commit returns (accounts, sessions, tokens: acknowledged means kept).
    Full,
    /// May be lost in a power cut, never torn (rate-limit buckets: losing a few seconds of them
    /// is harmless, and a flush per login attempt is not).
    Relaxed,
}

/// Statements inside one transaction.
pub trait Tx {
    /// Rows of a query.
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> DbResult<Vec<Row>>;
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[P<'_>]) -> DbResult<u64>;
    /// Runs several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> DbResult<()>;
}

/// A database engine behind [`super::Db`]. Every call blocks the calling thread: the server
/// calls it from its blocking pool (`AppState::blocking`), never from an async task.
pub trait Backend: Send + Sync {
    /// Its dialect.
    fn dialect(&self) -> Dialect;
    /// Rows of one query, outside any transaction.
    fn query(&self, sql: &str, params: &[P<'_>]) -> DbResult<Vec<Row>>;
    /// One statement, outside any transaction (committed when it returns).
    fn execute(&self, sql: &str, params: &[P<'_>]) -> DbResult<u64>;
    /// Runs `f` in one write transaction: committed if it returns `Ok`, rolled back otherwise.
    /// Transactions that write the same rows are serialized.
    fn transaction(
        &self,
        durability: Durability,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), AppError>,
    ) -> Result<(), AppError>;
}
