//! The one error type of the HTTP layer, and its policy.
//!
//! - Client errors carry a stable `code` and a human message and are answered as they are:
//!   `{"error": {"code", "message"}}` with the status of the table in `docs/api.md`.
//! - Server faults ([`AppError::Internal`]) are logged with their detail and answered with a
//!   generic message, so nothing about the disk, the database or a path leaks to a client.
//! - A `409 conflict` on a commit also carries the current head, so the writer can rebase at once.
//! - Every error body also names the request (`"request_id"`, as in the server's log lines and
//!   the `X-Request-Id` header), so a user's report can be matched with the log.
//! - Messages never contain a token, an auth secret or any other secret: they are built from
//!   static text and public identifiers only.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed JSON, base64, id or field.
    #[error("{0}")]
    BadRequest(String),
    /// A keyring, state, manifest or envelope that does not parse or verify.
    #[error("{0}")]
    InvalidFormat(String),
    /// Missing, malformed, expired or revoked token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Login failed (unknown user and wrong secret look the same).
    #[error("wrong user name or credentials")]
    BadCredentials,
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not yours.
    #[error("{0}")]
    NotFound(&'static str),
    /// The state does not extend the current one; carries the current head (JSON).
    #[error("the state does not extend the current state of the wiki; fetch the head and retry")]
    Conflict(Option<Value>),
    /// Another conflict with a stable code of its own (`name_taken`, …).
    #[error("{message}")]
    ConflictCode {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: &'static str,
    },
    /// Body over the limit.
    #[error("the request body is larger than this server accepts ({limit} bytes)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts; retry in {0} s")]
    RateLimited(u64),
    /// Too many large uploads in flight; retry after this many seconds.
    #[error("the server is busy receiving other large uploads; retry in {0} s")]
    Busy(u64),
    /// The request body stopped arriving (nothing for the body timeout).
    #[error("the request body stopped arriving; send it without long pauses")]
    BodyTimeout,
    /// The server cannot serve requests now (`/readyz`): the reason.
    #[error("not ready: {0}")]
    NotReady(String),
    /// Route exists but not for this method.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// A server fault; the detail goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Results of the HTTP layer.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A server fault from anything displayable (logged, never sent).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// A malformed request.
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidFormat(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::ConflictCode { .. } => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy(_) | Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidFormat(_) => "invalid_format",
            Self::Unauthorized(_) => "unauthorized",
            Self::BadCredentials => "bad_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::ConflictCode { code, .. } => code,
            Self::TooLarge { .. } => "too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::Busy(_) => "busy",
            Self::BodyTimeout => "body_timeout",
            Self::NotReady(_) => "not_ready",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<core_crypto::Error> for AppError {
    /// A core verification failure on something a client sent: an unauthorized signer is
    /// `403 forbidden`, an oversized object `413`, everything else `400 invalid_format`.
    fn from(e: core_crypto::Error) -> Self {
        match e {
            core_crypto::Error::Unauthorized { .. } => Self::Forbidden(e.to_string()),
            core_crypto::Error::TooLarge { limit, .. } => Self::TooLarge { limit },
            other => Self::InvalidFormat(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(format_args!("database: {e}"))
    }
}

impl From<git2::Error> for AppError {
    fn from(e: git2::Error) -> Self {
        Self::internal(format_args!("git: {e}"))
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(format_args!("io: {e}"))
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format_args!("task: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal server error (details are in the server log)".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({"error": {"code": self.code(), "message": message}});
        if let (Some(id), Some(err)) = (
            crate::observe::current_request_id(),
            body.get_mut("error").and_then(Value::as_object_mut),
        ) {
            err.insert("request_id".to_owned(), Value::String(id));
        }
        if let (Self::Conflict(Some(head)), Some(obj)) = (&self, body.as_object_mut()) {
            obj.insert("head".to_owned(), head.clone());
        }
        let mut resp = (status, Json(body)).into_response();
        if matches!(self, Self::BodyTimeout) {
            // The rest of the body may still be on its way: do not read it as the next request.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Self::RateLimited(secs) | Self::Busy(secs) = self
            && let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
