//! Tokens, principals and the server secret (login throttling is in [`crate::lockout`]).
//!
//! A token is `zks_` (session) or `zka_` (agent) followed by a 32-hex id and a 64-hex secret. Only
//! `SHA-256(label ‖ secret)` is stored. Tokens come from the `Authorization` header only (Bearer,
//! or Basic with the token as password for git), never from a URL, so they cannot reach a log
//! through a request line.

use std::path::Path;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use core_crypto::ids::WikiId;
use core_crypto::kdf::{KdfParams, KdfParams as Kdf};
use data_encoding::{BASE64, HEXLOWER};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::db::{self, Db, TOKEN_HASH_LABEL, User};
use crate::error::{AppError, AppResult};

/// Prefix of session tokens.
pub const SESSION_PREFIX: &str = "zks_";
/// Prefix of agent tokens.
pub const AGENT_PREFIX: &str = "zka_";
const ID_HEX: usize = 32;
const SECRET_HEX: usize = 64;

/// A token as presented, not yet checked against the database.
#[derive(Clone)]
pub struct PresentedToken {
    /// Session or agent.
    pub agent: bool,
    /// The id part (public).
    pub id: String,
    secret_hash: [u8; 32],
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedToken({})", self.id)
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

impl PresentedToken {
    /// Parses the text form; `None` when it is not a well-formed token.
    pub fn parse(text: &str) -> Option<Self> {
        let (agent, rest) = if let Some(r) = text.strip_prefix(SESSION_PREFIX) {
            (false, r)
        } else {
            (true, text.strip_prefix(AGENT_PREFIX)?)
        };
        if rest.len() != ID_HEX + SECRET_HEX || !is_hex(rest) {
            return None;
        }
        let (id, secret) = rest.split_at(ID_HEX);
        Some(Self {
            agent,
            id: id.to_owned(),
            secret_hash: db::hash_secret(TOKEN_HASH_LABEL, secret.as_bytes()),
        })
    }

    /// From `Authorization: Bearer …` or `Authorization: Basic base64(any:token)`.
    pub fn from_headers(headers: &HeaderMap) -> AppResult<Option<Self>> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(None);
        };
        let bad = AppError::Unauthorized("malformed Authorization header or token");
        let value = value.to_str().map_err(|_| bad.clone_unauthorized())?;
        let token = if let Some(t) = value.strip_prefix("Bearer ") {
            t.trim().to_owned()
        } else if let Some(b) = value.strip_prefix("Basic ") {
            let raw = BASE64
                .decode(b.trim().as_bytes())
                .map_err(|_| bad.clone_unauthorized())?;
            let text = String::from_utf8(raw).map_err(|_| bad.clone_unauthorized())?;
            let (_, password) = text.split_once(':').ok_or(bad.clone_unauthorized())?;
            password.to_owned()
        } else {
            return Err(bad);
        };
        Self::parse(&token).map(Some).ok_or(bad)
    }
}

impl AppError {
    fn clone_unauthorized(&self) -> AppError {
        match self {
            AppError::Unauthorized(m) => AppError::Unauthorized(m),
            _ => AppError::Unauthorized("unauthorized"),
        }
    }
}

/// A freshly made token: its text (shown once), id and stored hash.
pub struct NewToken {
    /// The full token text.
    pub text: String,
    /// Its id.
    pub id: String,
    /// What the database keeps.
    pub secret_hash: [u8; 32],
}

/// Makes a random token of the given kind.
pub fn make_token(agent: bool) -> NewToken {
    let mut id = [0u8; ID_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    OsRng.fill_bytes(&mut id);
    OsRng.fill_bytes(&mut secret);
    let id = HEXLOWER.encode(&id);
    let secret = HEXLOWER.encode(&secret);
    let prefix = if agent { AGENT_PREFIX } else { SESSION_PREFIX };
    NewToken {
        text: format!("{prefix}{id}{secret}"),
        secret_hash: db::hash_secret(TOKEN_HASH_LABEL, secret.as_bytes()),
        id,
    }
}

/// What an agent token allows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TokenRole {
    /// Reads only.
    Read,
    /// Reads and commits.
    Write,
}

impl TokenRole {
    /// Parses `read` / `write`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
    /// `read` / `write`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Principal {
    /// A user with a live session.
    User {
        /// The account.
        user: User,
        /// The session id.
        session: String,
    },
    /// An agent token.
    Agent {
        /// Token id.
        id: String,
        /// Its wiki.
        wiki: WikiId,
        /// Its role.
        role: TokenRole,
    },
}

