//! The JSON bodies and routes of `docs/api.md`, written once for every client (and the server's
//! tests): field names, base64, and what a server error means for the user.
//!
//! Binary values travel as standard base64 with padding (RFC 4648 §4); ids as lowercase hex.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};

/// Standard base64 with padding (RFC 4648 §4), as the API uses.
pub fn b64(bytes: &[u8]) -> String {
    core_crypto::codec::base64(bytes)
}

/// Decodes API base64; `what` names the field in the error.
pub fn unb64(text: &str, what: &str) -> Result<Vec<u8>> {
    core_crypto::codec::unbase64(text.as_bytes())
        .map_err(|_| Error::protocol(&format!("{what} is not base64")))
}

/// Lowercase hex (ids, keys and nonces in URLs and JSON).
pub fn hex(bytes: &[u8]) -> String {
    core_crypto::codec::hex(bytes)
}

/// Parses a JSON answer; `what` names it in the error.
pub fn parse<'a, T: Deserialize<'a>>(json: &'a str, what: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|_| Error::protocol(what))
}

/// Parses a JSON answer from bytes.
pub fn parse_bytes<'a, T: Deserialize<'a>>(json: &'a [u8], what: &str) -> Result<T> {
    serde_json::from_slice(json).map_err(|_| Error::protocol(what))
}

/// Serializes a body (cannot fail for these types; an empty object if it somehow does).
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// The routes, so no client spells a URL twice.
pub mod route {
    /// `POST`: KDF parameters (or a KMS-wrapped key) of an account.
    pub const PRELOGIN: &str = "/api/v1/prelogin";
    /// `POST`: a new account.
    pub const REGISTER: &str = "/api/v1/register";
    /// `POST`: a session.
    pub const LOGIN: &str = "/api/v1/login";
    /// `POST`: end the session.
    pub const LOGOUT: &str = "/api/v1/logout";
    /// `GET` the caller's wikis, `POST` a new one.
    pub const WIKIS: &str = "/api/v1/wikis";

    /// `PUT`: replace one protector of the account.
    pub fn protector(kind: &str) -> String {
        format!("/api/v1/account/protectors/{kind}")
    }
    /// `GET`: a user's public keys.
    pub fn user(name: &str) -> String {
        format!("/api/v1/users/{name}")
    }
    /// `DELETE`: a wiki.
    pub fn wiki(wiki: &str) -> String {
        format!("/api/v1/wikis/{wiki}")
    }
    /// `GET`: keyring versions after `since`.
    pub fn keyring(wiki: &str, since: u64) -> String {
        format!("/api/v1/wikis/{wiki}/keyring?since={since}")
    }
    /// `GET`: the current state and manifest.
    pub fn head(wiki: &str) -> String {
        format!("/api/v1/wikis/{wiki}/head")
    }
    /// `GET`: the current state without the manifest (the cheap "did it change?" probe).
    pub fn head_probe(wiki: &str) -> String {
        format!("/api/v1/wikis/{wiki}/head?manifest=0")
    }
    /// `GET`: one older state and its manifest.
    pub fn state(wiki: &str, seq: u64) -> String {
        format!("/api/v1/wikis/{wiki}/states/{seq}")
    }
    /// `GET`: the states `from ..= to` with their manifests, oldest first (a batch: the
    /// answer may stop early; ask again from the next sequence).
    pub fn states(wiki: &str, from: u64, to: u64) -> String {
        format!("/api/v1/wikis/{wiki}/states?from={from}&to={to}")
    }
    /// `GET`: an envelope by its SHA-256.
    pub fn blob(wiki: &str, hash: &str) -> String {
        format!("/api/v1/wikis/{wiki}/blobs/{hash}")
    }
    /// `POST`: a commit.
    pub fn commits(wiki: &str) -> String {
        format!("/api/v1/wikis/{wiki}/commits")
    }
    /// `GET` / `POST`: agent tokens.
    pub fn tokens(wiki: &str) -> String {
        format!("/api/v1/wikis/{wiki}/tokens")
    }
    /// `DELETE`: one agent token.
    pub fn token(wiki: &str, id: &str) -> String {
        format!("/api/v1/wikis/{wiki}/tokens/{id}")
    }
    /// The wiki's git URL path (read-only smart HTTP).
    pub fn git(wiki: &str) -> String {
        format!("/git/{wiki}.git")
    }
}

