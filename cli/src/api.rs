//! The server's HTTP API (`docs/api.md`), blocking, over rustls. Requests and answers are typed;
//! server errors become [`CliError`]s with a hint. Tokens are never printed.

use std::time::Duration;

use data_encoding::BASE64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{CliError, ErrorKind, Result};

/// Largest answer read (the API's JSON limit).
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// An API client for one server, with or without a session token.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Api({})", self.base)
    }
}

/// `POST /login` answer.
#[derive(Debug, Deserialize)]
pub struct LoginAnswer {
    /// Session token.
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// Sealed identity for this protector (base64).
    pub sealed_identity: String,
    /// The protector's stored form (base64): KDF parameters for a passphrase, the KMS-wrapped
    /// key for KMS, none for a recovery key.
    pub kdf: Option<String>,
    /// X25519 public key (base64).
    pub x25519: String,
    /// Ed25519 public key (base64).
    pub ed25519: String,
}

/// One row of `GET /wikis`.
#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct WikiRow {
    /// Wiki id.
    pub wiki: String,
    /// Role in the current keyring.
    pub role: String,
    /// Current state sequence.
    pub seq: u64,
}

/// The outcome of `POST /commits`.
#[derive(Debug)]
pub enum CommitOutcome {
    /// Accepted at this sequence.
    Accepted {
        /// New state sequence.
        seq: u64,
    },
    /// Someone else wrote first: fetch and retry.
    Conflict,
}

/// The body of `POST /commits`.
#[derive(Debug)]
pub struct CommitRequest<'a> {
    /// New state bytes.
    pub state: &'a [u8],
    /// New manifest bytes.
    pub manifest: &'a [u8],
    /// New envelopes.
    pub blobs: &'a [Vec<u8>],
    /// New keyring version bytes.
    pub keyring: Option<&'a [u8]>,
}

impl Api {
    /// A client for `base` (normalized URL), optionally authenticated.
    pub fn new(base: &str, token: Option<String>) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .user_agent(concat!("zkwiki/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            base: base.to_owned(),
            token,
            agent: config.into(),
        }
    }

