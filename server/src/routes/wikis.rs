//! Wikis: create, list, delete; keyring, head, older states, blobs, pages, commits, history.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use core_crypto::ids::{Digest32, PageId};
use core_crypto::keyring::Keyring;
use core_crypto::state::{Manifest, WikiState};
use data_encoding::BASE64;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Principal, TokenRole, authenticate, require_user};
use crate::error::{AppError, AppResult};
use crate::extract::{ApiPath, ApiQuery, JsonBody, Token};
use crate::repo::{CommitInput, Writer};
use crate::routes::{b64_decode, require_owner, visible, wiki_id};

/// `Cache-Control` of a blob by hash: immutable, never shared between users by a proxy.
const IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// `Cache-Control` of a blob by hash with `public_blobs` (the CDN read path): the same bytes for
/// everyone who names the hash, forever, so a shared cache may keep it.
const PUBLIC_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a page's current envelope: cacheable, but revalidated (ETag) every time.
const REVALIDATE: &str = "private, no-cache";

/// `POST /api/v1/wikis`.
pub(crate) async fn create(
    State(st): State<AppState>,
    Token(token): Token,
    JsonBody(body): JsonBody<client::wire::CreateWikiRequest>,
) -> AppResult<impl IntoResponse> {
    let keyring = b64_decode(&body.keyring, "keyring")?;
    let state = b64_decode(&body.state, "state")?;
    let manifest = b64_decode(&body.manifest, "manifest")?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let user = require_user(&p)?;
        let keyring = Keyring::decode(&keyring)?;
        keyring.verify_genesis()?;
        if keyring.signer != user.ed25519 {
            return Err(AppError::Forbidden(
                "the genesis keyring must be signed with your own key".into(),
            ));
        }
        let state = WikiState::decode(&state)?;
        let parsed = Manifest::decode(&manifest)?;
        if state.seq != 1 || !parsed.pages.is_empty() {
            return Err(AppError::InvalidFormat(
                "a new wiki starts with state 1 and an empty manifest".into(),
            ));
        }
        state.verify(&keyring, &parsed, None)?;
        st.store.create(
            &keyring,
            &state,
            &manifest,
            |k| st.index_new_members(k),
            |head| st.index_members(head),
        )?;
        st.write_identities(keyring.wiki);
        tracing::info!(wiki = %keyring.wiki, "wiki created");
        Ok((
            StatusCode::CREATED,
            Json(json!({ "wiki": keyring.wiki.to_hex() })),
        ))
    })
    .await
}

/// `GET /api/v1/wikis`.
pub(crate) async fn list(
    State(st): State<AppState>,
    Token(token): Token,
) -> AppResult<impl IntoResponse> {
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let user = require_user(&p)?;
        let mut wikis = Vec::new();
        for hex in st.db.wikis_of(&user.ed25519)? {
            let Ok(id) = wiki_id(&hex) else { continue };
            // The index may lag a crash: the keyring in git decides.
            let Ok(head) = st.store.wiki(id).and_then(|w| w.head()) else {
                continue;
            };
            if let Some(m) = head.keyring.member_by_signing_key(&user.ed25519) {
                wikis.push(json!({"wiki": hex, "role": m.role.name(), "seq": head.state.seq}));
            }
        }
        Ok(Json(json!({ "wikis": wikis })))
    })
    .await
}

/// `DELETE /api/v1/wikis/{wiki}`.
pub(crate) async fn delete(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        require_user(&p)?;
        visible(st, &p, id)?;
        st.store.delete(id, |head| {
            // Re-checked under the lock, against the head on disk.
            let user_sees = match &p {
                Principal::User { user, .. } => {
                    head.keyring.member_by_signing_key(&user.ed25519).is_some()
                }
                Principal::Agent { .. } => false,
            };
            if !user_sees {
                return Err(AppError::NotFound("no such wiki (or it is not yours)"));
            }
            require_owner(head, &p)
        })?;
        st.db.delete_wiki(&id.to_hex())?;
        tracing::info!(wiki = %id, "wiki deleted");
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct SinceQuery {
    #[serde(default)]
    since: u64,
}

/// `GET /api/v1/wikis/{wiki}/keyring?since=N`.
pub(crate) async fn keyring(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let (_, head) = visible(st, &p, id)?;
        let skip = usize::try_from(q.since).unwrap_or(usize::MAX);
        let versions: Vec<String> = head
            .keyrings
            .iter()
            .skip(skip)
            .map(|k| BASE64.encode(k))
            .collect();
        Ok(Json(json!({ "versions": versions })))
    })
    .await
}

