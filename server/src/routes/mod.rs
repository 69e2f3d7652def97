//! The JSON API of `docs/api.md`, and the helpers its handlers share: decoding fields, and
//! deciding what a principal may see of a wiki.

pub(crate) mod accounts;
pub(crate) mod tokens;
pub(crate) mod wikis;

use std::sync::Arc;

use core_crypto::ids::WikiId;
use core_crypto::keyring::Role;
use data_encoding::{BASE64, HEXLOWER};

use crate::Inner;
use crate::auth::{PresentedToken, Principal, authenticate, require_user};
use crate::db::User;
use crate::error::{AppError, AppResult};
use crate::repo::{Head, Wiki};

/// Standard base64 with padding.
pub(crate) fn b64_decode(text: &str, what: &str) -> AppResult<Vec<u8>> {
    BASE64
        .decode(text.as_bytes())
        .map_err(|_| AppError::bad(format!("{what} is not standard base64 with padding")))
}

/// A 32-byte key in base64.
pub(crate) fn b64_key(text: &str, what: &str) -> AppResult<[u8; 32]> {
    <[u8; 32]>::try_from(b64_decode(text, what)?.as_slice())
        .map_err(|_| AppError::bad(format!("{what} must be 32 bytes")))
}

/// 32 bytes as 64 lowercase hex digits.
pub(crate) fn hex32(text: &str, what: &str) -> AppResult<[u8; 32]> {
    let bad = || AppError::bad(format!("{what} must be 64 lowercase hex digits"));
    if text.len() != 64 || !text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    let bytes = HEXLOWER.decode(text.as_bytes()).map_err(|_| bad())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad())
}

/// A wiki id from a path segment.
pub(crate) fn wiki_id(text: &str) -> AppResult<WikiId> {
    WikiId::from_hex(text).map_err(|_| AppError::bad("a wiki id is 32 lowercase hex digits"))
}

/// The wiki and its head, if `p` may see it; `404` otherwise, exactly as for a wiki that does not
/// exist.
///
/// The refusal does the same work whether the wiki exists or not, so its timing does not tell
/// either: an agent token is compared with its own wiki id; a user is looked up in the membership
/// index (one primary-key lookup of the pair, whether the wiki has rows or not), and only a
/// member's request goes on to open the repository, whose keyring then decides. Until the index
/// has been reconciled after a start (it may lag a crash), the repository decides alone.
pub(crate) fn visible(st: &Inner, p: &Principal, id: WikiId) -> AppResult<(Arc<Wiki>, Arc<Head>)> {
    let not_found = AppError::NotFound("no such wiki (or it is not yours)");
    match p {
        Principal::Agent { wiki, .. } if *wiki != id => return Err(not_found),
        Principal::User { user, .. }
            if st.index_ready() && !st.db.is_indexed_member(&id.to_hex(), &user.ed25519)? =>
        {
            return Err(not_found);
        }
        _ => {}
    }
    let wiki = st.store.wiki(id)?;
    let head = wiki.head()?;
    if let Principal::User { user, .. } = p
        && head.keyring.member_by_signing_key(&user.ed25519).is_none()
    {
        return Err(not_found);
    }
    Ok((wiki, head))
}

/// The session user behind `token` if they own wiki `id`: authenticated (`401`), a user and not an
/// agent (`403`), able to see the wiki (`404`), an owner in its current keyring (`403`).
pub(crate) fn owner_session(
    st: &Inner,
    token: Option<&PresentedToken>,
    id: WikiId,
) -> AppResult<User> {
    let p = authenticate(&st.db, token)?;
    let user = require_user(&p)?.clone();
    let (_, head) = visible(st, &p, id)?;
    require_owner(&head, &p)?;
    Ok(user)
}

/// `403` unless `p` is a session user who is an owner in the current keyring.
pub(crate) fn require_owner(head: &Head, p: &Principal) -> AppResult<()> {
    let owner = match p {
        Principal::User { user, .. } => head
            .keyring
            .member_by_signing_key(&user.ed25519)
            .is_some_and(|m| m.role == Role::Owner),
        Principal::Agent { .. } => false,
    };
    if owner {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only an owner of this wiki (with a user session) may do this".into(),
        ))
    }
}