    /// The server URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn unreachable(&self, err: &ureq::Error) -> CliError {
        CliError::new(
            ErrorKind::Network,
            format!("cannot reach the server at {}: {err}", self.base),
        )
        .with_hint("check the URL (--server) and that the server is running")
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>)> {
        let url = self.url(path);
        let result = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = self.auth() {
                    r = r.header("Authorization", &a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = self.auth() {
                    r = r.header("Authorization", &a);
                }
                r.call()
            }
            (m, b) => {
                let mut r = if m == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                if let Some(a) = self.auth() {
                    r = r.header("Authorization", &a);
                }
                match b {
                    Some(v) => r.send_json(v),
                    None => r.send_empty(),
                }
            }
        };
        let mut resp = result.map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| self.unreachable(&e))?;
        Ok((status, bytes))
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        let (status, bytes) = self.send(method, path, body)?;
        if !(200..300).contains(&status) {
            return Err(server_error(status, &bytes));
        }
        let bytes = if bytes.is_empty() {
            b"null".to_vec()
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::new(
                ErrorKind::Network,
                format!("the server's answer to {method} {path} is not what the API promises: {e}"),
            )
        })
    }

    /// `POST /api/v1/prelogin`: the account's KDF parameters.
    pub fn prelogin(&self, user: &str) -> Result<Vec<u8>> {
        #[derive(Deserialize)]
        struct A {
            kdf: String,
        }
        let a: A = self.call("POST", "/api/v1/prelogin", Some(&json!({ "user": user })))?;
        b64(&a.kdf, "kdf")
    }

    /// `POST /api/v1/prelogin` for the KMS protector: the account's KMS-wrapped key under
    /// `key_arn` (or the server's stable fake when there is none: KMS then refuses to unwrap it).
    pub fn prelogin_kms(&self, user: &str, key_arn: &str) -> Result<Vec<u8>> {
        #[derive(Deserialize)]
        struct A {
            kms: String,
        }
        let body = json!({ "user": user, "protector": "kms", "kms_key": key_arn });
        let a: A = self.call("POST", "/api/v1/prelogin", Some(&body))?;
        b64(&a.kms, "kms")
    }

    /// `POST /api/v1/register`.
    pub fn register(&self, body: &Value) -> Result<()> {
        let _: Value = self.call("POST", "/api/v1/register", Some(body))?;
        Ok(())
    }

    /// `POST /api/v1/login`.
    pub fn login(&self, user: &str, protector: &str, auth_hex: &str) -> Result<LoginAnswer> {
        self.call(
            "POST",
            "/api/v1/login",
            Some(&json!({ "user": user, "protector": protector, "auth": auth_hex })),
        )
    }

    /// `POST /api/v1/logout`.
    pub fn logout(&self) -> Result<()> {
        let _: Value = self.call("POST", "/api/v1/logout", None)?;
        Ok(())
    }

    /// `PUT /api/v1/account/protectors/{protector}`.
    pub fn put_protector(&self, protector: &str, body: &Value) -> Result<()> {
        let _: Value = self.call(
            "PUT",
            &format!("/api/v1/account/protectors/{protector}"),
            Some(body),
        )?;
        Ok(())
    }

    /// `POST /api/v1/wikis`.
    pub fn create_wiki(&self, keyring: &[u8], state: &[u8], manifest: &[u8]) -> Result<String> {
        #[derive(Deserialize)]
        struct A {
            wiki: String,
        }
        let a: A = self.call(
            "POST",
            "/api/v1/wikis",
            Some(&json!({
                "keyring": BASE64.encode(keyring),
                "state": BASE64.encode(state),
                "manifest": BASE64.encode(manifest),
            })),
        )?;
        Ok(a.wiki)
    }

    /// `GET /api/v1/wikis`.
    pub fn list_wikis(&self) -> Result<Vec<WikiRow>> {
        #[derive(Deserialize)]
        struct A {
            wikis: Vec<WikiRow>,
        }
        let a: A = self.call("GET", "/api/v1/wikis", None)?;
        Ok(a.wikis)
    }

    /// `DELETE /api/v1/wikis/{wiki}`.
    pub fn delete_wiki(&self, wiki: &str) -> Result<()> {
        let _: Value = self.call("DELETE", &format!("/api/v1/wikis/{wiki}"), None)?;
        Ok(())
    }

    /// `GET /api/v1/wikis/{wiki}/head`: the current signed state (base64), unverified. A cheap
    /// "did the wiki change?" probe; callers verify what they then fetch.
    pub fn head_state(&self, wiki: &str) -> Result<Vec<u8>> {
        #[derive(Deserialize)]
        struct A {
            state: String,
        }
        let a: A = self.call("GET", &format!("/api/v1/wikis/{wiki}/head"), None)?;
        b64(&a.state, "state")
    }

    /// `POST /api/v1/wikis/{wiki}/commits`.
    pub fn commit(&self, wiki: &str, req: &CommitRequest<'_>) -> Result<CommitOutcome> {
        let body = json!({
            "state": BASE64.encode(req.state),
            "manifest": BASE64.encode(req.manifest),
            "blobs": req.blobs.iter().map(|b| BASE64.encode(b)).collect::<Vec<_>>(),
            "keyring": req.keyring.map(|k| BASE64.encode(k)),
        });
        let (status, bytes) = self.send(
            "POST",
            &format!("/api/v1/wikis/{wiki}/commits"),
            Some(&body),
        )?;
        if status == 409 && error_code(&bytes).as_deref() == Some("conflict") {
            return Ok(CommitOutcome::Conflict);
        }
        if !(200..300).contains(&status) {
            return Err(server_error(status, &bytes));
        }
        #[derive(Deserialize)]
        struct A {
            seq: u64,
        }
        let a: A = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::new(ErrorKind::Network, format!("unexpected commit answer: {e}"))
        })?;
        Ok(CommitOutcome::Accepted { seq: a.seq })
    }
}