/// `GET /api/v1/wikis/{wiki}/head`.
pub(crate) async fn head(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
    ApiQuery(q): ApiQuery<HeadQuery>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let (_, head) = visible(st, &p, id)?;
        // No `Cache-Control` here: the API's default, `private, no-store`, keeps the head out of
        // every cache (it moves with every commit; clients ask the server each time).
        Ok(Json(if q.manifest.unwrap_or(1) == 0 {
            head.to_probe_json()
        } else {
            head.to_json()
        }))
    })
    .await
}

/// `?manifest=0` of `GET /head`.
#[derive(Deserialize)]
pub(crate) struct HeadQuery {
    #[serde(default)]
    manifest: Option<u8>,
}

/// `GET /api/v1/wikis/{wiki}/states/{seq}`.
pub(crate) async fn state_at(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath((wiki, seq)): ApiPath<(String, String)>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    let seq: u64 = seq
        .parse()
        .map_err(|_| AppError::bad("a state sequence is a decimal number"))?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let (wiki, head) = visible(st, &p, id)?;
        let (state, manifest) = wiki
            .state_at(&head, seq)?
            .ok_or(AppError::NotFound("no state with this sequence"))?;
        Ok(Json(json!({
            "state": BASE64.encode(&state),
            "manifest": BASE64.encode(&manifest),
        })))
    })
    .await
}

/// `?from=A&to=B` of `GET /states`.
#[derive(Deserialize)]
pub(crate) struct StatesRange {
    from: u64,
    to: u64,
}

/// `GET /api/v1/wikis/{wiki}/states?from=A&to=B`: the states `A ..= B` with their manifests,
/// oldest first, in one answer (at most 256, and fewer when the manifests are large: the client
/// asks again from the next sequence). Clients verify every one as a transition.
pub(crate) async fn states_range(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
    ApiQuery(range): ApiQuery<StatesRange>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    if range.from == 0 || range.from > range.to {
        return Err(AppError::bad("from must be at least 1 and at most to"));
    }
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let (wiki, head) = visible(st, &p, id)?;
        let states: Vec<serde_json::Value> = wiki
            .states_range(&head, range.from, range.to)?
            .into_iter()
            .map(|(state, manifest)| {
                json!({ "state": BASE64.encode(&state), "manifest": BASE64.encode(&manifest) })
            })
            .collect();
        Ok(Json(json!({ "states": states })))
    })
    .await
}

fn etag_matches(headers: &HeaderMap, hash: &Digest32) -> bool {
    let Some(value) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = format!("\"{hash}\"");
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

fn blob_response(
    headers: &HeaderMap,
    hash: &Digest32,
    cache: &'static str,
    body: impl FnOnce() -> AppResult<axum::body::Bytes>,
) -> AppResult<Response> {
    let etag = HeaderValue::from_str(&format!("\"{hash}\"")).map_err(AppError::internal)?;
    let mut resp = if etag_matches(headers, hash) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(body()?));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        r
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(resp)
}

/// `GET /api/v1/wikis/{wiki}/blobs/{sha256}`.
pub(crate) async fn blob(
    State(st): State<AppState>,
    // Read only without `public_blobs`: then even a malformed token changes nothing.
    token: Result<Token, AppError>,
    headers: HeaderMap,
    ApiPath((wiki, hash)): ApiPath<(String, String)>,
) -> AppResult<Response> {
    let id = wiki_id(&wiki)?;
    let hash = Digest32::from_hex(&hash)
        .map_err(|_| AppError::bad("a blob hash is 64 lowercase hex digits (SHA-256)"))?;
    st.blocking(move |st| {
        let no_blob = || AppError::NotFound("no blob with this hash in this wiki");
        let (wiki, head, cache) = if st.cfg.public_blobs {
            // The CDN read path: the hash is the capability. No token is read, so every
            // requester gets the same answer and a shared cache may key it by URL alone; an
            // unknown wiki and an unknown hash answer alike.
            let wiki = st.store.wiki(id).map_err(|_| no_blob())?;
            let head = wiki.head()?;
            (wiki, head, PUBLIC_IMMUTABLE)
        } else {
            let Token(token) = token?;
            let p = authenticate(&st.db, token.as_ref())?;
            let (wiki, head) = visible(st, &p, id)?;
            (wiki, head, IMMUTABLE)
        };
        let oid = wiki.blob_by_hash(&head, &hash)?.ok_or_else(no_blob)?;
        blob_response(&headers, &hash, cache, || wiki.read_blob(&st.store, oid))
    })
    .await
}

