//! Which metadata database the tests' servers use: SQLite (the default) or, with
//! `ZKWIKI_TEST_STORE=postgres`, the PostgreSQL cluster `cargo xtask test` starts and names in
//! `ZKWIKI_TEST_POSTGRES` (a `key=value` connection string). Every data directory gets a schema of
//! its own in that cluster, remembered next to the directory, so a server restarted on the same
//! data finds the same accounts, as with SQLite's file inside it.

use std::path::Path;

use server::config::Database;

/// The env var naming the test cluster.
pub const POSTGRES_ENV: &str = "ZKWIKI_TEST_POSTGRES";
/// The env var choosing the store of every test server.
pub const STORE_ENV: &str = "ZKWIKI_TEST_STORE";

/// Whether servers in this run use PostgreSQL.
pub fn postgres_selected() -> bool {
    std::env::var(STORE_ENV).is_ok_and(|v| v == "postgres")
}

/// The test cluster's connection string, if there is one.
pub fn postgres_cluster() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty())
}

/// The cluster, or a loud skip message for a test that needs one. `None` means: return now.
pub fn require_postgres(test: &str) -> Option<String> {
    let found = postgres_cluster();
    if found.is_none() {
        eprintln!(
            "\n*** SKIPPED {test}: it needs PostgreSQL and {POSTGRES_ENV} is not set. \
             `cargo xtask test` starts a cluster and sets it; for a quick run, \
             `eval $(cargo xtask postgres)` first. ***\n"
        );
    }
    found
}

/// Runs `f` with a connection to `url` (a test's direct look at the database).
pub fn with_client<R>(
    url: &str,
    f: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<R, tokio_postgres::Error>,
) -> R {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test cluster ({url}): {e}"));
        let task = tokio::spawn(conn);
        let out = f(&client).await.unwrap();
        drop(client);
        let _ = task.await;
        out
    })
}

/// Runs statements without parameters on `url`.
pub fn batch(url: &str, sql: &str) {
    with_client(url, async |c| c.batch_execute(sql).await);
}

/// The integer a query returns (first row, first column).
pub fn query_i64(url: &str, sql: &str) -> i64 {
    with_client(url, async |c| c.query_one(sql, &[]).await.map(|r| r.get(0)))
}

/// A new schema in the cluster; the connection string that uses it.
pub fn fresh_schema(cluster: &str) -> String {
    let mut id = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    let schema = format!("t_{}", data_encoding::HEXLOWER.encode(&id));
    batch(cluster, &format!("CREATE SCHEMA {schema}"));
    with_schema(cluster, &schema)
}

/// `cluster` with `schema` as the search path.
pub fn with_schema(cluster: &str, schema: &str) -> String {
    format!("{cluster} options='-c search_path={schema}'")
}

/// The database a server on `data` uses in this run.
pub fn database_for(data: &Path) -> Database {
    if !postgres_selected() {
        return Database::Sqlite;
    }
    let cluster = postgres_cluster().unwrap_or_else(|| {
        panic!("{STORE_ENV}=postgres needs {POSTGRES_ENV} (run through `cargo xtask test`)")
    });
    Database::Postgres {
        url: connection_for(&cluster, data),
        pool: 8,
        ca_file: None,
    }
}

/// The connection string of `data`'s schema (made on first use).
pub fn connection_for(cluster: &str, data: &Path) -> String {
    let marker = data.with_extension("pg-schema");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url;
    }
    let url = fresh_schema(cluster);
    std::fs::write(&marker, &url).unwrap();
    url
}
