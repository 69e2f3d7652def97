//! The web app: static files from `--web-dir`, or a page saying how to build them. Every
//! response of the server carries the security headers of [`SECURITY_HEADERS`].

use std::path::PathBuf;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::ServeDir;

use crate::AppState;

/// The Content-Security-Policy of `docs/api.md`: no inline script, WASM allowed, nothing from
/// another origin. `blob:` images and frames are the app's own decrypted attachments (object
/// URLs it makes from verified bytes; only raster images and PDF are shown that way).
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                       style-src 'self'; img-src 'self' data: blob:; frame-src blob:; \
                       connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
                       form-action 'self'";

/// Headers set on every response (unless a handler set them).
pub const SECURITY_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

const NOT_BUILT: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>zkwiki</title></head>
<body>
<h1>zkwiki server</h1>
<p>The server is running, but the web app was not built or <code>--web-dir</code> was not given.</p>
<p>Build and serve everything with <code>cargo xtask serve</code>, or build the web app
(<code>cargo xtask test</code> puts it in <code>target/web</code>) and start the server with
<code>zkwiki-server --web-dir target/web</code>.</p>
<p>The API (<code>/api/v1</code>) and <code>git clone</code> (<code>/git/&lt;wiki&gt;.git</code>)
work without it; see <code>docs/api.md</code>.</p>
</body></html>
";

async fn not_built(uri: axum::http::Uri) -> Response {
    if uri.path() == "/" || uri.path() == "/index.html" {
        Html(NOT_BUILT).into_response()
    } else {
        let mut r = (StatusCode::NOT_FOUND, "not found\n").into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

/// The router serving the web app (used as the app's fallback).
pub fn router(web_dir: Option<PathBuf>) -> Router<AppState> {
    match web_dir {
        Some(dir) => Router::new().fallback_service(ServeDir::new(dir)),
        None => Router::new().fallback(not_built),
    }
}
