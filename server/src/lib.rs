//! `zkwiki-server`: stores and serves only ciphertext.
//!
//! Each wiki is a bare git repository under `DATA/wikis/` holding the keyring chain, the signed
//! state, the manifest and page envelopes; accounts, sessions, agent tokens and rate limits live
//! in SQLite (`DATA/zkwiki.sqlite3`) or PostgreSQL ([`db`]), secrets only as hashes. Nothing that
//! must hold across processes lives only in a process's memory, so many processes on one shared
//! data directory and one PostgreSQL behave as one server. The server verifies every keyring, state and
//! envelope it accepts with `core-crypto` (a first line of defence: clients verify everything
//! again) and never decrypts anything. `docs/api.md` is the contract.
//!
//! Modules: [`config`], [`error`] (the error policy), [`db`], [`auth`] (tokens, the server
//! secret), [`lockout`] (login throttling with device tokens), [`durable`] (locks and flush
//! barriers), [`repo`] (git storage with compare-and-swap commits), the routes, [`git`]
//! (read-only smart HTTP), [`web`], [`budget`] (memory for bodies in flight), [`proxy`] (the
//! client behind a trusted proxy), [`observe`] (request ids, logs, JSON errors), [`metrics`],
//! [`health`], [`backup`] and [`net`] (connections: timeouts, caps, draining); [`witness`] is
//! the separate witness service (`zkwiki-server witness`).
//! [`app`] builds the router; [`serve`] runs it on a listener until a shutdown signal.

pub mod auth;
pub mod backup;
pub mod budget;
pub mod config;
pub mod db;
pub mod durable;
pub mod error;
pub mod extract;
pub mod git;
pub mod health;
pub mod identities;
pub mod lambda;
pub mod lockout;
pub mod metrics;
pub mod net;
pub mod observe;
pub mod proxy;
pub mod quarantine;
pub mod repo;
mod routes;
pub mod web;
pub mod witness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::routing::{any, delete, get, post, put};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::ServerSecret;
use crate::budget::{BodyBudget, RouteBodies, SMALL_BODY};
use crate::config::Config;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::extract::BodyLimit;
use crate::lockout::{DeviceTokens, LoginLimiter};
use crate::metrics::Metrics;
use crate::net::conns::Tracker;
use crate::repo::{Head, Store};
use core_crypto::keyring::Keyring;

/// `server_meta` entry: when the membership index was last rebuilt from the repositories.
const INDEX_RECONCILED: &str = "membership_index_reconciled_at";

/// Everything a request handler can reach.
pub struct Inner {
    /// The configuration.
    pub cfg: Config,
    /// Accounts, sessions, tokens, membership index.
    pub db: Db,
    /// The wikis.
    pub store: Store,
    /// Login and registration limits.
    pub limiter: LoginLimiter,
    /// Device tokens (exempt a known device from the per-name login limit).
    pub devices: DeviceTokens,
    /// The server secret (fake KDF parameters).
    pub secret: ServerSecret,
    /// Memory for large bodies in flight.
    pub budget: BodyBudget,
    /// Open connections.
    pub conns: Arc<Tracker>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The membership index was reconciled with the repositories since start.
    reconciled: AtomicBool,
    /// Shutdown has begun.
    draining: AtomicBool,
    /// Process start (Unix seconds).
    started_at: i64,
}

/// Shared state of the app (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn phase(name: &str, started: Instant) {
    tracing::info!(
        phase = name,
        ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        "startup"
    );
}

/// The connection cap when none is configured: three quarters of the descriptor limit (the rest
/// is for the database, repositories and git subprocesses), at least 64.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    (limit - limit / 4).max(64)
}

