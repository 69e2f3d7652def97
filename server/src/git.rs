//! Read-only git over smart HTTP: `git http-backend` as a CGI behind the server's own auth.
//!
//! Only `GET /git/<wiki>.git/info/refs?service=git-upload-pack` and
//! `POST /git/<wiki>.git/git-upload-pack` reach git. Any receive-pack (push) is refused here
//! before git runs (http-backend would accept an authenticated push), and every repository also
//! has `http.receivepack = false`. The refusal of `git push`'s first request (the ref
//! advertisement) is written in git's own protocol, an `ERR` packet, so `git push` prints the
//! reason (`fatal: remote error: pushes are refused: …`) instead of a bare HTTP status; it is the
//! same for every path, token or none, so it tells nothing about which wikis exist. Dumb-HTTP paths (`HEAD`, `objects/…`) answer `404`, so no
//! file of a repository is ever served directly. A missing or bad token gets `401` with
//! `WWW-Authenticate: Basic`, so git asks its credential helper; the token is the password.

use std::process::Stdio;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::io::ReaderStream;
use tracing::Instrument;

use crate::AppState;
use crate::auth::{PresentedToken, Principal, authenticate};
use crate::error::AppError;
use crate::routes::visible;

const PUSH_REFUSED: &str = "pushes are refused: zkwiki changes go through the API (zkwiki put, \
                            edit or the web app), where every signed state is verified";

/// An error answer for a git client (a missing or bad token also gets a Basic challenge).
pub(crate) fn refuse(err: AppError) -> Response {
    let unauthorized = matches!(err, AppError::Unauthorized(_));
    let mut resp = err.into_response();
    if unauthorized {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"zkwiki\", charset=\"UTF-8\""),
        );
    }
    resp
}

/// `/git/{repo}/{*rest}`.
pub(crate) async fn handle(State(st): State<AppState>, req: Request) -> Response {
    match serve(st, req).await {
        Ok(r) => r,
        Err(e) => refuse(e),
    }
}

async fn serve(st: AppState, req: Request) -> Result<Response, AppError> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    let not_found = || AppError::NotFound("no such repository (or it is not yours)");

    let rest = path.strip_prefix("/git/").ok_or_else(not_found)?;
    let (repo, rest) = rest.split_once('/').ok_or_else(not_found)?;
    let service_query = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("service="))
        .unwrap_or("");
    if method == Method::GET && rest == "info/refs" && service_query == "git-receive-pack" {
        return Ok(push_refused());
    }
    if rest == "git-receive-pack" || service_query == "git-receive-pack" {
        return Err(AppError::Forbidden(PUSH_REFUSED.into()));
    }
    let allowed = matches!(
        (&method, rest, service_query),
        (&Method::GET, "info/refs", "git-upload-pack") | (&Method::POST, "git-upload-pack", _)
    );
    if !allowed {
        return Err(not_found());
    }
    let id = repo
        .strip_suffix(".git")
        .and_then(|hex| core_crypto::ids::WikiId::from_hex(hex).ok())
        .ok_or_else(not_found)?;

    let token = PresentedToken::from_headers(req.headers())?;
    let remote_user = st
        .blocking(move |st| {
            let p = authenticate(&st.db, token.as_ref())?;
            visible(st, &p, id)?;
            Ok(match p {
                Principal::User { user, .. } => format!("user:{}", user.name),
                Principal::Agent { id, .. } => format!("agent:{id}"),
            })
        })
        .await?;

    let headers = req.headers().clone();
    let remote_addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let limit = st.cfg.max_git_body;
    let body = Bytes::from_request(req, &())
        .await
        .map_err(|e| crate::extract::body_error(&e, limit))?;
    if body.len() > limit {
        return Err(AppError::TooLarge { limit });
    }
    run_backend(
        &st,
        &method,
        &format!("/{id}.git/{rest}"),
        &query,
        &headers,
        &remote_user,
        &remote_addr,
        body,
    )
    .await
}

/// One pkt-line: four hex digits of length (including themselves), then the payload.
fn pkt_line(payload: &str) -> String {
    format!("{:04x}{payload}", payload.len() + 4)
}

/// The answer to `GET …/info/refs?service=git-receive-pack`: a smart-HTTP advertisement that is
/// only an `ERR` packet, which git shows its user as `remote error: <message>`.
fn push_refused() -> Response {
    let body = format!(
        "{}0000{}",
        pkt_line("# service=git-receive-pack\n"),
        pkt_line(&format!("ERR {PUSH_REFUSED}"))
    );
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-git-receive-pack-advertisement"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[allow(clippy::too_many_arguments)]
async fn run_backend(
    st: &AppState,
    method: &Method,
    path_info: &str,
    query: &str,
    headers: &HeaderMap,
    remote_user: &str,
    remote_addr: &str,
    body: Bytes,
) -> Result<Response, AppError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", st.cfg.wikis_dir())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", &st.cfg.data_dir)
        .env("PATH_INFO", path_info)
        .env("REQUEST_METHOD", method.as_str())
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header_str(headers, &header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "HTTP_CONTENT_ENCODING",
            header_str(headers, &header::CONTENT_ENCODING),
        )
        .env(
            "GIT_PROTOCOL",
            header_str(headers, &HeaderName::from_static("git-protocol")),
        )
        .env("REMOTE_USER", remote_user)
        .env("REMOTE_ADDR", remote_addr)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| AppError::internal(format_args!("cannot run git http-backend: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(AppError::internal("git http-backend pipes"));
    };
    tokio::spawn(async move {
        // git may stop reading early (an error); that is not ours to report.
        let _ = stdin.write_all(&body).await;
        let _ = stdin.shutdown().await;
    });
    // In the request's span, so git's own complaints carry the request id too.
    tokio::spawn(
        async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(target: "git-http-backend", "{line}");
            }
            let _ = child.wait().await;
        }
        .instrument(tracing::Span::current()),
    );

    let mut reader = BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut out_headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| AppError::internal(format_args!("reading http-backend: {e}")))?;
        if n == 0 {
            return Err(AppError::internal(
                "git http-backend ended before its headers",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out_headers.append(n, v);
        }
    }
    let mut resp = Response::new(Body::from_stream(ReaderStream::new(reader)));
    *resp.status_mut() = status;
    resp.headers_mut().extend(out_headers);
    Ok(resp)
}
