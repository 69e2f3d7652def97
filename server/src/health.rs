//! Liveness, readiness and metrics.
//!
//! - `GET /healthz` (liveness): the process answers HTTP. Nothing else is checked, so a
//!   supervisor restarts the server only when it is really stuck.
//! - `GET /readyz` (readiness): the server can serve requests now: not shutting down, the
//!   membership index reconciled since start, the database answering, the wikis directory present.
//!   `503 not_ready` with the reason otherwise, so a load balancer sends traffic elsewhere.
//! - `GET /metrics`: the Prometheus text of [`crate::metrics`]. On the public listener only to a
//!   peer on the loopback interface that sent no forwarding header (a reverse proxy on the same
//!   host adds one, so `/metrics` is not published through it); anyone else gets `404` as for
//!   any unknown path. `--metrics-listen` serves it on a separate, private address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::metrics::Gauges;

/// `GET /healthz`.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Why the server is not ready, if it is not.
async fn not_ready(st: &AppState) -> Option<String> {
    if st.draining() {
        return Some("shutting down".into());
    }
    if !st.index_ready() {
        return Some("reconciling the membership index with the repositories".into());
    }
    if !st.cfg.wikis_dir().is_dir() {
        return Some("the wikis directory is missing".into());
    }
    let db = st.blocking(|st| st.db.ping()).await;
    if let Err(e) = db {
        tracing::warn!(error = %e, "readiness: the database does not answer");
        return Some("the database does not answer".into());
    }
    None
}

/// `GET /readyz`.
pub async fn readyz(State(st): State<AppState>) -> AppResult<impl IntoResponse> {
    match not_ready(&st).await {
        None => Ok(axum::Json(serde_json::json!({"status": "ready"}))),
        Some(why) => Err(AppError::NotReady(why)),
    }
}

fn free_bytes(st: &AppState) -> Option<u64> {
    let s = rustix::fs::statvfs(&st.cfg.data_dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

async fn render(st: &AppState) -> Response {
    let gauges = Gauges {
        budget_in_use: st.budget.in_use_bytes(),
        budget_total: st.budget.total_bytes(),
        open_connections: st.conns.open(),
        max_connections: st.conns.max(),
        refused: st.conns.refused(),
        data_free_bytes: free_bytes(st),
        ready: not_ready(st).await.is_none(),
        start_time: st.started_at(),
    };
    let mut resp = st.metrics.render(&gauges).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /metrics` on the operator's port.
pub async fn metrics(State(st): State<AppState>) -> Response {
    render(&st).await
}

/// Whether the public listener shows `/metrics` to this request: a loopback peer that sent no
/// forwarding header.
pub fn metrics_allowed(peer: IpAddr, headers: &HeaderMap) -> bool {
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    peer.to_canonical().is_loopback() && !forwarded
}

/// `GET /metrics` on the public listener: see [`metrics_allowed`].
pub async fn metrics_local(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !metrics_allowed(peer.ip(), &headers) {
        return AppError::NotFound("not found").into_response();
    }
    render(&st).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_only_for_local_direct_peers() {
        let none = HeaderMap::new();
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert!(ip("127.0.0.1").is_some_and(|p| metrics_allowed(p, &none)));
        assert!(ip("::1").is_some_and(|p| metrics_allowed(p, &none)));
        assert!(ip("::ffff:127.0.0.1").is_some_and(|p| metrics_allowed(p, &none)));
        assert!(ip("127.0.0.1").is_some_and(|p| !metrics_allowed(p, &proxied)));
        assert!(ip("192.0.2.1").is_some_and(|p| !metrics_allowed(p, &none)));
        assert!(ip("10.0.0.1").is_some_and(|p| !metrics_allowed(p, &none)));
    }
}
