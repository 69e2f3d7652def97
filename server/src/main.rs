//! `zkwiki-server`: flags and environment → [`server::config::Config`], logs, the listeners, and
//! graceful shutdown on SIGINT/SIGTERM; `backup` and `restore` of a data directory; `witness`,
//! the witness service. All logic lives in the `server` library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use server::config::{
    Config, DEFAULT_MAX_BODY_MEMORY, DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DEFAULT_MAX_GIT_BODY,
    DEFAULT_MAX_JSON_BODY, Database,
};
use server::proxy::TrustedProxies;

/// Stores and serves zkwiki wikis as ciphertext in git.
#[derive(Parser, Debug)]
#[command(name = "zkwiki-server", version)]
struct Args {
    /// What to do (default: serve).
    #[command(subcommand)]
    command: Option<Command>,
    /// Data directory: wikis (bare git repositories), database, server secret.
    #[arg(
        long,
        env = "ZKWIKI_SERVER_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    data_dir: PathBuf,
    /// Metadata database: `sqlite` (DATA/zkwiki.sqlite3, the default) or a PostgreSQL
    /// connection string (postgres://user:password@host:5432/dbname, `sslmode=require` for TLS),
    /// shared by every server process that serves this data directory.
    #[arg(
        long,
        env = "ZKWIKI_SERVER_DATABASE",
        default_value = "sqlite",
        hide_env_values = true,
        global = true
    )]
    database: String,
    /// Connections to PostgreSQL this process keeps at most.
    #[arg(long, env = "ZKWIKI_SERVER_DATABASE_POOL", default_value_t = server::config::DEFAULT_DATABASE_POOL, global = true)]
    database_pool: usize,
    /// CA certificates (PEM) to trust for `sslmode=require`, beside the Mozilla roots (e.g.
    /// Amazon RDS's bundle).
    #[arg(long, env = "ZKWIKI_SERVER_DATABASE_CA", global = true)]
    database_ca: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, env = "ZKWIKI_SERVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Copy the data directory consistently into DIR (a new directory), while the server runs.
    Backup {
        /// Where the backup goes; must not exist, or be empty.
        dir: PathBuf,
    },
    /// Check the backup in DIR and restore it into the data directory (a new, empty one).
    Restore {
        /// The backup to restore.
        dir: PathBuf,
    },
    /// Run a witness instead: co-sign the heads of the wikis whose keyring lists this witness's
    /// key (kept in DATA/witness/), so their members' new devices cannot be shown an old or forked
    /// head. Run it somewhere other than the wikis' server.
    Witness(WitnessArgs),
    /// Answer AWS Lambda HTTP events (function URL, API Gateway HTTP API, load balancer) instead
    /// of listening on a port; the default when AWS_LAMBDA_RUNTIME_API is set
    /// (docs/deploy-aws.md).
    Lambda,
}

