//! The user's keys on this machine, without ever writing a plaintext private key (unless the
//! user runs `zkwiki key export`).
//!
//! - `identity.json`: the identity *sealed* under the passphrase (exactly what the server stores),
//!   with the KDF parameters and public keys. Opening it needs the passphrase, every time.
//! - `session.json` (0600): the server session token. It lets the CLI fetch ciphertext and send
//!   commits; it opens nothing.
//! - a key file (`key export`, 0600): the raw identity, for offline use and, later, agents: the
//!   format leaves room for `wiki`, `token` and `role` fields.
//!
//! Secrets come from `ZKWIKI_PASSPHRASE`, `--passphrase-file`, or a prompt without echo.

use std::path::{Path, PathBuf};

use core_crypto::identity::{PublicIdentity, UserIdentity};
use core_crypto::ids::WikiId;
use core_crypto::kdf::KdfParams;
use core_crypto::protector::{ProtectorKey, ProtectorKind, RecoveryKey};
use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{CliError, Context, ErrorKind, Result};
use crate::fsutil;

/// `identity.json`: the sealed identity and what is needed to open it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredIdentity {
    /// Server the account lives on.
    pub server: String,
    /// Account name.
    pub user: String,
    /// `passphrase` or `kms`: what opens `sealed_identity`.
    pub protector: String,
    /// The protector's stored form (base64): KDF parameters (29 bytes) for a passphrase, the
    /// KMS-wrapped key (`"ZKKM"…`) for KMS.
    pub kdf: Option<String>,
    /// The sealed identity (base64).
    pub sealed_identity: String,
    /// X25519 public key (base64).
    pub x25519: String,
    /// Ed25519 public key (base64).
    pub ed25519: String,
}

/// `session.json`: the session token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// Server URL.
    pub server: String,
    /// Account name.
    pub user: String,
    /// Bearer token (secret: never printed).
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Session({} at {}, token [REDACTED])",
            self.user, self.server
        )
    }
}

pub use client::keyfile::{AgentAccess, KeyFile, KmsSealed};

/// Where KMS is: the standard AWS chain, with `ZKWIKI_KMS_ENDPOINT` (or `AWS_ENDPOINT_URL_KMS`)
/// as an endpoint override.
pub fn kms_protector(key_id: &str) -> Result<key_protector::KmsProtector> {
    let endpoint = std::env::var("ZKWIKI_KMS_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_KMS"))
        .ok();
    key_protector::KmsProtector::new(key_protector::KmsConfig {
        key_id: key_id.to_owned(),
        endpoint,
        region: None,
        static_credentials: None,
    })
    .map_err(kms_error)
}

/// A protector failure as a CLI error with a hint.
pub fn kms_error(e: key_protector::ProtectorError) -> CliError {
    use key_protector::ProtectorError as P;
    let kind = match e {
        P::KmsUnreachable { .. } => ErrorKind::Network,
        P::Core(_) => ErrorKind::General,
        _ => ErrorKind::Auth,
    };
    let hint = match e {
        P::KmsUnreachable { .. } => {
            "this key is protected by AWS KMS: unlocking it needs KMS reachable (check network, region and ZKWIKI_KMS_ENDPOINT)"
        }
        P::KmsAccessDenied(_) => {
            "the AWS identity needs kms:Decrypt on this key with zkwiki's encryption context (docs/kms.md)"
        }
        _ => "see docs/kms.md",
    };
    CliError::new(kind, e.to_string()).with_hint(hint)
}

/// A fresh protector key wrapped by the KMS key `key_id` for `user` (and `wiki` for an agent),
/// with its stored form (`"ZKKM"…`, naming the key's full ARN).
pub fn kms_create_key(
    key_id: &str,
    user: &str,
    wiki: Option<WikiId>,
) -> Result<(ProtectorKey, Vec<u8>)> {
    use key_protector::KeyProtector;
    let ctx = key_protector::ProtectorContext {
        user: user.to_owned(),
        wiki,
    };
    kms_protector(key_id)?.create(&ctx).map_err(kms_error)
}