/// Decodes base64 from the server.
pub fn b64(text: &str, what: &str) -> Result<Vec<u8>> {
    BASE64.decode(text.as_bytes()).map_err(|_| {
        CliError::new(
            ErrorKind::Network,
            format!("the server sent a {what} that is not base64"),
        )
    })
}

fn error_code(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("error")?.get("code")?.as_str().map(str::to_owned)
}

fn server_error(status: u16, bytes: &[u8]) -> CliError {
    let v: Option<Value> = serde_json::from_slice(bytes).ok();
    let code = v
        .as_ref()
        .and_then(|v| v.pointer("/error/code"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let message = v
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(|m| m.chars().take(300).collect::<String>())
        .unwrap_or_else(|| format!("HTTP status {status}"));
    match code.as_str() {
        "bad_credentials" => CliError::new(ErrorKind::Auth, "wrong user name or passphrase")
            .with_hint(
                "check both; a lost passphrase can be replaced with `zkwiki login --recovery-key`",
            ),
        "unauthorized" => CliError::new(
            ErrorKind::Auth,
            format!("the server refused the session: {message}"),
        )
        .with_hint("your session expired or was revoked: run `zkwiki login`"),
        "forbidden" => CliError::new(ErrorKind::Auth, format!("not allowed: {message}")),
        "not_found" => CliError::not_found(format!("not found on the server: {message}"))
            .with_hint("check the wiki name (`zkwiki wiki list`); you may not be a member"),
        "name_taken" => CliError::general("this user name is already registered on the server")
            .with_hint("choose another name, or `zkwiki login` if it is yours"),
        "rate_limited" => CliError::new(ErrorKind::Auth, "too many login attempts")
            .with_hint("wait a minute and try again"),
        "too_large" => CliError::general(format!(
            "the server refused a request as too large: {message}"
        )),
        "invalid_format" | "bad_request" => {
            CliError::general(format!("the server rejected the request: {message}"))
        }
        _ if status >= 500 => CliError::new(ErrorKind::Network, format!("server error: {message}"))
            .with_hint("try again later; the server's log has the details"),
        _ => CliError::general(format!("the server answered {status}: {message}")),
    }
}

/// One agent token as listed by the server (never the token itself).
#[derive(Debug, Deserialize, Serialize, Clone)]
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

/// A freshly created agent token.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    /// Token id.
    pub id: String,
    /// The token (shown once; goes into the agent key file).
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A user's public keys as the server reports them (to be checked by fingerprint).
#[derive(Debug, Deserialize)]
pub struct UserKeys {
    /// User name.
    pub user: String,
    /// X25519 public key, base64.
    pub x25519: String,
    /// Ed25519 public key, base64.
    pub ed25519: String,
}

/// Agent tokens and user lookup (owners' commands).
impl Api {
    /// `POST /wikis/{wiki}/tokens`.
    pub fn create_token(
        &self,
        wiki: &str,
        name: &str,
        role: &str,
        expires_in: u64,
    ) -> Result<NewToken> {
        let body = json!({ "name": name, "role": role, "expires_in": expires_in });
        self.call("POST", &format!("/api/v1/wikis/{wiki}/tokens"), Some(&body))
    }

    /// `GET /wikis/{wiki}/tokens`.
    pub fn list_tokens(&self, wiki: &str) -> Result<Vec<TokenRow>> {
        #[derive(Deserialize)]
        struct Answer {
            tokens: Vec<TokenRow>,
        }
        let a: Answer = self.call("GET", &format!("/api/v1/wikis/{wiki}/tokens"), None)?;
        Ok(a.tokens)
    }

    /// `DELETE /wikis/{wiki}/tokens/{id}`.
    pub fn revoke_token(&self, wiki: &str, id: &str) -> Result<()> {
        let (status, bytes) =
            self.send("DELETE", &format!("/api/v1/wikis/{wiki}/tokens/{id}"), None)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(server_error(status, &bytes))
        }
    }

    /// `GET /users/{user}`.
    pub fn user_keys(&self, user: &str) -> Result<UserKeys> {
        self.call("GET", &format!("/api/v1/users/{user}"), None)
    }
}
