//! Agent tokens: create, list, revoke (session, owner of the wiki).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use core_crypto::identity::check_name;
use serde_json::json;

use crate::AppState;
use crate::auth::{TokenRole, make_token};
use crate::db::now_unix;
use crate::error::{AppError, AppResult};
use crate::extract::{ApiPath, JsonBody, Token};
use crate::routes::{owner_session, wiki_id};

/// Longest token lifetime: one year.
pub const MAX_EXPIRES_IN: u64 = 365 * 24 * 3600;

/// `POST /api/v1/wikis/{wiki}/tokens`.
pub(crate) async fn create(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
    JsonBody(body): JsonBody<client::wire::NewTokenRequest>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    check_name(&body.name).map_err(|e| AppError::bad(format!("token name: {e}")))?;
    let role = TokenRole::parse(&body.role).ok_or(AppError::bad("role is read or write"))?;
    if body.expires_in == 0 || body.expires_in > MAX_EXPIRES_IN {
        return Err(AppError::bad(
            "expires_in is required: 1 second to 1 year (31536000)",
        ));
    }
    st.blocking(move |st| {
        let user = owner_session(st, token.as_ref(), id)?;
        let new = make_token(true);
        let expires_at = now_unix() + body.expires_in as i64;
        st.db.create_agent_token(
            &new.id,
            &id.to_hex(),
            &body.name,
            role.name(),
            &new.secret_hash,
            &user.name,
            expires_at,
        )?;
        tracing::info!(wiki = %id, token = %new.id, role = role.name(), "agent token created");
        Ok((
            StatusCode::CREATED,
            Json(json!({ "id": new.id, "token": new.text, "expires_at": expires_at })),
        ))
    })
    .await
}

/// `GET /api/v1/wikis/{wiki}/tokens`.
pub(crate) async fn list(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    st.blocking(move |st| {
        owner_session(st, token.as_ref(), id)?;
        let tokens: Vec<_> = st
            .db
            .list_agent_tokens(&id.to_hex())?
            .into_iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "name": t.name,
                    "role": t.role,
                    "expires_at": t.expires_at,
                    "revoked": t.revoked,
                })
            })
            .collect();
        Ok(Json(json!({ "tokens": tokens })))
    })
    .await
}

/// `DELETE /api/v1/wikis/{wiki}/tokens/{id}`.
pub(crate) async fn revoke(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath((wiki, token_id)): ApiPath<(String, String)>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    if token_id.len() != 32
        || !token_id
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(AppError::bad("a token id is 32 lowercase hex digits"));
    }
    st.blocking(move |st| {
        owner_session(st, token.as_ref(), id)?;
        if !st.db.revoke_agent_token(&id.to_hex(), &token_id)? {
            return Err(AppError::NotFound("no such token"));
        }
        tracing::info!(wiki = %id, token = %token_id, "agent token revoked");
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