/// The routes of a witness (`docs/api.md`, "Witness"), relative to its base URL.
pub mod witness_route {
    /// `GET`: the witness's public key.
    pub const KEY: &str = "/witness/v1/key";

    /// `GET`: the latest checkpoint held for a wiki, co-signed over `nonce` (64 hex digits).
    pub fn checkpoint(wiki: &str, nonce: &str) -> String {
        format!("/witness/v1/wikis/{wiki}/checkpoint?nonce={nonce}")
    }
    /// `POST`: submit a new head.
    pub fn checkpoints(wiki: &str) -> String {
        format!("/witness/v1/wikis/{wiki}/checkpoints")
    }
    /// `GET`: the forks a witness refused for a wiki, with both signed states.
    pub fn evidence(wiki: &str) -> String {
        format!("/witness/v1/wikis/{wiki}/evidence")
    }
}

/// `GET /witness/v1/key` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct WitnessKeyResponse {
    /// The Ed25519 public key, base64.
    pub key: String,
    /// Its fingerprint (a client computes it itself from `key`).
    #[serde(default)]
    pub fingerprint: String,
}

/// A witness's co-signed checkpoint: the answer of `GET …/checkpoint` and of an accepted
/// `POST …/checkpoints`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointResponse {
    /// The co-signature, base64.
    pub cosignature: String,
}

/// `POST /witness/v1/wikis/{wiki}/checkpoints` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct WitnessSubmitRequest {
    /// Every keyring version, genesis first, base64.
    pub keyring: Vec<String>,
    /// Consecutive signed states, oldest first, the new head last, base64 (1 to 256).
    pub states: Vec<String>,
    /// 64 hex digits the co-signature of the answer covers (`""`: none).
    #[serde(default)]
    pub nonce: String,
}

/// A witness's refusal (`409`): the error, its latest checkpoint co-signed, and for
/// `need_states` the first sequence it needs.
#[derive(Debug, Serialize, Deserialize)]
pub struct WitnessErrorBody {
    /// Code (`fork`, `stale`, `need_states`, or an error code of the API) and message.
    pub error: ErrorDetail,
    /// The latest checkpoint held, co-signed, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosignature: Option<String>,
    /// With `need_states`: send the states from this sequence on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
}

/// One refused fork, as a witness keeps it.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct EvidenceEntry {
    /// The state the witness held, base64.
    pub held: String,
    /// The submitted state that contradicts it, base64.
    pub refused: String,
    /// The witness's clock when it refused (ms since 1970).
    pub time_ms: u64,
}

/// `GET /witness/v1/wikis/{wiki}/evidence` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvidenceResponse {
    /// Oldest first.
    pub evidence: Vec<EvidenceEntry>,
}

/// `POST /api/v1/prelogin` body: the account, and for the KMS protector the key ARN.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreloginRequest {
    /// User name.
    pub user: String,
    /// `kms` for the KMS protector's wrapped key; none for the passphrase's KDF parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protector: Option<String>,
    /// The KMS key ARN (with `protector: kms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

/// `POST /api/v1/prelogin` answer for a passphrase.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreloginResponse {
    /// KDF parameters (29 bytes).
    pub kdf: String,
}

/// `POST /api/v1/prelogin` answer for KMS.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreloginKmsResponse {
    /// The KMS-wrapped key (`"ZKKM"…`), or the server's stable fake.
    pub kms: String,
}

