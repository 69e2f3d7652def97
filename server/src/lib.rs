//! `zkwiki-server`: stores and serves only ciphertext.
//!
//! Each wiki is a bare git repository under `DATA/wikis/` holding the keyring chain, the signed
//! state, the manifest and page envelopes; accounts, sessions and agent tokens live in SQLite
//! (`DATA/zkwiki.sqlite3`), secrets only as hashes. The server verifies every keyring, state and
//! envelope it accepts with `core-crypto` (a first line of defence: clients verify everything
//! again) and never decrypts anything. `docs/api.md` is the contract.
//!
//! Modules: [`config`], [`error`] (the error policy), [`db`], [`auth`] (tokens, rate limits, the
//! server secret), [`durable`] (locks and flush barriers), [`repo`] (git storage with
//! compare-and-swap commits), the routes, [`git`] (read-only smart HTTP) and [`web`].
//! [`app`] builds the router; [`serve`] runs it on a listener until a shutdown signal.

pub mod auth;
pub mod budget;
pub mod config;
pub mod db;
pub mod durable;
pub mod error;
pub mod extract;
pub mod git;
pub mod identities;
pub mod quarantine;
pub mod repo;
mod routes;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::{RateLimiter, ServerSecret};
use crate::budget::BodyBudget;
use crate::config::Config;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::extract::BodyLimit;
use crate::repo::{Head, Store};

/// Everything a request handler can reach.
pub struct Inner {
    /// The configuration.
    pub cfg: Config,
    /// Accounts, sessions, tokens, membership index.
    pub db: Db,
    /// The wikis.
    pub store: Store,
    /// Login rate limits.
    pub limiter: RateLimiter,
    /// The server secret (fake KDF parameters).
    pub secret: ServerSecret,
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

impl AppState {
    /// Opens the data directory (creating it), the database and the store; logs each phase's time.
    pub fn open(cfg: Config) -> AppResult<Self> {
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
        let db = Db::open(&cfg.data_dir.join("zkwiki.sqlite3"))?;
        phase("database", t);
        let t = Instant::now();
        let store = Store::open(cfg.wikis_dir(), cfg.locks_dir(), cfg.fsync)?;
        phase("store", t);
        let limiter = RateLimiter::new(
            cfg.login_burst_per_user,
            cfg.login_burst_per_ip,
            cfg.login_refill,
        );
        Ok(Self(Arc::new(Inner {
            cfg,
            db,
            store,
            limiter,
            secret,
        })))
    }

    /// Runs blocking work (database, git, flushes) off the async threads.
    pub(crate) async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> AppResult<R> + Send + 'static,
    ) -> AppResult<R> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await?
    }

    /// Rebuilds the membership index from the repositories (after a crash it may lag) and clears
    /// leftovers of interrupted deletions. Returns the number of wikis seen.
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
        Ok(ids.len())
    }
}

impl Inner {
    /// Rewrites a wiki's membership index from its current keyring (errors are logged: the
    /// index is a cache, reconciled at start-up).
    pub(crate) fn index_members(&self, head: &Head) {
        let members: Vec<([u8; 32], &'static str)> = head
            .keyring
            .members
            .iter()
            .map(|m| (m.public.ed25519, m.role.name()))
            .collect();
        if let Err(e) = self.db.set_members(&head.keyring.wiki.to_hex(), &members) {
            tracing::error!(wiki = %head.keyring.wiki, error = %e, "membership index not updated");
        }
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn api_not_found() -> AppError {
    AppError::NotFound("no such API route")
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// Logs each request (method, path without query, status, time) at debug level; headers (and
/// so tokens) are never logged.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), ms, "request");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), ms, "request");
    }
    resp
}

/// The whole HTTP app.
pub fn app(state: AppState) -> Router {
    use routes::{accounts, tokens, wikis};
    let json_limit = state.cfg.max_json_body;
    let git_limit = state.cfg.max_git_body;
    let budget = BodyBudget::new(state.cfg.max_body_memory, state.cfg.body_wait);
    let api = Router::new()
        .route("/prelogin", post(accounts::prelogin))
        .route("/register", post(accounts::register))
        .route("/login", post(accounts::login))
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
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(json_limit))
        .layer(axum::Extension(BodyLimit(json_limit)))
        .layer(middleware::from_fn_with_state(
            (budget.clone(), json_limit as u64),
            budget::hold,
        ));
    let git = Router::new()
        .route("/git/{*rest}", any(git::handle))
        .layer(DefaultBodyLimit::max(git_limit))
        .layer(middleware::from_fn_with_state(
            (budget, git_limit as u64),
            budget::hold,
        ));
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .merge(git)
        .merge(web::router(state.cfg.web_dir.clone()))
        .with_state(state);
    for (name, value) in web::SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(middleware::from_fn(log_request))
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// A status for tests and tools: whether a status code is one the API documents.
pub fn documented_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 201 | 204 | 304 | 400 | 401 | 403 | 404 | 405 | 409 | 413 | 429 | 500
    )
}