/// Unwraps a KMS-protected protector key from its stored form (KMS checks the context).
pub fn kms_unlock_key(stored: &[u8], user: &str, wiki: Option<WikiId>) -> Result<ProtectorKey> {
    use key_protector::KeyProtector;
    let wrapped = key_protector::WrappedKey::decode(stored)?;
    let ctx = key_protector::ProtectorContext {
        user: user.to_owned(),
        wiki,
    };
    kms_protector(&wrapped.key_arn)?
        .unlock(stored, &ctx)
        .map_err(kms_error)
}

/// Seals `identity` under a fresh KMS-protected key bound to `user` (and `wiki` for an agent).
pub fn kms_seal(
    key_id: &str,
    user: &str,
    wiki: Option<WikiId>,
    identity: &UserIdentity,
) -> Result<KmsSealed> {
    let (pk, stored) = kms_create_key(key_id, user, wiki)?;
    let sealed = identity.seal(
        &mut rand_core::OsRng,
        &pk.derive_seal_key(),
        ProtectorKind::Kms,
        user,
        None,
    )?;
    Ok(KmsSealed {
        wrapped_key: BASE64.encode(&stored),
        sealed_identity: BASE64.encode(&sealed),
    })
}

fn kms_unseal(sealed: &KmsSealed, user: &str, wiki: Option<WikiId>) -> Result<UserIdentity> {
    let bad = || CliError::usage("the key file's KMS section is not base64");
    let stored = BASE64
        .decode(sealed.wrapped_key.as_bytes())
        .map_err(|_| bad())?;
    let sealed_id = BASE64
        .decode(sealed.sealed_identity.as_bytes())
        .map_err(|_| bad())?;
    let pk = kms_unlock_key(&stored, user, wiki)?;
    Ok(UserIdentity::unseal(
        &sealed_id,
        &pk.derive_seal_key(),
        user,
        None,
    )?)
}

/// Public keys as stored in JSON.
pub fn public_from_b64(x25519: &str, ed25519: &str) -> Result<PublicIdentity> {
    let dec = |s: &str| -> Result<[u8; 32]> {
        BASE64
            .decode(s.as_bytes())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| CliError::general("a stored public key is not 32 bytes of base64"))
    };
    Ok(PublicIdentity {
        x25519: dec(x25519)?,
        ed25519: dec(ed25519)?,
    })
}

/// The data-dir files.
#[derive(Clone, Debug)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// The keystore in a data dir.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_path_buf(),
        }
    }

    fn identity_file(&self) -> PathBuf {
        self.dir.join("identity.json")
    }

    fn session_file(&self) -> PathBuf {
        self.dir.join("session.json")
    }

    /// The sealed identity, if any.
    pub fn identity(&self) -> Result<Option<StoredIdentity>> {
        read_json(&self.identity_file())
    }

    /// Saves the sealed identity (0600).
    pub fn save_identity(&self, id: &StoredIdentity) -> Result<()> {
        write_json(&self.identity_file(), id)
    }

    /// The session, if any.
    pub fn session(&self) -> Result<Option<Session>> {
        read_json(&self.session_file())
    }

    /// Saves the session (0600).
    pub fn save_session(&self, s: &Session) -> Result<()> {
        write_json(&self.session_file(), s)
    }

    /// Deletes the session file (and with `forget`, the sealed identity).
    pub fn clear(&self, forget: bool) -> Result<()> {
        remove_if_exists(&self.session_file())?;
        if forget {
            remove_if_exists(&self.identity_file())?;
        }
        Ok(())
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::io(path.display(), e)),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CliError::general(format!("{} is not valid: {e}", path.display()))
                .with_hint("delete it and log in again")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io(path.display(), e)),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = Zeroizing::new(
        serde_json::to_vec_pretty(value)
            .map_err(|e| CliError::general(format!("encoding {}: {e}", path.display())))?,
    );
    if let Some(dir) = path.parent() {
        fsutil::create_private_dir(dir).context(dir.display())?;
    }
    fsutil::write_atomic(path, &bytes, true).context(path.display())
}

