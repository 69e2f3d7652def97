//! `zkwiki mcp --http ADDR`: the MCP server over streamable HTTP (rmcp's
//! `transport-streamable-http-server`), for MCP clients that speak only HTTP.
//!
//! One endpoint, `POST /mcp`: a JSON-RPC message in, its answer out as `application/json`
//! (stateless: no `Mcp-Session-Id`, no server-sent events; every tool answers with one message,
//! and the verified wiki session behind the tools is shared by all requests). `GET` answers
//! `405`, as the specification allows a server without a stream of its own.
//!
//! Every request must carry `Authorization: Bearer TOKEN`; anything else gets `401` before the
//! MCP layer sees it. The token is compared in constant time (as SHA-256 digests, so neither its
//! bytes nor its length leak through timing) and is not kept in memory after start. The server
//! listens on loopback unless told otherwise, and then also checks the `Host` header (against
//! DNS rebinding from a browser on this machine).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use core_crypto::ids::Digest32;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{WikiMcp, WikiTools, runtime};

/// The path of the MCP endpoint.
pub const ENDPOINT: &str = "/mcp";

/// The shortest bearer token accepted from a file.
pub const MIN_TOKEN_LEN: usize = 16;

/// Whether `headers` carry `Authorization: Bearer TOKEN` for the token with this digest.
fn authorized(headers: &axum::http::HeaderMap, expected: &Digest32) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let presented = Digest32::of(token.trim().as_bytes());
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

async fn require_bearer(
    State(expected): State<Arc<Digest32>>,
    request: Request,
    next: Next,
) -> Response {
    if authorized(request.headers(), &expected) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "unauthorized: send the token `zkwiki mcp --http` printed (or read from --http-token-file) as `Authorization: Bearer TOKEN`"
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"zkwiki-mcp\""),
    );
    // The request body is not read: say the connection ends here, so that a client does not
    // send its next request on a connection the server then drops.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves MCP over HTTP on `addr` until interrupted; `token` is what clients must present.
/// `on_listen` is told the bound address (for port 0) and the token before the first request
/// is served; the token is dropped (zeroized) then, only its digest kept.
pub fn serve_http(
    tools: Arc<dyn WikiTools>,
    wiki: &str,
    description: &str,
    addr: SocketAddr,
    token: Zeroizing<String>,
    on_listen: impl FnOnce(SocketAddr, &str),
) -> std::io::Result<()> {
    let expected = Arc::new(Digest32::of(token.as_bytes()));
    let server = WikiMcp::new(tools, wiki, description);
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_sse_retry(None);
    if !addr.ip().is_loopback() {
        // Reached by other names than localhost: the bearer token is the guard.
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let app = axum::Router::new()
        .route_service(ENDPOINT, service)
        .layer(middleware::from_fn_with_state(expected, require_bearer));
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        on_listen(listener.local_addr()?, token.as_str());
        drop(token);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        let expected = Digest32::of(b"s3cret-token-0123456789");
        assert!(authorized(
            &headers(Some("Bearer s3cret-token-0123456789")),
            &expected
        ));
        assert!(authorized(
            &headers(Some("bearer  s3cret-token-0123456789 ")),
            &expected
        ));
        for bad in [
            None,
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer s3cret-token-012345678"),
            Some("Bearer s3cret-token-01234567890"),
            Some("Basic s3cret-token-0123456789"),
            Some("s3cret-token-0123456789"),
        ] {
            assert!(!authorized(&headers(bad), &expected), "{bad:?}");
        }
    }
}
