//! Request extractors whose every rejection is an [`AppError`] (JSON with a stable code), so a
//! malformed path, query or body never gets axum's plain-text answer.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::PresentedToken;
use crate::error::AppError;
use crate::observe::ClientAddr;

/// A JSON body, limited by the router's `DefaultBodyLimit`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(crate::config::DEFAULT_MAX_JSON_BODY, |l| l.0);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(&e, limit))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::bad(format!("malformed JSON body: {e}")))
    }
}

/// The error for a body that could not be read: over the limit (`413`), stopped arriving
/// (`408`), or broken off (`400`).
pub fn body_error(e: &axum::extract::rejection::BytesRejection, limit: usize) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge { limit }
    } else if crate::net::body::is_body_timeout(e) {
        AppError::BodyTimeout
    } else {
        AppError::bad(format!("could not read the request body: {e}"))
    }
}

/// The body limit in force, put in request extensions so rejections can name it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| AppError::bad(format!("malformed path: {e}")))
    }
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| AppError::bad(format!("malformed query: {e}")))
    }
}

/// The token in the `Authorization` header, parsed but not yet checked (`None` if absent).
pub struct Token(pub Option<PresentedToken>);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        PresentedToken::from_headers(&parts.headers).map(Token)
    }
}

/// The client's IP address (the TCP peer, or the client a trusted proxy names), when known.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let resolved = parts.extensions.get::<ClientAddr>().map(|c| c.0);
        Ok(ClientIp(resolved.or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_canonical())
        })))
    }
}
