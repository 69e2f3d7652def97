//! AWS Lambda: the same axum app ([`crate::app`]) answering Lambda HTTP events (a function URL
//! or API Gateway HTTP API, payload 2.0; or an application load balancer) through `lambda_http`.
//! The app is a tower service, so this is one adapter, not a second server: every route,
//! limit, error and header is the one the long-running process serves.
//!
//! What differs from [`crate::serve`]:
//!
//! - There is no socket: the client address is the event's source IP (for a function URL behind
//!   CloudFront that is CloudFront; name its ranges in `ZKWIKI_SERVER_TRUSTED_PROXY` so the
//!   `X-Forwarded-For` client counts), handed to the app as `ConnectInfo` like a TCP peer.
//! - Header and body timeouts, connection caps and draining belong to Lambda's front end.
//! - The membership index is not rebuilt at every cold start (that reads every wiki's head, too
//!   slow for a cold start over EFS): once any process has reconciled it against the data
//!   directory, the database says so, and since then every keyring change keeps it
//!   crash-consistent (see [`crate::db`]), so a new instance trusts it at once. A database that
//!   has never been reconciled is reconciled before the first request.
//!
//! `docs/deploy-aws.md` describes the deployment (EFS for the data directory, PostgreSQL for the
//! metadata, CloudFront in front).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::ConnectInfo;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use tower::ServiceExt;

use crate::AppState;

/// The client address an event names, if any.
fn source_ip(req: &lambda_http::Request) -> Option<IpAddr> {
    let text = match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?,
        // A load balancer puts the client in X-Forwarded-For only.
        _ => return None,
    };
    text.parse().ok()
}

/// A Lambda request as the app's request: the body as bytes, the source address as the peer.
pub fn to_app_request(req: lambda_http::Request) -> axum::extract::Request {
    let peer = source_ip(&req).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let (mut parts, body) = req.into_parts();
    parts
        .extensions
        .insert(ConnectInfo(SocketAddr::new(peer, 0)));
    let body = match body {
        lambda_http::Body::Text(t) => axum::body::Body::from(t),
        lambda_http::Body::Binary(b) => axum::body::Body::from(b),
        other => axum::body::Body::from(other.as_ref().to_vec()),
    };
    axum::extract::Request::from_parts(parts, body)
}

/// Makes the membership index usable for this instance: trusted if the database records a
/// complete reconciliation, rebuilt now otherwise.
async fn prepare_index(state: &AppState) -> crate::error::AppResult<()> {
    let t = Instant::now();
    let st = state.clone();
    let trusted = st.blocking(|st| st.trust_recorded_index()).await?;
    if !trusted {
        let st = state.clone();
        let n = tokio::task::spawn_blocking(move || st.reconcile()).await??;
        tracing::info!(
            wikis = n,
            ms = t.elapsed().as_millis() as u64,
            "membership index reconciled"
        );
    }
    Ok(())
}

/// Serves Lambda events with `state` until the runtime stops the process.
pub async fn run(state: AppState) -> Result<(), lambda_http::Error> {
    prepare_index(&state)
        .await
        .map_err(|e| lambda_http::Error::from(format!("preparing the membership index: {e}")))?;
    let app = crate::app(state);
    let service = tower::service_fn(move |req: lambda_http::Request| {
        app.clone().oneshot(to_app_request(req))
    });
    lambda_http::run(service).await
}