/// `POST /api/v1/login` body.
#[derive(Serialize, Deserialize)]
pub struct LoginRequest {
    /// User name.
    pub user: String,
    /// `passphrase`, `recovery` or `kms`.
    pub protector: String,
    /// Auth secret, hex.
    pub auth: String,
    /// The device token an earlier login on this device returned: a known device is not
    /// locked out while its name is under attack from other addresses (the browser sends it
    /// as a cookie instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl core::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "LoginRequest({} with {}, auth [REDACTED])",
            self.user, self.protector
        )
    }
}

/// `POST /api/v1/login` answer.
#[derive(Deserialize, Serialize)]
pub struct LoginResponse {
    /// The session token (secret).
    #[serde(default)]
    pub token: String,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: u64,
    /// The sealed identity for the protector used.
    pub sealed_identity: String,
    /// The protector's stored form: KDF parameters (passphrase), KMS-wrapped key (kms), none
    /// (recovery).
    #[serde(default)]
    pub kdf: Option<String>,
    /// The account's X25519 public key as the server has it.
    pub x25519: String,
    /// The account's Ed25519 public key as the server has it.
    pub ed25519: String,
    /// This device's token, to present at the next login (see [`LoginRequest::device`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl core::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "LoginResponse(token [REDACTED], expires {})",
            self.expires_at
        )
    }
}

/// One protector in a registration.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProtectorBody {
    /// Auth secret, hex.
    pub auth: String,
    /// Sealed identity, base64.
    pub sealed_identity: String,
}

/// `POST /api/v1/register` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// User name.
    pub user: String,
    /// X25519 public key.
    pub x25519: String,
    /// Ed25519 public key.
    pub ed25519: String,
    /// `passphrase` or `kms`.
    #[serde(default = "default_protector")]
    pub protector: String,
    /// KDF parameters (or the KMS-wrapped key).
    pub kdf: String,
    /// Auth secret of the everyday protector.
    pub auth: String,
    /// Identity sealed under the everyday protector.
    pub sealed_identity: String,
    /// The recovery-key protector.
    pub recovery: ProtectorBody,
    /// Signature proving this client holds the Ed25519 key it registers.
    pub proof: String,
}

fn default_protector() -> String {
    "passphrase".to_owned()
}

/// `PUT /api/v1/account/protectors/{protector}` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProtectorRequest {
    /// Auth secret, hex.
    pub auth: String,
    /// Sealed identity, base64.
    pub sealed_identity: String,
    /// KDF parameters or KMS-wrapped key; none for a recovery key.
    pub kdf: Option<String>,
}

/// `GET /api/v1/users/{user}` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserResponse {
    /// The user name.
    pub user: String,
    /// X25519 public key.
    pub x25519: String,
    /// Ed25519 public key.
    pub ed25519: String,
}

/// `POST /api/v1/wikis` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateWikiRequest {
    /// Genesis keyring.
    pub keyring: String,
    /// First state.
    pub state: String,
    /// Empty manifest.
    pub manifest: String,
}

/// `POST /api/v1/wikis` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateWikiResponse {
    /// The wiki id.
    pub wiki: String,
}

/// One row of `GET /api/v1/wikis`.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct WikiRow {
    /// Wiki id.
    pub wiki: String,
    /// Role in the current keyring.
    pub role: String,
    /// Current state sequence.
    pub seq: u64,
}

/// `GET /api/v1/wikis` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct WikisResponse {
    /// The caller's wikis.
    pub wikis: Vec<WikiRow>,
}

/// `GET /api/v1/wikis/{wiki}/keyring` answer.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct KeyringResponse {
    /// Keyring versions, oldest first.
    pub versions: Vec<String>,
}

impl KeyringResponse {
    /// The versions as bytes.
    pub fn decode(&self) -> Result<Vec<Vec<u8>>> {
        self.versions
            .iter()
            .map(|v| unb64(v, "keyring version"))
            .collect()
    }
}

