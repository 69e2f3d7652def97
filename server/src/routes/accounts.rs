//! Accounts and sessions: prelogin, register, login, logout, protectors, public-key lookup.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use core_crypto::identity::{PublicIdentity, UserIdentity, check_name};
use core_crypto::kdf::KdfParams;
use core_crypto::protector::ProtectorKind;
use core_crypto::wrapped::{WrappedKey, check_key_arn};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Principal, authenticate, make_token, require_user};
use crate::db::{AUTH_HASH_LABEL, NewAccount, ct_eq, hash_secret, now_unix};
use crate::error::{AppError, AppResult};
use crate::extract::{ApiPath, ClientIp, JsonBody, Token};
use crate::lockout::DEVICE_TTL_SECS;
use crate::observe::ViaHttps;
use crate::routes::{b64_decode, b64_key, hex32};

/// Largest sealed identity accepted (they are about 100 bytes).
const MAX_SEALED: usize = 4096;
/// Largest KMS-wrapped protector key (`docs/kms.md`).
const MAX_KMS_WRAPPED: usize = 4096;

fn checked_name(user: &str) -> AppResult<()> {
    check_name(user).map_err(|e| AppError::bad(format!("user name: {e}")))
}

fn sealed_identity(text: &str, kind: ProtectorKind) -> AppResult<Vec<u8>> {
    let bytes = b64_decode(text, "sealed_identity")?;
    if bytes.len() > MAX_SEALED {
        return Err(AppError::bad("sealed_identity is too large"));
    }
    let found = UserIdentity::sealed_kind(&bytes)
        .map_err(|e| AppError::bad(format!("sealed_identity: {e}")))?;
    if found != kind {
        return Err(AppError::bad(format!(
            "sealed_identity was sealed by the {} protector, not {}",
            found.name(),
            kind.name()
        )));
    }
    Ok(bytes)
}

fn kdf_bytes(text: &str) -> AppResult<Vec<u8>> {
    let bytes = b64_decode(text, "kdf")?;
    KdfParams::decode(&bytes).map_err(|e| AppError::bad(format!("kdf: {e}")))?;
    Ok(bytes)
}

#[derive(Deserialize)]
pub(crate) struct PreloginBody {
    user: String,
    #[serde(default)]
    protector: Option<String>,
    #[serde(default)]
    kms_key: Option<String>,
}

/// `POST /api/v1/prelogin`: what a client needs before it can derive its auth secret. The
/// passphrase protector's KDF parameters, or, for `"protector": "kms"`, the KMS-wrapped key under
/// the key ARN the client names. Names without that protector get a deterministic fake of the same
/// shape, so the answer does not tell who has an account (or a KMS protector under that key).
pub(crate) async fn prelogin(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<PreloginBody>,
) -> AppResult<impl IntoResponse> {
    checked_name(&body.user)?;
    let kind = everyday_protector(body.protector.as_deref())?;
    let kms_key = match (kind, body.kms_key) {
        (ProtectorKind::Kms, Some(arn)) => {
            check_key_arn(&arn).map_err(|e| AppError::bad(format!("kms_key: {e}")))?;
            Some(arn)
        }
        (ProtectorKind::Kms, None) => {
            return Err(AppError::bad("a KMS prelogin names the key ARN in kms_key"));
        }
        (_, Some(_)) => return Err(AppError::bad("kms_key goes with \"protector\": \"kms\"")),
        (_, None) => None,
    };
    st.blocking(move |st| {
        let stored = st
            .db
            .protector(&body.user, kind.name())?
            .and_then(|p| p.kdf);
        let b64 = data_encoding::BASE64;
        let Some(arn) = kms_key else {
            let kdf = stored.unwrap_or_else(|| st.secret.fake_kdf(&body.user).to_vec());
            return Ok(Json(json!({ "kdf": b64.encode(&kdf) })));
        };
        let real = stored.filter(|s| WrappedKey::decode(s).is_ok_and(|w| w.key_arn == arn));
        let wrapped = match real {
            Some(s) => s,
            None => st
                .secret
                .fake_kms(&body.user, &arn)
                .encode()
                .map_err(|e| AppError::bad(format!("kms_key: {e}")))?,
        };
        Ok(Json(json!({ "kms": b64.encode(&wrapped) })))
    })
    .await
}

/// The protector a prelogin or a registration is about: `passphrase` (the default) or `kms`; a
/// recovery key needs no prelogin and is registered beside the everyday protector.
fn everyday_protector(name: Option<&str>) -> AppResult<ProtectorKind> {
    match name.map(ProtectorKind::from_name) {
        None => Ok(ProtectorKind::Passphrase),
        Some(Ok(k @ (ProtectorKind::Passphrase | ProtectorKind::Kms))) => Ok(k),
        Some(_) => Err(AppError::bad("protector is passphrase or kms here")),
    }
}

