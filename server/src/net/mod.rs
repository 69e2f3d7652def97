//! The connection layer under the router: accepting, admitting ([`conns`]), timing out and
//! draining connections.
//!
//! - A request's line and headers must arrive within the header timeout (`--header-timeout`,
//!   10 s); the same timeout closes a keep-alive connection that sends no next request. A request
//!   head over 64 KiB or 100 fields is answered `431` (as JSON: [`io`]).
//! - A request body that sends nothing for the body timeout (`--body-timeout`, 20 s) fails
//!   ([`body`]); the handler answers `408 body_timeout` and the connection closes.
//! - Connections are capped per client address and in all ([`conns`]); an accept that fails for
//!   lack of descriptors is retried after a short pause instead of spinning or stopping.
//! - On shutdown the listener closes, idle connections close, and requests in flight get up to
//!   30 s to finish.

pub mod body;
pub mod conns;
pub mod io;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::AppState;
use crate::config::{MAX_HEAD_BYTES, MAX_HEADERS};
use body::{BusyGuard, TimeoutBody, TrackedBody};
use conns::Refusal;

/// How long requests in flight may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(30);
/// How long a new connection waits at the connection cap for idle ones to finish closing.
const ADMIT_PATIENCE: Duration = Duration::from_millis(500);
/// Pause after an accept failed for lack of resources (descriptors, memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The router as hyper calls it, for one connection.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    busy: Arc<AtomicUsize>,
    body_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<TrackedBody<Body>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let guard = BusyGuard::new(self.busy.clone());
        let mut req = req.map(|b| Body::new(TimeoutBody::new(b, self.body_timeout)));
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let resp = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok(resp.map(|b| TrackedBody::new(b, guard)))
        })
    }
}

/// Whether an accept error concerns only the connection being accepted (retry at once).
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// Answers a refused connection with `503` (best effort, without waiting) and closes it.
fn refuse(stream: TcpStream, why: Refusal, peer: SocketAddr) {
    let message = match why {
        Refusal::PerClient => "too many connections from your address; retry shortly",
        Refusal::Full | Refusal::Closing => "the server is at its connection limit; retry shortly",
    };
    let id = crate::observe::new_request_id();
    tracing::debug!(request_id = %id, %peer, reason = why.name(), "connection refused");
    let _ = stream.try_write(&io::canned_response(503, "busy", message, &id));
}

/// Serves `state`'s app on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = crate::app(state.clone());
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if per_connection(&e) => continue,
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "accept failed; retrying (is the descriptor limit too low?)");
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let ip = peer.ip().to_canonical();
        let exempt = state.cfg.trusted_proxies.trusts(ip);
        let admitted = match state
            .conns
            .admit_patiently(ip, exempt, ADMIT_PATIENCE)
            .await
        {
            Ok(a) => a,
            Err(why) => {
                refuse(stream, why, peer);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = ConnService {
            router: router.clone(),
            peer,
            busy: admitted.busy.clone(),
            body_timeout: state.cfg.body_timeout,
        };
        let io = TokioIo::new(io::JsonErrors::new(stream, ip, state.metrics.clone()));
        let header_timeout = state.cfg.header_timeout;
        let mut drain = drain_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(MAX_HEAD_BYTES)
                // Room to hold a whole head of the limit (hyper checks the buffer only between
                // reads); bodies are read in chunks of at most this.
                .max_buf_size(2 * MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS)
                .keep_alive(true);
            let conn = builder.serve_connection(io, svc);
            let mut conn = pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                }
                () = admitted.evict.notified() => {
                    // Chosen because it had no request in flight; one that started since then
                    // is let finish.
                    if admitted.busy.load(Ordering::Acquire) > 0 {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.as_mut().await;
                    }
                }
                () = async { drop(drain.wait_for(|d| *d).await) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            drop(admitted);
            drop(done);
        });
    }
    drop(listener);
    state.begin_drain();
    let _ = drain_tx.send(true);
    drop(done_tx);
    if tokio::time::timeout(DRAIN, done_rx.recv()).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN:?}; stopping anyway");
    }
    Ok(())
}