/// `GET /api/v1/wikis/{wiki}/head` answer (also the `head` of a 409, and the answer of
/// `GET /states/{seq}`, without `keyring_seq` and `commit`).
#[derive(Debug, Serialize, Deserialize)]
pub struct HeadResponse {
    /// The state.
    pub state: String,
    /// Its manifest.
    pub manifest: String,
    /// The latest keyring sequence.
    #[serde(default)]
    pub keyring_seq: u64,
    /// The git commit of the head (the same state under another commit means the repository
    /// changed without a new signed state: a client then checks every file).
    #[serde(default)]
    pub commit: String,
}

/// `GET /api/v1/wikis/{wiki}/head?manifest=0` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct HeadProbe {
    /// The state.
    pub state: String,
    /// The latest keyring sequence.
    #[serde(default)]
    pub keyring_seq: u64,
    /// The git commit of the head.
    #[serde(default)]
    pub commit: String,
}

impl HeadResponse {
    /// `(state, manifest)` as bytes.
    pub fn decode(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        Ok((
            unb64(&self.state, "state")?,
            unb64(&self.manifest, "manifest")?,
        ))
    }
}

/// `GET /api/v1/wikis/{wiki}/states?from=&to=` answer.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct StatesResponse {
    /// The states asked for, oldest first (possibly fewer: ask again for the rest).
    pub states: Vec<HeadResponse>,
}

impl StatesResponse {
    /// `(state, manifest)` pairs as bytes.
    pub fn decode(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.states.iter().map(HeadResponse::decode).collect()
    }
}

/// `POST /api/v1/wikis/{wiki}/commits` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct CommitRequest {
    /// New state.
    pub state: String,
    /// Its manifest.
    pub manifest: String,
    /// New envelopes.
    #[serde(default)]
    pub blobs: Vec<String>,
    /// New keyring version, if membership changes.
    #[serde(default)]
    pub keyring: Option<String>,
}

impl CommitRequest {
    /// The body for a signed commit.
    pub fn of(c: &core_crypto::snapshot::PreparedCommit) -> Self {
        Self {
            state: b64(c.state.as_bytes()),
            manifest: b64(&c.manifest.encode()),
            blobs: c.blobs.iter().map(|b| b64(b)).collect(),
            keyring: c.keyring.as_ref().map(|k| b64(k.as_bytes())),
        }
    }
}

/// `POST /api/v1/wikis/{wiki}/commits` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct CommitResponse {
    /// The new state's sequence.
    pub seq: u64,
    /// The git commit.
    #[serde(default)]
    pub commit: String,
}

/// `POST /api/v1/wikis/{wiki}/tokens` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewTokenRequest {
    /// The agent's name.
    pub name: String,
    /// `read` or `write`.
    pub role: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A freshly created agent token.
#[derive(Deserialize, Serialize)]
pub struct NewToken {
    /// Token id.
    pub id: String,
    /// The token (shown once; goes into the agent key file).
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl core::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NewToken({}, [REDACTED])", self.id)
    }
}

/// One agent token as listed by the server (never the token itself).
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct TokenRow {
    /// Token id (for revoking).
    pub id: String,
    /// The agent name it was created for.
    pub name: String,
    /// `read` or `write`.
    pub role: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// `GET /api/v1/wikis/{wiki}/tokens` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokensResponse {
    /// The tokens.
    pub tokens: Vec<TokenRow>,
}

/// One entry of `GET /api/v1/wikis/{wiki}/history` (the server's view: checked by the client
/// against signed states before anything is shown).
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct HistoryEntry {
    /// State sequence.
    pub seq: u64,
    /// Git commit.
    #[serde(default)]
    pub commit: String,
    /// The signer's Ed25519 key, base64.
    #[serde(default)]
    pub signer: String,
    /// Server time, unix seconds.
    #[serde(default)]
    pub time: i64,
    /// Page ids changed.
    #[serde(default)]
    pub changed: Vec<String>,
    /// Page ids removed.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Whether the keyring changed.
    #[serde(default)]
    pub keyring_changed: bool,
    /// With `?page=`: the page's envelope hash at this commit (none when removed).
    #[serde(default)]
    pub hash: Option<String>,
}

