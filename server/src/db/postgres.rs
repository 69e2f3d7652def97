//! The shared backend: PostgreSQL through `tokio-postgres` and a `deadpool` pool, so any number of
//! server processes (on any number of machines, or Lambda instances) share accounts, sessions,
//! tokens, the membership index and the rate-limit buckets.
//!
//! The driver is async; the server's handlers run their database work on the blocking pool
//! (often under a wiki's lock, between git operations), so each call here drives one future to
//! completion with the runtime's [`Handle::block_on`] while the connections themselves live on the
//! runtime's worker threads. Calling this from an async task would panic (tokio refuses to block
//! a worker thread); every caller goes through `AppState::blocking`.
//!
//! Statements are prepared once per connection (deadpool's statement cache).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::backend::{Backend, DbError, DbResult, Dialect, Durability, P, Row, Tx, Val};
use crate::error::AppError;

/// How long a request waits for a pooled connection, or for a new one to open.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// PostgreSQL behind [`super::Db`].
pub struct Postgres {
    pool: Pool,
    rt: Handle,
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return DbError::Unique;
        }
        // The server's message (not just "db error") is what an operator needs.
        match e.as_db_error() {
            Some(db) => DbError::Other(format!("postgres: {}: {}", db.code().code(), db.message())),
            None => DbError::Other(format!("postgres: {e}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => DbError::Other(format!("postgres pool: {other}")),
        }
    }
}

impl ToSql for P<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        fn typed<T: ToSql>(
            v: T,
            ty: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            if !T::accepts(ty) {
                return Err(format!(
                    "a {} parameter where {ty} is expected",
                    std::any::type_name::<T>()
                )
                .into());
            }
            v.to_sql(ty, out)
        }
        match *self {
            P::Null => Ok(IsNull::Yes),
            P::Int(i) => typed(i, ty, out),
            P::Real(f) => typed(f, ty, out),
            P::Text(s) => typed(s, ty, out),
            P::Blob(b) => typed(b, ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`.
        true
    }

    to_sql_checked!();
}

fn to_row(row: &tokio_postgres::Row) -> DbResult<Row> {
    let mut vals = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Val::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Val::Int(v.into()))
        } else if *ty == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)?.map(Val::Real)
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
            row.try_get::<_, Option<String>>(i)?.map(Val::Text)
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Val::Blob)
        } else {
            return Err(DbError::Other(format!(
                "column {} has type {ty}",
                col.name()
            )));
        };
        vals.push(v.unwrap_or(Val::Null));
    }
    Ok(Row(vals))
}

fn refs<'a>(params: &'a [P<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

struct PgTx<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    rt: &'a Handle,
}

impl Tx for PgTx<'_> {
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> DbResult<Vec<Row>> {
        self.rt.block_on(async {
            let stmt = self.tx.prepare_cached(sql).await?;
            let rows = self.tx.query(&stmt, &refs(params)).await?;
            rows.iter().map(to_row).collect()
        })
    }

    fn execute(&mut self, sql: &str, params: &[P<'_>]) -> DbResult<u64> {
        self.rt.block_on(async {
            let stmt = self.tx.prepare_cached(sql).await?;
            Ok(self.tx.execute(&stmt, &refs(params)).await?)
        })
    }

    fn batch(&mut self, sql: &str) -> DbResult<()> {
        Ok(self.rt.block_on(self.tx.batch_execute(sql))?)
    }
}

/// The TLS setting a connection string asks for: none, or rustls with the Mozilla roots plus
/// the operator's CA file (e.g. Amazon RDS's bundle).
fn tls(
    cfg: &tokio_postgres::Config,
    ca_file: Option<&Path>,
) -> DbResult<Option<tokio_postgres_rustls::MakeRustlsConnect>> {
    if cfg.get_ssl_mode() != SslMode::Require {
        if ca_file.is_some() {
            return Err(DbError::Other(
                "a database CA file is set, but the connection string does not say sslmode=require"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let bad = |e: &dyn std::fmt::Display| {
            DbError::Other(format!("database CA file {}: {e}", path.display()))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(bad(&"no certificate in it"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Other(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(tokio_postgres_rustls::MakeRustlsConnect::new(config)))
}

impl Postgres {
    /// A pool of up to `max` connections to `url` (a `postgres://` URL or `key=value` string;
    /// `sslmode=require` turns TLS on, verified against the Mozilla roots and `ca_file`). Opens
    /// one connection now, so a wrong address or password fails at start. Must run inside the
    /// tokio runtime that will drive the connections.
    pub async fn connect(url: &str, max: usize, ca_file: Option<&Path>) -> DbResult<Self> {
        let cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| DbError::Other(format!("the database URL does not parse: {e}")))?;
        let mgr_cfg = ManagerConfig {
            // A broken connection shows up as an error on use and is then dropped by the pool.
            recycling_method: RecyclingMethod::Fast,
        };
        let mgr = match tls(&cfg, ca_file)? {
            Some(tls) => Manager::from_config(cfg, tls, mgr_cfg),
            None => Manager::from_config(cfg, tokio_postgres::NoTls, mgr_cfg),
        };
        let pool = Pool::builder(mgr)
            .max_size(max.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| DbError::Other(format!("postgres pool: {e}")))?;
        drop(pool.get().await?);
        Ok(Self {
            pool,
            rt: Handle::current(),
        })
    }

    fn client(&self) -> DbResult<deadpool_postgres::Object> {
        Ok(self.rt.block_on(self.pool.get())?)
    }
}

impl Backend for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&self, sql: &str, params: &[P<'_>]) -> DbResult<Vec<Row>> {
        let client = self.client()?;
        self.rt.block_on(async {
            let stmt = client.prepare_cached(sql).await?;
            let rows = client.query(&stmt, &refs(params)).await?;
            rows.iter().map(to_row).collect()
        })
    }

    fn execute(&self, sql: &str, params: &[P<'_>]) -> DbResult<u64> {
        let client = self.client()?;
        self.rt.block_on(async {
            let stmt = client.prepare_cached(sql).await?;
            Ok(client.execute(&stmt, &refs(params)).await?)
        })
    }

    fn transaction(
        &self,
        durability: Durability,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let mut client = self.client()?;
        let tx = self
            .rt
            .block_on(client.transaction())
            .map_err(DbError::from)?;
        if durability == Durability::Relaxed {
            // This transaction's commit does not wait for the WAL flush (it is still atomic).
            self.rt
                .block_on(tx.batch_execute("SET LOCAL synchronous_commit = off"))
                .map_err(DbError::from)?;
        }
        let out = f(&mut PgTx {
            tx: &tx,
            rt: &self.rt,
        });
        match out {
            Ok(()) => Ok(self.rt.block_on(tx.commit()).map_err(DbError::from)?),
            Err(e) => {
                // Dropping the transaction would also roll back, in the background; do it now.
                let _ = self.rt.block_on(tx.rollback());
                Err(e)
            }
        }
    }
}
