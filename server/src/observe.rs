//! What every request passes through first: the client's address (see [`crate::proxy`]), a
//! request id, a tracing span carrying that id (so every log line of the request names it), the
//! JSON error body for any error answer that is not JSON yet, the `X-Request-Id` header, the
//! metrics, and one log line per request (method, route or path without the query, status,
//! time; headers and so tokens never).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use data_encoding::HEXLOWER;
use rand_core::{OsRng, RngCore};
use tracing::Instrument;

use crate::AppState;

tokio::task_local! {
    /// The id of the request being handled by this task.
    static REQUEST_ID: String;
}

/// The request id of the request this task is handling, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A fresh request id: 16 random hex digits.
pub fn new_request_id() -> String {
    let mut b = [0u8; 8];
    OsRng.fill_bytes(&mut b);
    HEXLOWER.encode(&b)
}

/// The client's address as the server decided it (the TCP peer, or the client a trusted proxy
/// names), in request extensions.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// Whether a trusted proxy says the client connected over HTTPS (cookies get `Secure`).
#[derive(Clone, Copy, Debug)]
pub struct ViaHttps(pub bool);

/// A request id a trusted proxy sent is kept if it is 1 to 64 of `[A-Za-z0-9._-]`.
fn acceptable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')))
    .then(|| s.to_owned())
}

/// The stable code of an error status that reached the client without a JSON body (from a
/// layer that is not ours: static files, axum's own rejections).
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "body_timeout",
        409 => "conflict",
        413 => "too_large",
        414 => "uri_too_long",
        416 => "range_not_satisfiable",
        429 => "rate_limited",
        431 => "headers_too_large",
        503 => "busy",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The middleware (outermost layer of the app).
pub async fn observe(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_canonical());
    let proxies = &st.cfg.trusted_proxies;
    let client = peer.map(|p| proxies.client(p, req.headers()));
    if let Some(c) = client {
        req.extensions_mut().insert(ClientAddr(c));
    }
    let from_proxy = peer.is_some_and(|p| proxies.trusts(p));
    let https = peer.is_some_and(|p| proxies.forwarded_https(p, req.headers()));
    req.extensions_mut().insert(ViaHttps(https));
    let id = req
        .headers()
        .get("x-request-id")
        .filter(|_| from_proxy)
        .and_then(acceptable_id)
        .unwrap_or_else(new_request_id);
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", id = %id);
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error()) && !is_json(&resp) {
        let body = serde_json::json!({"error": {
            "code": code_for(status),
            "message": status.canonical_reason().unwrap_or("error"),
            "request_id": id,
        }});
        let headers = std::mem::take(resp.headers_mut());
        resp = (status, axum::Json(body)).into_response();
        for (name, value) in &headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                resp.headers_mut().append(name.clone(), value.clone());
            }
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        st.metrics
            .body_timeouts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let secs = started.elapsed().as_secs_f64();
    st.metrics.record(&route, &method, status.as_u16(), secs);
    let ms = secs * 1000.0;
    let client = client.map(|c| c.to_string()).unwrap_or_default();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(%method, %path, status = status.as_u16(), ms, %client, "request");
        } else {
            tracing::debug!(%method, %path, status = status.as_u16(), ms, %client, "request");
        }
    });
    resp
}