/// Resolves a presented token against the database (`401` if unknown, expired or revoked).
pub fn authenticate(db: &Db, token: Option<&PresentedToken>) -> AppResult<Principal> {
    let token = token.ok_or(AppError::Unauthorized(
        "this route needs a token: Authorization: Bearer <token>",
    ))?;
    let dead = AppError::Unauthorized("unknown, expired or revoked token");
    if token.agent {
        let row = db.agent_token(&token.id, &token.secret_hash)?.ok_or(dead)?;
        let wiki = WikiId::from_hex(&row.wiki).map_err(AppError::internal)?;
        let role = TokenRole::parse(&row.role).ok_or_else(|| AppError::internal("token role"))?;
        Ok(Principal::Agent {
            id: row.id,
            wiki,
            role,
        })
    } else {
        let user = db
            .session_user(&token.id, &token.secret_hash)?
            .ok_or(dead)?;
        Ok(Principal::User {
            user,
            session: token.id.clone(),
        })
    }
}

/// The session user, or `403` for an agent token on a session-only route.
pub fn require_user(p: &Principal) -> AppResult<&User> {
    match p {
        Principal::User { user, .. } => Ok(user),
        Principal::Agent { .. } => Err(AppError::Forbidden(
            "this route needs a user session; agent tokens are limited to their wiki".into(),
        )),
    }
}

/// 32 random bytes kept in `DATA/server-secret` (mode 0600): keys the fake KDF parameters.
pub struct ServerSecret([u8; 32]);

impl ServerSecret {
    /// Loads the secret, creating it on first start.
    pub fn load_or_create(path: &Path) -> AppResult<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let arr = <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| AppError::internal("server-secret is not 32 bytes"))?;
                return Ok(Self(arr));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(&secret)?;
            f.sync_all()?;
        }
        // Another process may have won the race: keep whichever landed first.
        if std::fs::hard_link(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return Self::load_or_create(path);
        }
        let _ = std::fs::remove_file(&tmp);
        crate::durable::sync_file_and_dir(path)?;
        Ok(Self(secret))
    }

    /// Plausible KDF parameters for a name with no account: the default cost and a salt that is
    /// `HMAC-SHA256(secret, "zkwiki/v1/server/fake-salt" ‖ name)[..16]`, the same every time.
    pub fn fake_kdf(&self, user: &str) -> [u8; core_crypto::kdf::ENCODED_LEN] {
        let mut salt = [0u8; 16];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) {
            mac.update(core_crypto::labels::SERVER_FAKE_SALT);
            mac.update(user.as_bytes());
            salt.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        }
        let cost = Kdf::DEFAULT;
        KdfParams {
            m_kib: cost.m_kib,
            t: cost.t,
            p: cost.p,
            salt,
        }
        .encode()
    }

    /// A plausible KMS-wrapped key for a name with no KMS protector under `key_arn`: the ARN the
    /// caller named and `HMAC-SHA256(secret, "zkwiki/v1/server/fake-kms" ‖ name ‖ 0 ‖ ARN ‖ i)`
    /// blocks cut to the length AWS KMS gives a wrapped 32-byte key, the same every time.
    pub fn fake_kms(&self, user: &str, key_arn: &str) -> core_crypto::wrapped::WrappedKey {
        const AWS_BLOB_LEN: usize = 184;
        let mut ciphertext = Vec::with_capacity(AWS_BLOB_LEN.next_multiple_of(32));
        for block in 0..AWS_BLOB_LEN.div_ceil(32) as u8 {
            // HMAC takes a key of any length, so this never fails.
            if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) {
                mac.update(core_crypto::labels::SERVER_FAKE_KMS);
                mac.update(user.as_bytes());
                mac.update(&[0]);
                mac.update(key_arn.as_bytes());
                mac.update(&[block]);
                ciphertext.extend_from_slice(&mac.finalize().into_bytes());
            }
        }
        ciphertext.truncate(AWS_BLOB_LEN);
        core_crypto::wrapped::WrappedKey {
            key_arn: key_arn.to_owned(),
            ciphertext,
        }
    }

    /// The key of device tokens ([`crate::lockout`]): `HMAC(secret, label)`, so the server
    /// secret itself is used for one purpose per label.
    pub fn device_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) {
            mac.update(b"zkwiki/v1/server/device-key");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        key
    }

    /// A dummy stored hash for unknown users, so a failed login costs the same either way.
    pub fn dummy_hash(&self) -> [u8; 32] {
        db::hash_secret(core_crypto::labels::SERVER_DUMMY_HASH, &self.0)
    }
}
