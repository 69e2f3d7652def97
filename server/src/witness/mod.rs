//! `zkwiki-server witness`: a small service, run by someone other than a wiki's operator, that
//! co-signs the wikis' heads so a device that has seen nothing cannot be shown an older or forked
//! head unless the server and the witness collude (`docs/threat-model.md`).
//!
//! It has its own Ed25519 key (`DATA/witness/key`, made at first start) and keeps, per wiki whose
//! keyring lists that key, only the latest signed state it accepted and the forks it refused
//! ([`store`]). The rule of what it accepts is `core_crypto::witness::judge_submission`; this
//! module does the I/O: HTTP (`docs/api.md`, "Witness"), the key file, the database, the clock.
//!
//! Connections get the server's header and body timeouts (a slow client cannot hold a
//! connection open), but not its per-address caps: a witness open to the internet belongs
//! behind a reverse proxy that limits connections.

pub mod store;

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use client::wire::{
    CheckpointResponse, EvidenceEntry, EvidenceResponse, WitnessKeyResponse, WitnessSubmitRequest,
    b64,
};
use core_crypto::ids::WikiId;
use core_crypto::witness::{Checkpoint, Verdict, WitnessKey, judge_submission, key_fingerprint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rand_core::OsRng;
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;
use zeroize::Zeroizing;

use crate::config::{DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, MAX_HEAD_BYTES, MAX_HEADERS};
use store::Store;

/// Largest submission body by default: 16 MiB (the keyring chain travels with each one).
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// A running witness's state (cheap to clone).
#[derive(Clone)]
pub struct Witness(Arc<Inner>);

struct Inner {
    key: WitnessKey,
    store: Mutex<Store>,
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("witness").join("key")
}

/// Reads the witness key from `DATA/witness/key` (64 hex digits), making a new one on first
/// start (mode 0600).
fn load_or_make_key(data_dir: &Path) -> Result<WitnessKey, String> {
    let path = key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let seed = Zeroizing::new(
                data_encoding::HEXLOWER
                    .decode(text.trim().as_bytes())
                    .map_err(|_| format!("{}: not 64 hex digits", path.display()))?,
            );
            let seed: &[u8; 32] = seed
                .as_slice()
                .try_into()
                .map_err(|_| format!("{}: not 64 hex digits", path.display()))?;
            Ok(WitnessKey::from_seed(seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = WitnessKey::make(&mut OsRng);
            let text = Zeroizing::new(format!(
                "{}\n",
                data_encoding::HEXLOWER.encode(key.to_seed().as_ref())
            ));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options
                .open(&path)
                .map_err(|e| format!("creating {}: {e}", path.display()))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

impl Witness {
    /// Opens (creating) `DATA/witness/`: the key and the database.
    pub fn open(data_dir: &Path) -> Result<Self, String> {
        let dir = data_dir.join("witness");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let key = load_or_make_key(data_dir)?;
        let store = Store::open(&dir.join("witness.sqlite3"))?;
        Ok(Self(Arc::new(Inner {
            key,
            store: Mutex::new(store),
        })))
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.0.key.public()
    }

    /// The public key's fingerprint.
    pub fn fingerprint(&self) -> String {
        key_fingerprint(&self.public())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

fn internal(detail: &str) -> Response {
    tracing::error!(error = %detail, "witness fault");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the witness failed; its log has the details",
    )
}

/// A malformed request parameter (`400 bad_request`).
struct BadRequest(&'static str);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, "bad_request", self.0)
    }
}

fn wiki_id(text: &str) -> Result<WikiId, BadRequest> {
    WikiId::from_hex(text).map_err(|_| BadRequest("a wiki id is 32 lowercase hex digits"))
}

fn nonce(text: &str) -> Result<[u8; 32], BadRequest> {
    if text.is_empty() {
        return Ok([0; 32]);
    }
    data_encoding::HEXLOWER
        .decode(text.as_bytes())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(BadRequest("a nonce is 64 lowercase hex digits"))
}

/// Runs blocking work (the database, signature checks) off the async threads.
async fn blocking(w: Witness, f: impl FnOnce(&Inner) -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(move || f(&w.0))
        .await
        .unwrap_or_else(|_| internal("a witness task panicked"))
}

async fn key(State(w): State<Witness>) -> Response {
    axum::Json(WitnessKeyResponse {
        key: b64(&w.public()),
        fingerprint: w.fingerprint(),
    })
    .into_response()
}

#[derive(Deserialize)]
struct NonceQuery {
    #[serde(default)]
    nonce: String,
}

fn cosigned(inner: &Inner, checkpoint: &Checkpoint, nonce: &[u8; 32]) -> String {
    b64(inner.key.cosign(checkpoint, nonce, now_ms()).as_bytes())
}

/// `GET /witness/v1/wikis/{wiki}/checkpoint?nonce=HEX`.
async fn checkpoint(
    State(w): State<Witness>,
    UrlPath(wiki): UrlPath<String>,
    Query(q): Query<NonceQuery>,
) -> Response {
    let (wiki, nonce) = match (wiki_id(&wiki), nonce(&q.nonce)) {
        (Ok(w), Ok(n)) => (w, n),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    blocking(w, move |inner| {
        let held = match inner.store.lock() {
            Ok(store) => store.held(&wiki),
            Err(_) => return internal("store lock poisoned"),
        };
        match held {
            Ok(h) => {
                let c = h.map_or_else(|| Checkpoint::empty(wiki), |h| h.checkpoint());
                axum::Json(CheckpointResponse {
                    cosignature: cosigned(inner, &c, &nonce),
                })
                .into_response()
            }
            Err(e) => internal(&e),
        }
    })
    .await
}

fn refusal(
    inner: &Inner,
    code: &str,
    message: &str,
    held: &Checkpoint,
    nonce: &[u8; 32],
    from: Option<u64>,
) -> Response {
    let mut body = json!({
        "error": {"code": code, "message": message},
        "cosignature": cosigned(inner, held, nonce),
    });
    if let Some(from) = from {
        body["from"] = json!(from);
    }
    (StatusCode::CONFLICT, axum::Json(body)).into_response()
}

/// `POST /witness/v1/wikis/{wiki}/checkpoints`.
async fn submit(State(w): State<Witness>, UrlPath(wiki): UrlPath<String>, body: Bytes) -> Response {
    let wiki = match wiki_id(&wiki) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let req: WitnessSubmitRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body is not a submission: {e}"),
            );
        }
    };
    let nonce = match nonce(&req.nonce) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let decode = |items: &[String]| -> Option<Vec<Vec<u8>>> {
        items
            .iter()
            .map(|s| data_encoding::BASE64.decode(s.as_bytes()).ok())
            .collect()
    };
    let (Some(keyring), Some(states)) = (decode(&req.keyring), decode(&req.states)) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "keyring versions and states are base64",
        );
    };
    blocking(w, move |inner| {
        let Ok(mut store) = inner.store.lock() else {
            return internal("store lock poisoned");
        };
        let held = match store.held(&wiki) {
            Ok(h) => h,
            Err(e) => return internal(&e),
        };
        let verdict = match judge_submission(
            &wiki,
            &inner.key.public(),
            held.as_ref(),
            &keyring,
            &states,
        ) {
            Ok(v) => v,
            Err(core_crypto::Error::Unauthorized {
                what: "checkpoint",
                reason,
            }) => return error(StatusCode::FORBIDDEN, "not_a_witness", reason),
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_format", e.to_string()),
        };
        let now = now_ms();
        let held_checkpoint = held
            .as_ref()
            .map_or_else(|| Checkpoint::empty(wiki), |h| h.checkpoint());
        match verdict {
            Verdict::Accept(next) => {
                if held.as_ref() != Some(&next) {
                    if let Err(e) = store.hold(&next, now) {
                        return internal(&e);
                    }
                    tracing::info!(wiki = %wiki, seq = next.state.seq, "checkpoint accepted");
                }
                axum::Json(CheckpointResponse {
                    cosignature: cosigned(inner, &next.checkpoint(), &nonce),
                })
                .into_response()
            }
            Verdict::NeedStates { from } => refusal(
                inner,
                "need_states",
                "send the states from the one after the checkpoint held",
                &held_checkpoint,
                &nonce,
                Some(from),
            ),
            Verdict::Stale => refusal(
                inner,
                "stale",
                "the witness holds a later state of this wiki",
                &held_checkpoint,
                &nonce,
                None,
            ),
            Verdict::Fork { conflicting } => {
                let Some(h) = &held else {
                    return internal("a fork without a held state");
                };
                if let Err(e) = store.keep_evidence(&wiki, &h.state, &conflicting, now) {
                    return internal(&e);
                }
                tracing::warn!(
                    wiki = %wiki,
                    held = h.state.seq,
                    refused = conflicting.seq,
                    "fork refused; both signed states kept as evidence"
                );
                refusal(
                    inner,
                    "fork",
                    "the head does not extend the state the witness holds (a fork); the evidence is kept",
                    &held_checkpoint,
                    &nonce,
                    None,
                )
            }
        }
    })
    .await
}

