//! Key protectors: how a user's (or an agent's) protector key is kept between sessions.
//!
//! `core-crypto` turns a protector key into an auth secret and a seal key, and stays pure; the
//! protectors live here, where I/O is allowed. Two stand side by side behind [`KeyProtector`]:
//!
//! - [`PassphraseProtector`]: Argon2id over a passphrase, with parameters kept next to the account;
//! - [`KmsProtector`]: a random protector key wrapped by an AWS KMS key with an encryption context
//!   that names the user (and, for agents, the wiki). Whoever may call `kms:Decrypt` on that key
//!   with that context can unlock: that is the trust this mode chooses.
//!
//! Each protector produces a *stored form* (public bytes to keep with the account: KDF parameters,
//! or the KMS-wrapped key) when it creates a key, and needs it again to unlock.

mod kms;
#[cfg(feature = "test-support")]
pub mod moto;
mod passphrase;

pub use kms::{KmsConfig, KmsProtector, WrappedKey};
pub use passphrase::PassphraseProtector;

use core_crypto::ids::WikiId;
use core_crypto::protector::{ProtectorKey, ProtectorKind};

/// Whom a protector key belongs to; KMS binds this into the encryption context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectorContext {
    /// The account (user or agent) name.
    pub user: String,
    /// For an agent identity bound to one wiki.
    pub wiki: Option<WikiId>,
}

/// A way to create and unlock protector keys.
pub trait KeyProtector {
    /// Which protector this is (bound into the sealed identity).
    fn kind(&self) -> ProtectorKind;
    /// Makes a fresh protector key and the stored form needed to unlock it later.
    fn create(&self, ctx: &ProtectorContext) -> Result<(ProtectorKey, Vec<u8>), ProtectorError>;
    /// Unlocks the protector key from its stored form.
    fn unlock(&self, stored: &[u8], ctx: &ProtectorContext)
    -> Result<ProtectorKey, ProtectorError>;
}

/// Why a protector could not create or unlock a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectorError {
    /// A core error (weak KDF parameters, malformed stored form).
    #[error(transparent)]
    Core(#[from] core_crypto::Error),
    /// KMS could not be reached.
    #[error(
        "cannot reach AWS KMS at {endpoint}: {detail}. Unlocking a KMS-protected key needs KMS, even offline decryption"
    )]
    KmsUnreachable {
        /// The endpoint tried.
        endpoint: String,
        /// The transport error.
        detail: String,
    },
    /// The KMS key is disabled.
    #[error("the KMS key {key} is disabled; enable it (kms:EnableKey) or use another protector")]
    KmsKeyDisabled {
        /// The key id or ARN.
        key: String,
    },
    /// The KMS key does not exist or is pending deletion.
    #[error(
        "the KMS key {key} does not exist or is pending deletion (cancel it with kms:CancelKeyDeletion while you can)"
    )]
    KmsKeyNotFound {
        /// The key id or ARN.
        key: String,
    },
    /// KMS refused the ciphertext: a different encryption context (user or wiki), or a blob that
    /// was not wrapped by this key.
    #[error(
        "KMS refused to unwrap this key: it was wrapped for another user or wiki (encryption context), or with another KMS key"
    )]
    KmsWrongContext,
    /// IAM denied the call.
    #[error(
        "AWS denied the KMS call: {0}; the caller needs kms:Encrypt and kms:Decrypt on the key"
    )]
    KmsAccessDenied(String),
    /// Any other KMS error.
    #[error("KMS error: {0}")]
    Kms(String),
}