#[derive(clap::Args, Debug)]
struct WitnessArgs {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(
        long,
        env = "ZKWIKI_SERVER_WITNESS_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    listen: String,
    /// Largest submission body, in bytes (the wiki's keyring chain travels with each).
    #[arg(long, env = "ZKWIKI_SERVER_WITNESS_MAX_BODY", default_value_t = server::witness::DEFAULT_MAX_BODY)]
    max_body: usize,
    /// Print the witness's key and fingerprint, then exit (makes the key on first use).
    #[arg(long)]
    print_key: bool,
}

/// `zkwiki-server witness`: opens DATA/witness/ and serves until SIGINT/SIGTERM.
fn run_witness(data_dir: &std::path::Path, a: &WitnessArgs) -> anyhow::Result<()> {
    let witness = server::witness::Witness::open(data_dir).map_err(|e| anyhow::anyhow!(e))?;
    let mut out = std::io::stdout().lock();
    if a.print_key {
        writeln!(
            out,
            "key {}\nfingerprint {}",
            data_encoding::BASE64.encode(&witness.public()),
            witness.fingerprint()
        )?;
        return Ok(());
    }
    drop(out);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        // Handlers first: a supervisor that signals as soon as the address is printed stops it
        // cleanly.
        let shutdown = shutdown_signal();
        {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "zkwiki-witness key fingerprint {}",
                witness.fingerprint()
            )?;
            writeln!(out, "zkwiki-witness listening on http://{addr}")?;
            out.flush()?;
        }
        tracing::info!(%addr, fingerprint = %witness.fingerprint(), "witness ready");
        let app = server::witness::app(witness, a.max_body);
        server::witness::serve(listener, app, shutdown)
            .await
            .context("serving")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (with the request span's fields, such as the request id).
    Json,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, env = "ZKWIKI_SERVER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// A second, private address serving only /metrics, /healthz and /readyz (for Prometheus
    /// on another host; on the main address /metrics answers loopback peers only).
    #[arg(long, env = "ZKWIKI_SERVER_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// The built web app to serve (when absent, `/` says how to build it).
    #[arg(long, env = "ZKWIKI_SERVER_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "ZKWIKI_SERVER_MAX_JSON_BODY", default_value_t = DEFAULT_MAX_JSON_BODY)]
    max_json_body: usize,
    /// Largest git request body, in bytes.
    #[arg(long, env = "ZKWIKI_SERVER_MAX_GIT_BODY", default_value_t = DEFAULT_MAX_GIT_BODY)]
    max_git_body: usize,
    /// Memory for large request bodies in flight at once, in bytes; more waits, then gets 503.
    #[arg(long, env = "ZKWIKI_SERVER_MAX_BODY_MEMORY", default_value_t = DEFAULT_MAX_BODY_MEMORY)]
    max_body_memory: u64,
    /// The part of that memory one client address may hold (default: a quarter of it).
    #[arg(long, env = "ZKWIKI_SERVER_MAX_BODY_MEMORY_PER_CLIENT")]
    max_body_memory_per_client: Option<u64>,
    /// Session lifetime, in seconds.
    #[arg(long, env = "ZKWIKI_SERVER_SESSION_TTL", default_value_t = 12 * 3600)]
    session_ttl: u64,
    /// Seconds a client has to send a request's line and headers (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long, env = "ZKWIKI_SERVER_HEADER_TIMEOUT", default_value_t = 10.0)]
    header_timeout: f64,
    /// Seconds a request body may send nothing before it is cut off (408).
    #[arg(long, env = "ZKWIKI_SERVER_BODY_TIMEOUT", default_value_t = 20.0)]
    body_timeout: f64,
    /// Seconds for a login limit to give back one attempt (default 6).
    #[arg(long, env = "ZKWIKI_SERVER_LOGIN_REFILL")]
    login_refill: Option<f64>,
    /// Connections open at once (default: three quarters of the descriptor limit).
    #[arg(long, env = "ZKWIKI_SERVER_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections open at once from one client address (trusted proxies are exempt).
    #[arg(long, env = "ZKWIKI_SERVER_MAX_CONNECTIONS_PER_CLIENT", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_CLIENT)]
    max_connections_per_client: usize,
    /// Reverse proxies whose Forwarded / X-Forwarded-For headers name the client: a
    /// comma-separated list of addresses or CIDR blocks (e.g. 127.0.0.1,::1). Empty: none.
    #[arg(long, env = "ZKWIKI_SERVER_TRUSTED_PROXY", default_value = "")]
    trusted_proxy: TrustedProxies,
    /// Do not flush commits to disk before answering (benchmarks only: a power cut can lose
    /// acknowledged writes).
    #[arg(long, env = "ZKWIKI_SERVER_UNSAFE_NO_FSYNC")]
    unsafe_no_fsync: bool,
    /// Serve ciphertext blobs by hash without a token, as `Cache-Control: public, immutable`,
    /// for a CDN in front (the head and everything else stay private). Anyone who knows a wiki
    /// id and a blob hash can then fetch that blob's ciphertext (docs/deploy-aws.md).
    #[arg(long, env = "ZKWIKI_SERVER_PUBLIC_BLOBS")]
    public_blobs: bool,
}

/// Installs the SIGINT/SIGTERM handlers now (before the server says it is listening, so a
/// supervisor's early SIGTERM is a clean stop, not a kill) and resolves on the first signal.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {},
                () = wait(int) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Raises the soft descriptor limit to the hard one (the connection cap follows it).
fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(limit = ?limit.maximum, "descriptor limit raised"),
            Err(e) => tracing::warn!(error = %e, "could not raise the descriptor limit"),
        }
    }
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("--{what} must be a positive number"))
}

/// The database the flags name.
fn database(args: &Args) -> anyhow::Result<Database> {
    let mut db = Database::parse(&args.database).map_err(|e| anyhow::anyhow!("--database: {e}"))?;
    match &mut db {
        Database::Sqlite => {
            if args.database_ca.is_some() {
                anyhow::bail!("--database-ca is for a PostgreSQL --database");
            }
        }
        Database::Postgres { pool, ca_file, .. } => {
            *pool = args.database_pool.max(1);
            ca_file.clone_from(&args.database_ca);
        }
    }
    Ok(db)
}

