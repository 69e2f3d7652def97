//! The JSON bodies of `docs/api.md` that carry key material or signed data. JavaScript sends and
//! receives them unchanged; Rust builds and reads them, so base64 and field names live here once.

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// Standard base64 with padding (RFC 4648 §4), as the API uses.
pub fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

/// Decodes API base64; `what` names the field in the error.
pub fn unb64(text: &str, what: &str) -> AppResult<Vec<u8>> {
    data_encoding::BASE64
        .decode(text.as_bytes())
        .map_err(|_| AppError::protocol(&format!("{what} is not base64")))
}

/// Parses a JSON body.
pub fn parse<'a, T: Deserialize<'a>>(json: &'a str, what: &str) -> AppResult<T> {
    serde_json::from_str(json).map_err(|_| AppError::protocol(what))
}

/// Serializes a body (cannot fail for these types; an empty object if it somehow does).
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// `POST /api/v1/prelogin` answer.
#[derive(Deserialize)]
pub struct PreloginResponse {
    /// KDF parameters (29 bytes).
    pub kdf: String,
}

/// `POST /api/v1/login` body.
#[derive(Serialize)]
pub struct LoginRequest<'a> {
    /// User name.
    pub user: &'a str,
    /// `passphrase` or `recovery`.
    pub protector: &'a str,
    /// Auth secret, hex.
    pub auth: &'a str,
}

/// `POST /api/v1/login` answer.
#[derive(Deserialize)]
pub struct LoginResponse {
    /// The sealed identity for the protector used.
    pub sealed_identity: String,
    /// The account's KDF parameters (passphrase protector).
    #[serde(default)]
    pub kdf: Option<String>,
    /// The account's X25519 public key as the server has it.
    pub x25519: String,
    /// The account's Ed25519 public key as the server has it.
    pub ed25519: String,
}

/// One protector in a registration.
#[derive(Serialize)]
pub struct ProtectorBody {
    /// Auth secret, hex.
    pub auth: String,
    /// Sealed identity, base64.
    pub sealed_identity: String,
}

/// `POST /api/v1/register` body.
#[derive(Serialize)]
pub struct RegisterRequest {
    /// User name.
    pub user: String,
    /// X25519 public key.
    pub x25519: String,
    /// Ed25519 public key.
    pub ed25519: String,
    /// KDF parameters.
    pub kdf: String,
    /// Passphrase auth secret.
    pub auth: String,
    /// Identity sealed under the passphrase.
    pub sealed_identity: String,
    /// The recovery-key protector.
    pub recovery: ProtectorBody,
    /// Signature proving this client holds the Ed25519 key it registers.
    pub proof: String,
}

/// `GET /api/v1/users/{user}` answer.
#[derive(Deserialize)]
pub struct UserResponse {
    /// The user name.
    pub user: String,
    /// X25519 public key.
    pub x25519: String,
    /// Ed25519 public key.
    pub ed25519: String,
}

/// `POST /api/v1/wikis` body.
#[derive(Serialize)]
pub struct CreateWikiRequest {
    /// Genesis keyring.
    pub keyring: String,
    /// First state.
    pub state: String,
    /// Empty manifest.
    pub manifest: String,
}

/// `GET /api/v1/wikis/{wiki}/keyring` answer.
#[derive(Deserialize)]
pub struct KeyringResponse {
    /// Keyring versions, oldest first.
    pub versions: Vec<String>,
}

/// `GET /api/v1/wikis/{wiki}/head` answer (also the `head` of a 409).
#[derive(Deserialize)]
pub struct HeadResponse {
    /// The current state.
    pub state: String,
    /// Its manifest.
    pub manifest: String,
    /// The latest keyring sequence.
    #[serde(default)]
    pub keyring_seq: u64,
}

/// `POST /api/v1/wikis/{wiki}/commits` body.
#[derive(Serialize)]
pub struct CommitRequest {
    /// New state.
    pub state: String,
    /// Its manifest.
    pub manifest: String,
    /// New envelopes.
    pub blobs: Vec<String>,
    /// New keyring version, if membership changes.
    pub keyring: Option<String>,
}
