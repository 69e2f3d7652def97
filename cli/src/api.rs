//! The server's HTTP API (`docs/api.md`), blocking, over rustls. Requests and answers are typed;
//! server errors become [`CliError`]s with a hint. Tokens are never printed.

use std::time::Duration;

use data_encoding::BASE64;
use serde::Deserialize;
use serde::de::DeserializeOwned;
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

pub use client::wire::LoginResponse as LoginAnswer;

/// The outcome of `POST /commits`.
#[derive(Debug)]
pub enum CommitOutcome {
    /// Accepted at this sequence.
    Accepted {
        /// New state sequence.
        seq: u64,
        /// The git commit the server wrote.
        commit: String,
    },
    /// Someone else wrote first: fetch and retry.
    Conflict,
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
    pub fn register(&self, body: &client::wire::RegisterRequest) -> Result<()> {
        let body = serde_json::to_value(body)
            .map_err(|e| CliError::general(format!("encoding the registration: {e}")))?;
        let _: Value = self.call("POST", client::wire::route::REGISTER, Some(&body))?;
        Ok(())
    }

    /// `POST /api/v1/login`.
    pub fn login(&self, body: &client::wire::LoginRequest) -> Result<LoginAnswer> {
        let body = serde_json::to_value(body)
            .map_err(|e| CliError::general(format!("encoding the login: {e}")))?;
        self.call("POST", client::wire::route::LOGIN, Some(&body))
    }

    /// `POST /api/v1/logout`.
    pub fn logout(&self) -> Result<()> {
        let _: Value = self.call("POST", "/api/v1/logout", None)?;
        Ok(())
    }

    /// `PUT /api/v1/account/protectors/{protector}`.
    pub fn put_protector(
        &self,
        protector: &str,
        body: &client::wire::ProtectorRequest,
    ) -> Result<()> {
        let body = serde_json::to_value(body)
            .map_err(|e| CliError::general(format!("encoding the protector: {e}")))?;
        let _: Value = self.call(
            "PUT",
            &client::wire::route::protector(protector),
            Some(&body),
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
        Ok(self.head_probe(wiki)?.0)
    }

    /// `GET /api/v1/wikis/{wiki}/head?manifest=0`: the current state (unverified), the keyring
    /// sequence and the head's git commit: one small request per command.
    pub fn head_probe(&self, wiki: &str) -> Result<(Vec<u8>, u64, String)> {
        let a: client::wire::HeadProbe =
            self.call("GET", &client::wire::route::head_probe(wiki), None)?;
        Ok((b64(&a.state, "state")?, a.keyring_seq, a.commit))
    }

    /// `GET /api/v1/wikis/{wiki}/head`: state, manifest (unverified) and the head's commit.
    pub fn head(&self, wiki: &str) -> Result<(Vec<u8>, Vec<u8>, String)> {
        let a: client::wire::HeadResponse =
            self.call("GET", &client::wire::route::head(wiki), None)?;
        let (state, manifest) = a.decode()?;
        Ok((state, manifest, a.commit))
    }

    /// `GET /api/v1/wikis/{wiki}/keyring?since=N`: keyring versions after `since` (unverified).
    pub fn keyring(&self, wiki: &str, since: u64) -> Result<Vec<Vec<u8>>> {
        let a: client::wire::KeyringResponse =
            self.call("GET", &client::wire::route::keyring(wiki, since), None)?;
        Ok(a.decode()?)
    }

    /// `GET /api/v1/wikis/{wiki}/blobs/{hash}`: an envelope by its SHA-256 (checked by the
    /// caller against the signed manifest); `None` when the server does not have it.
    pub fn blob(&self, wiki: &str, hash: &str) -> Result<Option<Vec<u8>>> {
        let (status, bytes) = self.send("GET", &client::wire::route::blob(wiki, hash), None)?;
        match status {
            200 => Ok(Some(bytes)),
            404 => Ok(None),
            _ => Err(server_error(status, &bytes)),
        }
    }

    /// `GET /api/v1/wikis/{wiki}/states?from=&to=`: older states with their manifests, oldest
    /// first (unverified: the client core checks every one). Asks again while the server stops
    /// early.
    pub fn states(&self, wiki: &str, from: u64, to: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut next = from;
        while next <= to {
            let a: client::wire::StatesResponse =
                self.call("GET", &client::wire::route::states(wiki, next, to), None)?;
            let batch = a.decode()?;
            if batch.is_empty() {
                break;
            }
            next += batch.len() as u64;
            out.extend(batch);
        }
        Ok(out)
    }

    /// `POST /api/v1/wikis/{wiki}/commits`.
    pub fn commit(&self, wiki: &str, req: &client::wire::CommitRequest) -> Result<CommitOutcome> {
        let body = serde_json::to_value(req)
            .map_err(|e| CliError::general(format!("encoding the commit: {e}")))?;
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
        let a: client::wire::CommitResponse = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::new(ErrorKind::Network, format!("unexpected commit answer: {e}"))
        })?;
        Ok(CommitOutcome::Accepted {
            seq: a.seq,
            commit: a.commit,
        })
    }
}

/// Decodes base64 from the server.
pub fn b64(text: &str, what: &str) -> Result<Vec<u8>> {
    Ok(client::wire::unb64(text, what)?)
}

fn error_code(bytes: &[u8]) -> Option<String> {
    client::wire::error_code(bytes)
}

/// A server error answer as a CLI error: the client core's classification, with the CLI's own
/// commands in the hints.
fn server_error(status: u16, bytes: &[u8]) -> CliError {
    let core = client::wire::server_error(status, bytes);
    let input = core.kind == client::Kind::Input;
    let mut e = CliError::from(core);
    if input {
        e.kind = ErrorKind::General;
    }
    match error_code(bytes).as_deref() {
        Some("bad_credentials") => e.with_hint(
            "check both; a lost passphrase can be replaced with `zkwiki login --recovery-key`",
        ),
        Some("unauthorized") => {
            e.with_hint("your session expired or was revoked: run `zkwiki login`")
        }
        Some("not_found") => {
            e.with_hint("check the wiki name (`zkwiki wiki list`); you may not be a member")
        }
        Some("name_taken") => e.with_hint("choose another name, or `zkwiki login` if it is yours"),
        _ => e,
    }
}

pub use client::wire::{NewToken, TokenRow, UserResponse as UserKeys, WikiRow};

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
