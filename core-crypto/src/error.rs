//! The core's one error type.
//!
//! Variants say *what* failed (wrong key, tampering, rollback, an unauthorized signer, an unknown
//! version) so a client can tell its user, but never *where inside* a ciphertext decryption failed:
//! that would be an oracle. Messages never contain secret material.

/// What went wrong, with enough detail for a person and none for an attacker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not parse as the named format.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The format being parsed.
        what: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A format version this build does not know.
    #[error("unsupported {what} version {version} (written by a newer zkwiki); upgrade zkwiki")]
    UnsupportedVersion {
        /// The format.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// An input over the format's size limit.
    #[error("{what} is too large ({size} bytes; the limit is {limit})")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The key commitment did not match: this key does not open this ciphertext (a wrong key or
    /// passphrase, or a header changed in transit).
    #[error("wrong key for this {what} (or its header was altered)")]
    WrongKey {
        /// The kind of ciphertext.
        what: &'static str,
    },
    /// The key was right but the ciphertext or its context failed authentication: it was changed,
    /// or moved to another page, wiki or epoch.
    #[error(
        "{what} failed authentication: it was modified, or moved from another page, wiki or epoch"
    )]
    Tampered {
        /// The kind of ciphertext.
        what: &'static str,
    },
    /// An Ed25519 signature did not verify.
    #[error("invalid signature on {what}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// The signature is valid but the signer may not sign this.
    #[error("{what} signed by a key that may not sign it: {reason}")]
    Unauthorized {
        /// What was signed.
        what: &'static str,
        /// Why the signer is not allowed.
        reason: &'static str,
    },
    /// A sequence number lower than one this client has already seen: the server served old data.
    #[error("rollback detected on {what}: seen sequence {seen}, now offered {offered}")]
    Rollback {
        /// Keyring or wiki state.
        what: &'static str,
        /// Highest sequence seen before.
        seen: u64,
        /// Sequence offered now.
        offered: u64,
    },
    /// Two different versions with the same sequence number: the server shows forked views.
    #[error("fork detected on {what}: two different versions carry sequence {seq}")]
    Fork {
        /// Keyring or wiki state.
        what: &'static str,
        /// The sequence number.
        seq: u64,
    },
    /// Two pieces that must agree do not (a hash, a digest, an id, a chain link).
    #[error("integrity check failed: {0}")]
    Mismatch(&'static str),
    /// KDF parameters outside what the client accepts.
    #[error("KDF parameters rejected: {0}")]
    WeakKdf(&'static str),
    /// A page path that is not a valid wiki path.
    #[error("invalid page path: {0}")]
    InvalidPath(&'static str),
    /// The identity holds no key for this wiki, epoch or scope.
    #[error("no key for {0}: this identity is not a member, or its access does not cover it")]
    NoAccess(&'static str),
    /// An invalid request to build something (duplicate member, removing the last owner, ...).
    #[error("invalid operation: {0}")]
    Invalid(&'static str),
}

/// Results of this crate.
pub type Result<T> = core::result::Result<T, Error>;