/// The public stored form a protector keeps on the server: checked KDF parameters for a
/// passphrase, the KMS-wrapped key (parsed, bounded; opaque otherwise) for KMS, nothing for a
/// recovery key.
fn stored_form(kind: ProtectorKind, given: Option<&str>) -> AppResult<Option<Vec<u8>>> {
    match (kind, given) {
        (ProtectorKind::Passphrase, Some(k)) => Ok(Some(kdf_bytes(k)?)),
        (ProtectorKind::Passphrase, None) => {
            Err(AppError::bad("the passphrase protector needs kdf"))
        }
        (ProtectorKind::Kms, Some(k)) => {
            let wrapped = b64_decode(k, "kdf")?;
            if wrapped.len() > MAX_KMS_WRAPPED {
                return Err(AppError::bad("kdf (the KMS-wrapped key) is at most 4 KiB"));
            }
            WrappedKey::decode(&wrapped).map_err(|e| AppError::bad(format!("kdf: {e}")))?;
            Ok(Some(wrapped))
        }
        (ProtectorKind::Kms, None) => Err(AppError::bad(
            "the KMS protector needs kdf (the KMS-wrapped key)",
        )),
        (ProtectorKind::Recovery, Some(_)) => {
            Err(AppError::bad("the recovery protector has no kdf"))
        }
        (ProtectorKind::Recovery, None) => Ok(None),
    }
}

#[derive(Deserialize)]
pub(crate) struct RecoveryBody {
    auth: String,
    sealed_identity: String,
}

#[derive(Deserialize)]
pub(crate) struct RegisterBody {
    user: String,
    x25519: String,
    ed25519: String,
    /// `passphrase` (the default) or `kms`: the protector `kdf`, `auth` and `sealed_identity`
    /// belong to.
    #[serde(default)]
    protector: Option<String>,
    kdf: String,
    auth: String,
    sealed_identity: String,
    recovery: RecoveryBody,
    /// Ed25519 signature proving the client holds the signing key it registers.
    proof: String,
}