impl AppState {
    /// Opens the data directory (creating it), the database and the store; logs each phase's time.
    /// Runs inside the tokio runtime that will serve (a PostgreSQL pool lives on it).
    pub async fn open(mut cfg: Config) -> AppResult<Self> {
        let t = Instant::now();
        if !cfg.data_dir.exists() {
            std::fs::create_dir_all(&cfg.data_dir)?;
            // Hashes, the server secret and every wiki live here: the server's user only.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        let secret = ServerSecret::load_or_create(&cfg.data_dir.join("server-secret"))?;
        phase("server secret", t);
        let t = Instant::now();
        let db = Db::open(&cfg.database, &cfg.data_dir).await?;
        tracing::info!(database = cfg.database.kind(), "metadata database");
        phase("database", t);
        let t = Instant::now();
        let store = Store::open(cfg.wikis_dir(), cfg.locks_dir(), cfg.fsync)?;
        phase("store", t);
        // The no-token routes never reserve upload memory (see budget.rs).
        cfg.max_public_body = cfg.max_public_body.min(SMALL_BODY as usize);
        let max_connections = cfg.max_connections.unwrap_or_else(default_max_connections);
        Ok(Self(Arc::new(Inner {
            limiter: LoginLimiter::new(cfg.login.clone()),
            devices: DeviceTokens::new(secret.device_key()),
            budget: BodyBudget::new(
                cfg.max_body_memory,
                cfg.max_body_memory_per_client,
                cfg.body_wait,
            ),
            conns: Arc::new(Tracker::new(
                max_connections,
                cfg.max_connections_per_client,
            )),
            metrics: Arc::new(Metrics::default()),
            reconciled: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            started_at: db::now_unix(),
            cfg,
            db,
            store,
            secret,
        })))
    }

    /// Runs blocking work (database, git, flushes) off the async threads, in the request's span.
    pub(crate) async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> AppResult<R> + Send + 'static,
    ) -> AppResult<R> {
        let inner = self.0.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&inner))).await?
    }

    /// Rebuilds the membership index from the repositories (after a crash it may lag) and clears
    /// leftovers of interrupted deletions. Returns the number of wikis seen. Until it has run
    /// once, access checks read the repositories instead of the index.
    pub fn reconcile(&self) -> AppResult<usize> {
        self.store.clean_trash();
        let ids = self.store.list_ids()?;
        for id in &ids {
            match self.store.wiki(*id).and_then(|w| w.head()) {
                Ok(head) => {
                    self.index_members(&head);
                    self.write_identities(*id);
                }
                Err(e) => tracing::warn!(wiki = %id, error = %e, "cannot read wiki head"),
            }
        }
        let on_disk: std::collections::HashSet<String> = ids.iter().map(|i| i.to_hex()).collect();
        for wiki in self.db.indexed_wikis()? {
            if !on_disk.contains(&wiki) {
                self.db.delete_wiki(&wiki)?;
            }
        }
        self.db
            .set_meta(INDEX_RECONCILED, &db::now_unix().to_string())?;
        self.reconciled.store(true, Ordering::Release);
        Ok(ids.len())
    }

    /// Marks the start of shutdown (readiness answers 503 from now on).
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// The membership index rows of a keyring.
fn index_rows(keyring: &Keyring) -> Vec<([u8; 32], &'static str)> {
    keyring
        .members
        .iter()
        .map(|m| (m.public.ed25519, m.role.name()))
        .collect()
}

impl Inner {
    /// Adds the members of a keyring that is about to take effect to the wiki's membership
    /// index, removing nobody: a crash before [`Inner::index_members`] then leaves the index
    /// naming too many members (the keyring still decides), never too few.
    pub(crate) fn index_new_members(&self, keyring: &Keyring) -> AppResult<()> {
        self.db
            .add_members(&keyring.wiki.to_hex(), &index_rows(keyring))
    }

    /// Rewrites a wiki's membership index from its current keyring (errors are logged: the
    /// index then names too many members until the next change or reconciliation).
    pub(crate) fn index_members(&self, head: &Head) {
        let members = index_rows(&head.keyring);
        if let Err(e) = self.db.set_members(&head.keyring.wiki.to_hex(), &members) {
            tracing::error!(wiki = %head.keyring.wiki, error = %e, "membership index not updated");
        }
    }

    /// Marks the membership index ready without rebuilding it when the database records a
    /// reconciliation against the repositories (see [`crate::lambda`]); whether it did.
    pub fn trust_recorded_index(&self) -> AppResult<bool> {
        let recorded = self.db.meta(INDEX_RECONCILED)?.is_some();
        if recorded {
            self.reconciled.store(true, Ordering::Release);
        }
        Ok(recorded)
    }