fn config(args: &Args) -> anyhow::Result<Config> {
    let a = &args.serve;
    let mut cfg = Config::new(&args.data_dir);
    cfg.database = database(args)?;
    cfg.web_dir = a.web_dir.clone();
    cfg.max_json_body = a.max_json_body;
    cfg.max_git_body = a.max_git_body;
    cfg.max_body_memory = a.max_body_memory;
    cfg.max_body_memory_per_client = a
        .max_body_memory_per_client
        .unwrap_or(a.max_body_memory / 4);
    cfg.session_ttl = Duration::from_secs(a.session_ttl);
    cfg.header_timeout = seconds("header-timeout", a.header_timeout)?;
    cfg.body_timeout = seconds("body-timeout", a.body_timeout)?;
    if let Some(s) = a.login_refill {
        anyhow::ensure!(s > 0.0, "--login-refill must be more than 0 seconds");
        cfg.login.refill = seconds("login-refill", s)?;
    }
    cfg.max_connections = a.max_connections;
    cfg.max_connections_per_client = a.max_connections_per_client;
    cfg.trusted_proxies = a.trusted_proxy.clone();
    cfg.fsync = !a.unsafe_no_fsync;
    cfg.public_blobs = a.public_blobs;
    Ok(cfg)
}

/// `zkwiki-server lambda`: the app behind the Lambda runtime API.
fn lambda(args: &Args, started: Instant) -> anyhow::Result<()> {
    let cfg = config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let data_dir = cfg.data_dir.clone();
        let state = server::AppState::open(cfg)
            .await
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", data_dir.display()))?;
        tracing::info!(
            total_ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
            "ready for Lambda events"
        );
        server::lambda::run(state)
            .await
            .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
    })
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let args = Args::parse();
    init_logs(args.log_format);
    if matches!(
        args.command,
        Some(Command::Backup { .. } | Command::Restore { .. })
    ) && matches!(database(&args)?, Database::Postgres { .. })
    {
        anyhow::bail!(
            "backup and restore copy a data directory with its SQLite database; with PostgreSQL, \
             back up the database with pg_dump after the repositories (docs/deploy-aws.md, \
             \"Backups\")"
        );
    }
    match &args.command {
        Some(Command::Backup { dir }) => {
            let t = Instant::now();
            let m = server::backup::backup(&args.data_dir, dir)
                .with_context(|| format!("backing up {}", args.data_dir.display()))?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "backed up {} wiki(s) and the database (schema {}) to {} in {:.1} s",
                m.wikis.len(),
                m.schema_version,
                dir.display(),
                t.elapsed().as_secs_f64()
            )?;
            return Ok(());
        }
        Some(Command::Restore { dir }) => {
            let m = server::backup::restore(dir, &args.data_dir)
                .with_context(|| format!("restoring {}", dir.display()))?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "restored {} wiki(s) and the database from {} into {}",
                m.wikis.len(),
                dir.display(),
                args.data_dir.display()
            )?;
            return Ok(());
        }
        Some(Command::Witness(a)) => return run_witness(&args.data_dir, a),
        Some(Command::Lambda) => return lambda(&args, started),
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            return lambda(&args, started);
        }
        Some(Command::Serve) | None => {}
    }
    raise_descriptor_limit();
    let cfg = config(&args)?;
    if !cfg.fsync {
        tracing::warn!("--unsafe-no-fsync: acknowledged writes may be lost on a power cut");
    }
    if cfg.public_blobs {
        tracing::info!(
            "--public-blobs: ciphertext blobs by hash are served without a token, cacheable by shared caches"
        );
    }
    if cfg.trusted_proxies.enabled() {
        tracing::info!(proxies = ?cfg.trusted_proxies, "client addresses are taken from forwarding headers of trusted proxies");
    }
    tracing::info!(
        phase = "arguments",
        ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        "startup"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let a = args.serve;
    let data_dir = args.data_dir;
    runtime.block_on(async move {
        let state = server::AppState::open(cfg)
            .await
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", data_dir.display()))?;
        let t = Instant::now();
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        if let Some(ops) = &a.metrics_listen {
            let ops_listener = tokio::net::TcpListener::bind(ops)
                .await
                .with_context(|| format!("cannot listen on {ops}"))?;
            tracing::info!(addr = %ops_listener.local_addr()?, "metrics listening");
            let app = server::ops_app(state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(ops_listener, app).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        tracing::info!(
            phase = "bind",
            ms = format_args!("{:.2}", t.elapsed().as_secs_f64() * 1000.0),
            "startup"
        );
        let shutdown = shutdown_signal();
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "zkwiki-server listening on http://{addr}")?;
            out.flush()?;
        }
        tracing::info!(
            total_ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
            %addr,
            max_connections = state.conns.max(),
            "ready"
        );
        server::serve(listener, state, shutdown)
            .await
            .context("serving")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}