/// `POST /api/v1/register`.
pub(crate) async fn register(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<RegisterBody>,
) -> AppResult<impl IntoResponse> {
    checked_name(&body.user)?;
    let x25519 = b64_key(&body.x25519, "x25519")?;
    let ed25519 = b64_key(&body.ed25519, "ed25519")?;
    PublicIdentity { x25519, ed25519 }
        .verify_registration_proof(&body.user, &b64_decode(&body.proof, "proof")?)
        .map_err(|e| AppError::bad(format!("proof: {e}: sign the name and both keys")))?;
    let kind = everyday_protector(body.protector.as_deref())?;
    let kdf = stored_form(kind, Some(&body.kdf))?;
    let auth = hex32(&body.auth, "auth")?;
    let sealed = sealed_identity(&body.sealed_identity, kind)?;
    let rec_auth = hex32(&body.recovery.auth, "recovery.auth")?;
    let rec_sealed = sealed_identity(&body.recovery.sealed_identity, ProtectorKind::Recovery)?;
    st.blocking(move |st| {
        st.limiter
            .register(&st.db, ip)
            .inspect_err(|_| st.count_limited())?;
        st.db.register(&NewAccount {
            name: &body.user,
            x25519,
            ed25519,
            protectors: vec![
                (
                    kind.name(),
                    hash_secret(AUTH_HASH_LABEL, &auth),
                    sealed,
                    kdf,
                ),
                (
                    ProtectorKind::Recovery.name(),
                    hash_secret(AUTH_HASH_LABEL, &rec_auth),
                    rec_sealed,
                    None,
                ),
            ],
        })?;
        tracing::info!(user = %body.user, "account registered");
        Ok((StatusCode::CREATED, Json(json!({ "user": body.user }))))
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    user: String,
    protector: String,
    auth: String,
    /// The device token a previous login of this user on this device returned (clients other
    /// than the browser, which sends it as a cookie).
    #[serde(default)]
    device: Option<String>,
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `POST /api/v1/login`. Throttled as `lockout.rs` says; a successful login returns a device
/// token (`device`, and a cookie for the browser) that exempts this device from the per-name
/// limit next time.
pub(crate) async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    via: Option<axum::Extension<ViaHttps>>,
    JsonBody(body): JsonBody<LoginBody>,
) -> AppResult<Response> {
    checked_name(&body.user)?;
    let kind = ProtectorKind::from_name(&body.protector)
        .map_err(|_| AppError::bad("protector is passphrase, recovery or kms"))?;
    let auth = hex32(&body.auth, "auth")?;
    let cookie_name = st.devices.cookie_name(&body.user);
    let presented = body
        .device
        .as_deref()
        .or_else(|| cookie(&headers, &cookie_name))
        .map(str::to_owned);
    let device = presented
        .as_deref()
        .and_then(|t| st.devices.check(&body.user, t));
    let user_name = body.user.clone();
    let known_device = device.is_some();
    let outcome = st
        .blocking(move |st| {
            let attempt = st
                .limiter
                .login(&st.db, &body.user, ip, device.as_ref())
                .inspect_err(|_| st.count_limited())?;
            let presented = hash_secret(AUTH_HASH_LABEL, &auth);
            // The same two lookups whether or not the account exists.
            let user = st.db.user(&body.user)?;
            let protector = st.db.protector(&body.user, kind.name())?;
            // Compare against something either way, so both failures take the same path.
            let stored = protector
                .as_ref()
                .map_or(st.secret.dummy_hash().to_vec(), |p| p.auth_hash.clone());
            let ok = ct_eq(&stored, &presented);
            let (Some(user), Some(protector), true) = (user, protector, ok) else {
                tracing::info!(user = %body.user, "login failed");
                return Err(AppError::BadCredentials);
            };
            if let Err(e) = st.limiter.succeeded(&st.db, attempt) {
                // The login stands; only the refund of its attempt is lost.
                tracing::warn!(error = %e, "login attempt not given back");
            }
            let token = make_token(false);
            let expires_at = now_unix() + st.cfg.session_ttl.as_secs() as i64;
            st.db
                .create_session(&token.id, &user.name, &token.secret_hash, expires_at)?;
            tracing::info!(user = %user.name, session = %token.id, "login");
            let b64 = data_encoding::BASE64;
            Ok(json!({
                "token": token.text,
                "expires_at": expires_at,
                "sealed_identity": b64.encode(&protector.sealed),
                "kdf": protector.kdf.as_ref().map(|k| b64.encode(k)),
                "x25519": b64.encode(&user.x25519),
                "ed25519": b64.encode(&user.ed25519),
            }))
        })
        .await;
    let mut answer = match outcome {
        Ok(v) => v,
        Err(e) => {
            if matches!(e, AppError::BadCredentials) {
                st.metrics.logins_failed.fetch_add(1, Ordering::Relaxed);
            }
            return Err(e);
        }
    };
    st.metrics.logins_ok.fetch_add(1, Ordering::Relaxed);
    // A known device keeps its token; a new one gets one.
    let device_token = match (known_device, presented) {
        (true, Some(t)) => t,
        _ => st.devices.issue(&user_name),
    };
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("device".into(), json!(device_token));
    }
    let secure = if via.is_some_and(|v| v.0.0) {
        "; Secure"
    } else {
        ""
    };
    let set_cookie = format!(
        "{cookie_name}={device_token}; Path=/api/v1/login; Max-Age={DEVICE_TTL_SECS}; HttpOnly; \
         SameSite=Strict{secure}"
    );
    let mut resp = Json(answer).into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /api/v1/logout`.
pub(crate) async fn logout(
    State(st): State<AppState>,
    Token(token): Token,
) -> AppResult<impl IntoResponse> {
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let Principal::User { session, .. } = p else {
            return Err(AppError::Forbidden(
                "agent tokens are revoked by an owner, not logged out".into(),
            ));
        };
        st.db.delete_session(&session)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct ProtectorBody {
    auth: String,
    sealed_identity: String,
    #[serde(default)]
    kdf: Option<String>,
}

/// `PUT /api/v1/account/protectors/{protector}`.
pub(crate) async fn put_protector(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(protector): ApiPath<String>,
    JsonBody(body): JsonBody<ProtectorBody>,
) -> AppResult<impl IntoResponse> {
    let kind = ProtectorKind::from_name(&protector)
        .map_err(|_| AppError::bad("protector is passphrase, recovery or kms"))?;
    let auth = hex32(&body.auth, "auth")?;
    let sealed = sealed_identity(&body.sealed_identity, kind)?;
    let kdf = stored_form(kind, body.kdf.as_deref())?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        let user = require_user(&p)?;
        st.db.put_protector(
            &user.name,
            kind.name(),
            &hash_secret(AUTH_HASH_LABEL, &auth),
            &sealed,
            kdf.as_deref(),
        )?;
        tracing::info!(user = %user.name, protector = kind.name(), "protector replaced");
        for wiki in st.db.wikis_of(&user.ed25519)? {
            if let Ok(id) = core_crypto::ids::WikiId::from_hex(&wiki) {
                st.write_identities(id);
            }
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `GET /api/v1/users/{user}`.
pub(crate) async fn get_user(
    State(st): State<AppState>,
    Token(token): Token,
    ApiPath(name): ApiPath<String>,
) -> AppResult<impl IntoResponse> {
    checked_name(&name)?;
    st.blocking(move |st| {
        let p = authenticate(&st.db, token.as_ref())?;
        require_user(&p)?;
        let user = st
            .db
            .user(&name)?
            .ok_or(AppError::NotFound("no such user"))?;
        let b64 = data_encoding::BASE64;
        Ok(Json(json!({
            "user": user.name,
            "x25519": b64.encode(&user.x25519),
            "ed25519": b64.encode(&user.ed25519),
        })))
    })
    .await
}