/// How to get secrets from the user.
#[derive(Clone, Debug, Default)]
pub struct SecretSource {
    /// `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
}

impl SecretSource {
    /// The passphrase: `ZKWIKI_PASSPHRASE`, the file, or a prompt without echo.
    pub fn passphrase(&self, prompt: &str) -> Result<Zeroizing<String>> {
        if let Some(v) = std::env::var_os("ZKWIKI_PASSPHRASE") {
            return v
                .into_string()
                .map(Zeroizing::new)
                .map_err(|_| CliError::usage("ZKWIKI_PASSPHRASE is not valid UTF-8"));
        }
        if let Some(file) = &self.passphrase_file {
            return read_first_line(file);
        }
        prompt_hidden(prompt)
    }

    /// A new passphrase for `register` and recovery: `ZKWIKI_PASSPHRASE`, `--passphrase-file`, or
    /// asked twice; at least `client::account::MIN_PASSPHRASE_CHARS` characters.
    pub fn new_passphrase(&self) -> Result<Zeroizing<String>> {
        Self::new_passphrase_from("ZKWIKI_PASSPHRASE", self.passphrase_file.as_deref())
    }

    /// A changed passphrase (`passwd`, where `ZKWIKI_PASSPHRASE` is the current one):
    /// `ZKWIKI_NEW_PASSPHRASE`, `file`, or asked twice; at least `client::account::MIN_PASSPHRASE_CHARS` characters.
    pub fn changed_passphrase(&self, file: Option<&Path>) -> Result<Zeroizing<String>> {
        Self::new_passphrase_from("ZKWIKI_NEW_PASSPHRASE", file)
    }

    fn new_passphrase_from(var: &str, file: Option<&Path>) -> Result<Zeroizing<String>> {
        let given = match (std::env::var_os(var), file) {
            (Some(v), _) => Some(
                v.into_string()
                    .map(Zeroizing::new)
                    .map_err(|_| CliError::usage(format!("{var} is not valid UTF-8")))?,
            ),
            (None, Some(f)) => Some(read_first_line(f)?),
            (None, None) => None,
        };
        let interactive = given.is_none();
        let first = match given {
            Some(p) => p,
            None => prompt_hidden("New passphrase: ")?,
        };
        client::account::check_new_passphrase(&first)?;
        if interactive {
            let again = prompt_hidden("Repeat passphrase: ")?;
            if *again != *first {
                return Err(CliError::usage("the passphrases do not match"));
            }
        }
        Ok(first)
    }

    /// The recovery key: `ZKWIKI_RECOVERY_KEY`, a file, or a prompt.
    pub fn recovery_key(&self, file: Option<&Path>) -> Result<RecoveryKey> {
        let text = if let Some(v) = std::env::var_os("ZKWIKI_RECOVERY_KEY") {
            Zeroizing::new(
                v.into_string()
                    .map_err(|_| CliError::usage("ZKWIKI_RECOVERY_KEY is not valid UTF-8"))?,
            )
        } else if let Some(f) = file {
            read_first_line(f)?
        } else {
            prompt_hidden("Recovery key: ")?
        };
        Ok(RecoveryKey::parse(&text)?)
    }
}

fn read_first_line(file: &Path) -> Result<Zeroizing<String>> {
    let text =
        Zeroizing::new(std::fs::read_to_string(file).map_err(|e| CliError::io(file.display(), e))?);
    let line = text.lines().next().unwrap_or("");
    Ok(Zeroizing::new(line.to_owned()))
}

fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|_| {
            CliError::new(ErrorKind::Auth, "cannot read a passphrase: no terminal")
                .with_hint("set ZKWIKI_PASSPHRASE or pass --passphrase-file FILE")
        })
}