/// `GET /witness/v1/wikis/{wiki}/evidence`.
async fn evidence(State(w): State<Witness>, UrlPath(wiki): UrlPath<String>) -> Response {
    let wiki = match wiki_id(&wiki) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    blocking(w, move |inner| {
        let found = match inner.store.lock() {
            Ok(store) => store.evidence(&wiki),
            Err(_) => return internal("store lock poisoned"),
        };
        match found {
            Ok(list) => axum::Json(EvidenceResponse {
                evidence: list
                    .into_iter()
                    .map(|e| EvidenceEntry {
                        held: b64(&e.held),
                        refused: b64(&e.refused),
                        time_ms: e.time_ms,
                    })
                    .collect(),
            })
            .into_response(),
            Err(e) => internal(&e),
        }
    })
    .await
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// A browser's preflight before a submission (JSON bodies need one).
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// The witness's routes. Every answer may be read by any web origin: it is public (a
/// co-signature anyone may ask for) and a request carries no credential, so the web app of any
/// zkwiki server can ask a wiki's witnesses itself.
pub fn app(witness: Witness, max_body: usize) -> Router {
    Router::new()
        .route(client::wire::witness_route::KEY, get(key))
        .route("/witness/v1/wikis/{wiki}/checkpoint", get(checkpoint))
        .route(
            "/witness/v1/wikis/{wiki}/checkpoints",
            post(submit).options(preflight),
        )
        .route("/witness/v1/wikis/{wiki}/evidence", get(evidence))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(SetResponseHeaderLayer::overriding(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(witness)
}

/// The router as hyper calls it, one connection at a time, with the body timeout.
#[derive(Clone)]
struct ConnService(Router);

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let req =
            req.map(|b| Body::new(crate::net::body::TimeoutBody::new(b, DEFAULT_BODY_TIMEOUT)));
        let router = self.0.clone();
        Box::pin(async move {
            match router.oneshot(req).await {
                Ok(r) => Ok(r),
                Err(never) => match never {},
            }
        })
    }
}

/// Serves `app` on `listener` until `shutdown` completes (connections still open are dropped:
/// every write is one database transaction, so nothing is half done).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            r = listener.accept() => r,
        };
        let (stream, peer): (_, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = ConnService(app.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(DEFAULT_HEADER_TIMEOUT)
                .max_header_size(MAX_HEAD_BYTES)
                .max_buf_size(2 * MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS)
                .keep_alive(true);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