/// `GET /api/v1/wikis/{wiki}/pages/{page}`.
pub(crate) async fn page(
    State(st): State<AppState>,
    Token(token): Token,
    headers: HeaderMap,
    ApiPath((wiki, page)): ApiPath<(String, String)>,
) -> AppResult<Response> {
    let id = wiki_id(&wiki)?;
    let page = PageId::from_hex(&page)
        .map_err(|_| AppError::bad("a page id is 32 lowercase hex digits"))?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let (wiki, head) = visible(st, &p, id)?;
        let not_found = || AppError::NotFound("no such page in the current state");
        let entry = head.manifest.pages.get(&page).ok_or_else(not_found)?;
        let oid = *head.pages.get(&page).ok_or_else(not_found)?;
        blob_response(&headers, &entry.hash, REVALIDATE, || {
            wiki.read_blob(&st.store, oid)
        })
    })
    .await
}

/// `POST /api/v1/wikis/{wiki}/commits`.
pub(crate) async fn commit(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
    JsonBody(body): JsonBody<client::wire::CommitRequest>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    let state = b64_decode(&body.state, "state")?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let (wiki, head) = visible(st, &p, id)?;
        let writer = match &p {
            Principal::User { user, .. } => Writer::User(user.ed25519),
            Principal::Agent { role, .. } => {
                if *role != TokenRole::Write {
                    return Err(AppError::Forbidden(
                        "this agent token is read-only: it cannot commit".into(),
                    ));
                }
                Writer::Agent
            }
        };
        // A state at or below the current sequence can never be accepted (sequences only grow):
        // answer 409 at once, without decoding the rest or waiting for the wiki's lock.
        if let Ok(next) = WikiState::decode(&state)
            && next.seq <= head.state.seq
        {
            st.metrics.conflicts.fetch_add(1, Ordering::Relaxed);
            return Err(AppError::Conflict(Some(head.to_json())));
        }
        let input = CommitInput {
            state,
            manifest: b64_decode(&body.manifest, "manifest")?,
            blobs: body
                .blobs
                .iter()
                .enumerate()
                .map(|(i, b)| b64_decode(b, &format!("blobs[{i}]")))
                .collect::<AppResult<_>>()?,
            keyring: body
                .keyring
                .as_deref()
                .map(|k| b64_decode(k, "keyring"))
                .transpose()?,
        };
        let done = wiki
            .commit(
                &st.store,
                input,
                writer,
                |k| st.index_new_members(k),
                |head| st.index_members(head),
            )
            .inspect_err(|e| {
                if matches!(e, AppError::Conflict(_)) {
                    st.metrics.conflicts.fetch_add(1, Ordering::Relaxed);
                }
            })?;
        st.metrics.commits.fetch_add(1, Ordering::Relaxed);
        if done.keyring_changed {
            st.write_identities(id);
        }
        tracing::info!(wiki = %id, seq = done.seq, "commit accepted");
        Ok(Json(
            json!({ "seq": done.seq, "commit": done.commit.to_string() }),
        ))
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    before: Option<u64>,
}

/// `GET /api/v1/wikis/{wiki}/history?page=&limit=&before=`.
pub(crate) async fn history(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(wiki): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> AppResult<impl IntoResponse> {
    let id = wiki_id(&wiki)?;
    let page = q
        .page
        .as_deref()
        .map(PageId::from_hex)
        .transpose()
        .map_err(|_| AppError::bad("a page id is 32 lowercase hex digits"))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let (wiki, head) = visible(st, &p, id)?;
        let entries: Vec<_> = wiki
            .history(&head, page, q.before, limit)?
            .into_iter()
            .map(|e| {
                let mut v = json!({
                    "seq": e.seq,
                    "commit": e.commit.to_string(),
                    "signer": BASE64.encode(&e.signer),
                    "time": e.time,
                    "changed": e.changed.iter().map(|(id, _)| id.to_hex()).collect::<Vec<_>>(),
                    "removed": e.removed.iter().map(PageId::to_hex).collect::<Vec<_>>(),
                    "keyring_changed": e.keyring_changed,
                });
                if let (Some(p), Some(obj)) = (page, v.as_object_mut()) {
                    let hash = e
                        .changed
                        .iter()
                        .find(|(id, _)| *id == p)
                        .map(|(_, h)| h.to_hex());
                    obj.insert("hash".into(), json!(hash));
                }
                v
            })
            .collect();
        Ok(Json(json!({ "entries": entries })))
    })
    .await
}
