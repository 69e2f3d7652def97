//! `zkwiki-server`: flags and environment → [`server::config::Config`], logs, the listener, and
//! graceful shutdown on SIGINT/SIGTERM. All logic lives in the `server` library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use server::config::{
    Config, DEFAULT_MAX_BODY_MEMORY, DEFAULT_MAX_GIT_BODY, DEFAULT_MAX_JSON_BODY,
};

/// Stores and serves zkwiki wikis as ciphertext in git.
#[derive(Parser, Debug)]
#[command(name = "zkwiki-server", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, env = "ZKWIKI_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Data directory: wikis (bare git repositories), database, server secret.
    #[arg(long, env = "ZKWIKI_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// The built web app to serve (when absent, `/` says how to build it).
    #[arg(long, env = "ZKWIKI_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "ZKWIKI_MAX_JSON_BODY", default_value_t = DEFAULT_MAX_JSON_BODY)]
    max_json_body: usize,
    /// Largest git request body, in bytes.
    #[arg(long, env = "ZKWIKI_MAX_GIT_BODY", default_value_t = DEFAULT_MAX_GIT_BODY)]
    max_git_body: usize,
    /// Memory for large request bodies in flight at once, in bytes; more waits, then gets 503.
    #[arg(long, env = "ZKWIKI_MAX_BODY_MEMORY", default_value_t = DEFAULT_MAX_BODY_MEMORY)]
    max_body_memory: u64,
    /// Session lifetime, in seconds.
    #[arg(long, env = "ZKWIKI_SESSION_TTL", default_value_t = 12 * 3600)]
    session_ttl: u64,
    /// Do not flush commits to disk before answering (benchmarks only: a power cut can lose
    /// acknowledged writes).
    #[arg(long, env = "ZKWIKI_UNSAFE_NO_FSYNC")]
    unsafe_no_fsync: bool,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let mut cfg = Config::new(&args.data_dir);
    cfg.web_dir = args.web_dir.clone();
    cfg.max_json_body = args.max_json_body;
    cfg.max_git_body = args.max_git_body;
    cfg.max_body_memory = args.max_body_memory;
    cfg.session_ttl = Duration::from_secs(args.session_ttl);
    cfg.fsync = !args.unsafe_no_fsync;
    if !cfg.fsync {
        tracing::warn!("--unsafe-no-fsync: acknowledged writes may be lost on a power cut");
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
    runtime.block_on(async move {
        let state = server::AppState::open(cfg)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", args.data_dir.display()))?;
        let t = Instant::now();
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            phase = "bind",
            ms = format_args!("{:.2}", t.elapsed().as_secs_f64() * 1000.0),
            "startup"
        );
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "zkwiki-server listening on http://{addr}")?;
            out.flush()?;
        }
        tracing::info!(
            total_ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
            %addr,
            "ready"
        );
        let bg = state.clone();
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            match bg.reconcile() {
                Ok(n) => tracing::info!(
                    wikis = n,
                    ms = format_args!("{:.2}", t.elapsed().as_secs_f64() * 1000.0),
                    "membership index reconciled"
                ),
                Err(e) => tracing::error!(error = %e, "reconciling the membership index failed"),
            }
        });
        server::serve(listener, state, shutdown_signal())
            .await
            .context("serving")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}