    /// Whether the membership index has been reconciled since start (and so may decide who
    /// sees a wiki).
    pub fn index_ready(&self) -> bool {
        self.reconciled.load(Ordering::Acquire)
    }

    /// Whether shutdown has begun.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Counts a request refused with `429`.
    pub(crate) fn count_limited(&self) {
        self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Process start, Unix seconds.
    pub fn started_at(&self) -> i64 {
        self.started_at
    }
}

async fn api_not_found() -> AppError {
    AppError::NotFound("no such API route")
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

fn bodies(state: &AppState, limit: usize, git: bool) -> RouteBodies {
    RouteBodies {
        state: state.clone(),
        limit: limit as u64,
        git,
    }
}

/// The whole HTTP app.
pub fn app(state: AppState) -> Router {
    use routes::{accounts, tokens, wikis};
    let json_limit = state.cfg.max_json_body;
    let git_limit = state.cfg.max_git_body;
    let public_limit = state.cfg.max_public_body;
    // The routes that take no token: small bodies only.
    let public = Router::new()
        .route("/prelogin", post(accounts::prelogin))
        .route("/register", post(accounts::register))
        .route("/login", post(accounts::login))
        .layer(DefaultBodyLimit::max(public_limit))
        .layer(axum::Extension(BodyLimit(public_limit)))
        .layer(middleware::from_fn_with_state(
            bodies(&state, public_limit, false),
            budget::hold,
        ));
    let api = Router::new()
        .route("/logout", post(accounts::logout))
        .route(
            "/account/protectors/{protector}",
            put(accounts::put_protector),
        )
        .route("/users/{user}", get(accounts::get_user))
        .route("/wikis", post(wikis::create).get(wikis::list))
        .route("/wikis/{wiki}", delete(wikis::delete))
        .route("/wikis/{wiki}/keyring", get(wikis::keyring))
        .route("/wikis/{wiki}/head", get(wikis::head))
        .route("/wikis/{wiki}/states", get(wikis::states_range))
        .route("/wikis/{wiki}/states/{seq}", get(wikis::state_at))
        .route("/wikis/{wiki}/blobs/{hash}", get(wikis::blob))
        .route("/wikis/{wiki}/pages/{page}", get(wikis::page))
        .route("/wikis/{wiki}/commits", post(wikis::commit))
        .route("/wikis/{wiki}/history", get(wikis::history))
        .route(
            "/wikis/{wiki}/tokens",
            post(tokens::create).get(tokens::list),
        )
        .route("/wikis/{wiki}/tokens/{id}", delete(tokens::revoke))
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(axum::Extension(BodyLimit(json_limit)))
        .layer(middleware::from_fn_with_state(
            bodies(&state, json_limit, false),
            budget::hold,
        ))
        .merge(public)
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Answers are per caller: no cache (a CDN with a default TTL included) may keep one
        // unless its route says otherwise (blobs by hash, pages by id).
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("private, no-store"),
            ),
        );
    let git = Router::new()
        .route("/git/{*rest}", any(git::handle))
        .layer(DefaultBodyLimit::max(git_limit))
        .layer(middleware::from_fn_with_state(
            bodies(&state, git_limit, true),
            budget::hold,
        ));
    let mut router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics_local))
        .nest("/api/v1", api)
        .merge(git)
        .merge(web::router(state.cfg.web_dir.clone()))
        .with_state(state.clone());
    for (name, value) in web::SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(middleware::from_fn_with_state(state, observe::observe))
}

/// The operator's port (`--metrics-listen`): `/metrics`, `/healthz` and `/readyz` only, with no
/// restriction on who asks (bind it to a private address).
pub fn ops_app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state, observe::observe))
}

/// Serves the app on `listener` until `shutdown` completes, then finishes requests in flight
/// (see [`net`]). Reconciles the membership index in the background first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
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
    net::serve(listener, state, shutdown).await
}

/// A status for tests and tools: whether a status code is one the API documents.
pub fn documented_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 201
            | 204
            | 304
            | 400
            | 401
            | 403
            | 404
            | 405
            | 408
            | 409
            | 413
            | 414
            | 429
            | 431
            | 500
            | 503
    )
}