/// `GET /api/v1/wikis/{wiki}/history` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// Newest first.
    pub entries: Vec<HistoryEntry>,
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
    /// With `409 conflict` on a commit: the current head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadResponse>,
}

/// Code and message of an error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable code (`docs/api.md`).
    pub code: String,
    /// Text for people.
    pub message: String,
}

/// An error answer's body, parsed as text (JSON is UTF-8; one parser instance for every answer).
fn error_body(body: &[u8]) -> Option<ErrorBody> {
    core::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str::<ErrorBody>(text).ok())
}

/// The stable error code of an answer body, if it has one.
pub fn error_code(body: &[u8]) -> Option<String> {
    error_body(body).map(|b| b.error.code)
}

/// What a server error answer means for the user: one classification for every client.
pub fn server_error(status: u16, body: &[u8]) -> Error {
    let parsed = error_body(body);
    let code = parsed.as_ref().map_or("", |b| b.error.code.as_str());
    let message: String = parsed.as_ref().map_or_else(
        || format!("HTTP status {status}"),
        |b| {
            crate::display::escape(&b.error.message.chars().take(300).collect::<String>())
                .into_owned()
        },
    );
    match code {
        "bad_credentials" => Error::access("wrong user name or passphrase")
            .with_hint("check both; a lost passphrase can be replaced with the recovery key"),
        "unauthorized" => Error::access(format!("the server refused the session: {message}"))
            .with_hint("your session expired or was revoked: log in again"),
        "forbidden" => Error::access(format!("not allowed: {message}")),
        "not_found" => Error::not_found(format!("not found on the server: {message}"))
            .with_hint("check the wiki name; you may not be a member"),
        "name_taken" => Error::input("this user name is already registered on the server")
            .with_hint("choose another name, or log in if it is yours"),
        "rate_limited" => {
            Error::access("too many login attempts").with_hint("wait a minute and try again")
        }
        "conflict" => Error::new(Kind::Conflict, format!("conflict: {message}")),
        "too_large" => Error::input(format!(
            "the server refused a request as too large: {message}"
        )),
        "busy" => Error::new(Kind::Unavailable, format!("the server is busy: {message}"))
            .with_hint("try again in a moment"),
        "invalid_format" | "bad_request" => {
            Error::input(format!("the server rejected the request: {message}"))
        }
        _ if status >= 500 => Error::new(Kind::Unavailable, format!("server error: {message}"))
            .with_hint("try again later; the server's log has the details"),
        _ => Error::input(format!("the server answered {status}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_classify_once() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        for (code, status, kind) in [
            ("bad_credentials", 401, Kind::Access),
            ("unauthorized", 401, Kind::Access),
            ("not_found", 404, Kind::NotFound),
            ("conflict", 409, Kind::Conflict),
            ("busy", 503, Kind::Unavailable),
            ("internal", 500, Kind::Unavailable),
            ("bad_request", 400, Kind::Input),
        ] {
            assert_eq!(
                server_error(status, body(code).as_bytes()).kind,
                kind,
                "{code}"
            );
        }
        assert_eq!(server_error(502, b"<html>").kind, Kind::Unavailable);
        assert_eq!(
            error_code(body("conflict").as_bytes()).as_deref(),
            Some("conflict")
        );
        // A hostile message cannot drive the terminal.
        let evil = r#"{"error":{"code":"forbidden","message":"\u001b]0;pwned\u0007x"}}"#;
        assert!(
            !server_error(403, evil.as_bytes())
                .message
                .contains('\u{1b}')
        );
    }
}