/// Opens the sealed identity kept on this machine and checks it matches the stored public keys:
/// with the passphrase (asked for only then) or, for a KMS-protected account, through KMS.
pub fn unseal_stored(
    stored: &StoredIdentity,
    passphrase: impl FnOnce() -> Result<Zeroizing<String>>,
) -> Result<UserIdentity> {
    let form = stored
        .kdf
        .as_deref()
        .and_then(|k| BASE64.decode(k.as_bytes()).ok())
        .ok_or_else(|| CliError::general("identity.json lacks the protector's stored form"))?;
    let (pk, kdf) = match ProtectorKind::from_name(&stored.protector) {
        Ok(ProtectorKind::Passphrase) => {
            let kdf = KdfParams::decode(&form)?;
            let passphrase = passphrase()?;
            (
                ProtectorKey::derive_from_passphrase(&kdf, passphrase.as_bytes())?,
                Some(kdf),
            )
        }
        Ok(ProtectorKind::Kms) => (kms_unlock_key(&form, &stored.user, None)?, None),
        _ => {
            return Err(CliError::general(format!(
                "identity.json names the protector {:?}, which this build cannot open",
                stored.protector
            ))
            .with_hint("log in again: `zkwiki login`"));
        }
    };
    let sealed = BASE64
        .decode(stored.sealed_identity.as_bytes())
        .map_err(|_| CliError::general("identity.json: sealed identity is not base64"))?;
    let identity =
        UserIdentity::unseal(&sealed, &pk.derive_seal_key(), &stored.user, kdf.as_ref())?;
    if identity.public() != public_from_b64(&stored.x25519, &stored.ed25519)? {
        return Err(CliError::integrity(
            "the sealed identity does not match the account's public keys",
        ));
    }
    Ok(identity)
}

/// Reads a key file.
pub fn read_key_file(path: &Path) -> Result<(String, UserIdentity)> {
    let (user, identity, _, _) = read_key_file_full(path)?;
    Ok((user, identity))
}

/// Reads a key file: name, identity, server, and agent access (for an agent key file).
pub fn read_key_file_full(
    path: &Path,
) -> Result<(String, UserIdentity, Option<String>, Option<AgentAccess>)> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| CliError::io(path.display(), e))?);
    let kf = KeyFile::parse(&bytes).map_err(|e| CliError::from(e).context(path.display()))?;
    let identity = match &kf.kms {
        Some(sealed) => {
            let wiki = match &kf.agent {
                Some(a) => Some(WikiId::from_hex(&a.wiki)?),
                None => None,
            };
            let identity = kms_unseal(sealed, &kf.user, wiki)?;
            kf.check(&identity)
                .map_err(|e| CliError::from(e).context(path.display()))?;
            identity
        }
        None => kf
            .identity()
            .map_err(|e| CliError::from(e).context(path.display()))?,
    };
    Ok((
        kf.user.clone(),
        identity,
        kf.server.clone(),
        kf.agent.clone(),
    ))
}

/// Writes a key file (0600).
pub fn write_key_file(
    path: &Path,
    user: &str,
    server: Option<&str>,
    identity: &UserIdentity,
) -> Result<()> {
    write_key_file_with(path, user, server, identity, None, None)
}

/// Writes a key file (0600), with agent access for an agent key file.
pub fn write_key_file_with(
    path: &Path,
    user: &str,
    server: Option<&str>,
    identity: &UserIdentity,
    agent: Option<AgentAccess>,
    kms: Option<KmsSealed>,
) -> Result<()> {
    let kf = KeyFile::new(user, server, identity, agent, kms)?;
    let bytes = kf.to_json();
    if path.exists() {
        return Err(
            CliError::usage(format!("{} already exists", path.display()))
                .with_hint("choose another file name"),
        );
    }
    fsutil::write_atomic(path, bytes.as_bytes(), true).context(path.display())
}
