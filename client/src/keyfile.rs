//! Two small JSON formats that carry a member's keys (`docs/format.md`, "Key files" and "Sealed
//! identities in a clone"), with their one reader and writer:
//!
//! - a **key file** (`zkwiki key export`, `zkwiki agent grant`, the browser's agent grant): the
//!   identity in the clear (or sealed under a KMS-protected key), its fingerprint, and for an
//!   agent the wiki, token and folder it was given. Secret: mode 0600, shown once.
//! - a **member identity** (`members/<name>.json` on each wiki repository's `identities`
//!   branch, kept by the server): the member's sealed identities exactly as the server hands
//!   them out at login (under the passphrase with its KDF parameters, under the recovery key,
//!   under KMS), so a clone plus the passphrase or the recovery key opens the wiki offline,
//!   forever. Nothing in it opens without the member's secret.

use core_crypto::identity::{PublicIdentity, UserIdentity};
use core_crypto::kdf::KdfParams;
use core_crypto::protector::{ProtectorKey, ProtectorKind, RecoveryKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::wire::{b64, unb64};

/// The key-file format version this build writes and reads.
pub const KEY_FILE_VERSION: u32 = 1;
/// The member-identity format version this build writes and reads.
pub const MEMBER_IDENTITY_VERSION: u32 = 1;
/// Where member identities live in a wiki repository: this branch, one file per member.
pub const IDENTITIES_BRANCH: &str = "identities";

/// What an agent key file grants, besides the keys.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct AgentAccess {
    /// The wiki id.
    pub wiki: String,
    /// The server token (scoped to the wiki and role, expiring).
    pub token: String,
    /// `read` or `write`.
    pub role: String,
    /// The folder the agent is limited to, or empty for the whole wiki.
    #[serde(default)]
    pub prefix: String,
    /// Token expiry, unix seconds.
    pub expires_at: i64,
}

impl core::fmt::Debug for AgentAccess {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "AgentAccess(wiki {}, {}, prefix {:?}, token [REDACTED])",
            self.wiki, self.role, self.prefix
        )
    }
}

/// A KMS-protected identity inside a key file or a member identity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct KmsSealed {
    /// The KMS stored form (`"ZKKM"…`: key ARN + KMS ciphertext), base64.
    pub wrapped_key: String,
    /// The identity sealed under the protector key's seal key (kind KMS), base64.
    pub sealed_identity: String,
}

/// A key file.
#[derive(Serialize, Deserialize, Clone)]
pub struct KeyFile {
    /// Format marker and version.
    pub zkwiki_key_file: u32,
    /// Account (or agent) name.
    pub user: String,
    /// Server URL, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The 64 secret bytes `X25519 secret ‖ Ed25519 seed`, base64 (empty when KMS-sealed).
    pub secret: String,
    /// The fingerprint, for people (checked against the key on reading).
    pub fingerprint: String,
    /// The age identity (`AGE-SECRET-KEY-1…`), usable with `age -d -i` (empty when KMS-sealed).
    pub age_identity: String,
    /// For an agent key file: the wiki, token and access it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentAccess>,
    /// For a KMS-protected key file: the identity sealed under a key only AWS KMS unwraps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<KmsSealed>,
}

impl core::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KeyFile({}, [REDACTED])", self.user)
    }
}

impl KeyFile {
    /// A key file holding `identity` in the clear (or, with `kms`, only sealed).
    pub fn new(
        user: &str,
        server: Option<&str>,
        identity: &UserIdentity,
        agent: Option<AgentAccess>,
        kms: Option<KmsSealed>,
    ) -> Result<Self> {
        let sealed = kms.is_some();
        Ok(Self {
            zkwiki_key_file: KEY_FILE_VERSION,
            user: user.to_owned(),
            server: server.map(str::to_owned),
            secret: if sealed {
                String::new()
            } else {
                b64(identity.to_secret_bytes().as_ref())
            },
            fingerprint: identity.public().fingerprint(),
            age_identity: if sealed {
                String::new()
            } else {
                identity.age_identity_string()?.to_string()
            },
            agent,
            kms,
        })
    }

    /// Parses a key file (its version must be one this build reads).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let kf: Self = serde_json::from_slice(bytes)
            .map_err(|_| Error::input("this is not a zkwiki key file"))?;
        if kf.zkwiki_key_file != KEY_FILE_VERSION {
            return Err(Error::new(
                crate::Kind::Version,
                format!("key file version {} is not supported", kf.zkwiki_key_file),
            )
            .with_hint("upgrade zkwiki"));
        }
        Ok(kf)
    }

    /// The JSON text (pretty, as written to disk).
    pub fn to_json(&self) -> Zeroizing<String> {
        Zeroizing::new(serde_json::to_string_pretty(self).unwrap_or_default())
    }

    /// The identity held in the clear, checked against the fingerprint beside it (a KMS-sealed
    /// file is opened by the driver, which can reach KMS, with [`open_sealed`]).
    pub fn identity(&self) -> Result<UserIdentity> {
        if self.kms.is_some() {
            return Err(Error::input("this key file is sealed under AWS KMS"));
        }
        let secret = Zeroizing::new(unb64(&self.secret, "the key file's secret")?);
        let identity = UserIdentity::from_secret_bytes(&secret)?;
        self.check(&identity)?;
        Ok(identity)
    }

    /// Checks an identity against the fingerprint written in the file.
    pub fn check(&self, identity: &UserIdentity) -> Result<()> {
        if identity.public().fingerprint() != self.fingerprint {
            return Err(Error::input(
                "the key does not match the fingerprint written beside it",
            ));
        }
        Ok(())
    }
}

/// Opens a sealed identity with a protector key and checks it has the expected public keys.
pub fn open_sealed(
    sealed: &[u8],
    key: &ProtectorKey,
    user: &str,
    kdf: Option<&KdfParams>,
    expected: &PublicIdentity,
) -> Result<UserIdentity> {
    let identity = UserIdentity::unseal(sealed, &key.derive_seal_key(), user, kdf)?;
    if identity.public() != *expected {
        return Err(Error::integrity(
            "the sealed identity does not belong to the public keys beside it",
        ));
    }
    Ok(identity)
}

/// A protector's sealed identity in a member identity file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SealedBy {
    /// The protector's stored form: KDF parameters (passphrase), none (recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<String>,
    /// The sealed identity, base64.
    pub sealed_identity: String,
}

/// One member's sealed identities, as a clone carries them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MemberIdentity {
    /// Format marker and version.
    pub zkwiki_member_identity: u32,
    /// The account name (bound into each sealed identity's associated data).
    pub user: String,
    /// X25519 public key, base64.
    pub x25519: String,
    /// Ed25519 public key, base64.
    pub ed25519: String,
    /// Sealed under the passphrase (with its KDF parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<SealedBy>,
    /// Sealed under the recovery key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<SealedBy>,
    /// Sealed under a KMS-protected key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<KmsSealed>,
}

/// The file name of a member's identity on the identities branch.
pub fn member_file(user: &str) -> String {
    format!("members/{user}.json")
}

impl MemberIdentity {
    /// Parses one file.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let m: Self = serde_json::from_slice(bytes)
            .map_err(|_| Error::integrity("a member identity file is malformed"))?;
        if m.zkwiki_member_identity != MEMBER_IDENTITY_VERSION {
            return Err(Error::new(
                crate::Kind::Version,
                format!(
                    "member identity version {} is not supported",
                    m.zkwiki_member_identity
                ),
            ));
        }
        core_crypto::identity::check_name(&m.user)?;
        Ok(m)
    }

    /// The JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The member's public keys.
    pub fn public(&self) -> Result<PublicIdentity> {
        let key = |v: &str, what: &str| -> Result<[u8; 32]> {
            unb64(v, what)?
                .try_into()
                .map_err(|_| Error::integrity(format!("{what} is not 32 bytes")))
        };
        Ok(PublicIdentity {
            x25519: key(&self.x25519, "x25519")?,
            ed25519: key(&self.ed25519, "ed25519")?,
        })
    }

    /// Opens the identity sealed under the recovery key (it fails fast, by the key
    /// commitment, when the recovery key is another member's).
    pub fn open_with_recovery(&self, recovery: &RecoveryKey) -> Result<UserIdentity> {
        let sealed = self
            .recovery
            .as_ref()
            .ok_or_else(|| Error::not_found("no identity sealed under a recovery key"))?;
        let key = recovery.derive_protector_key();
        let bytes = unb64(&sealed.sealed_identity, "sealed identity")?;
        if UserIdentity::sealed_kind(&bytes)? != ProtectorKind::Recovery {
            return Err(Error::integrity(
                "the recovery identity is sealed for another protector",
            ));
        }
        open_sealed(&bytes, &key, &self.user, None, &self.public()?)
    }

    /// Opens the identity sealed under the passphrase (Argon2id with the stored parameters,
    /// which must be within the client's floor and ceiling).
    pub fn open_with_passphrase(&self, passphrase: &[u8]) -> Result<UserIdentity> {
        let sealed = self
            .passphrase
            .as_ref()
            .ok_or_else(|| Error::not_found("no identity sealed under a passphrase"))?;
        let kdf = KdfParams::decode(&unb64(
            sealed.kdf.as_deref().unwrap_or_default(),
            "KDF parameters",
        )?)?;
        let key = ProtectorKey::derive_from_passphrase(&kdf, passphrase)?;
        let bytes = unb64(&sealed.sealed_identity, "sealed identity")?;
        open_sealed(&bytes, &key, &self.user, Some(&kdf), &self.public()?)
    }
}

/// Finds whose recovery key `recovery` is among `members` and opens that identity.
pub fn open_any_with_recovery(
    members: &[MemberIdentity],
    recovery: &RecoveryKey,
) -> Result<(String, UserIdentity)> {
    for m in members {
        if let Ok(identity) = m.open_with_recovery(recovery) {
            return Ok((m.user.clone(), identity));
        }
    }
    Err(Error::access(
        "this recovery key opens none of the members' sealed identities in this clone",
    )
    .with_hint("check the key for typos; it must be the recovery key of a member of this wiki"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn member_identities_open_with_their_secret_only() {
        let id = UserIdentity::make(&mut OsRng);
        let recovery = RecoveryKey::make(&mut OsRng);
        let rkey = recovery.derive_protector_key();
        let sealed = id
            .seal(
                &mut OsRng,
                &rkey.derive_seal_key(),
                ProtectorKind::Recovery,
                "alice",
                None,
            )
            .unwrap();
        let public = id.public();
        let m = MemberIdentity {
            zkwiki_member_identity: 1,
            user: "alice".into(),
            x25519: b64(&public.x25519),
            ed25519: b64(&public.ed25519),
            passphrase: None,
            recovery: Some(SealedBy {
                kdf: None,
                sealed_identity: b64(&sealed),
            }),
            kms: None,
        };
        let parsed = MemberIdentity::parse(&m.to_json()).unwrap();
        assert_eq!(parsed, m);
        let (user, opened) =
            open_any_with_recovery(std::slice::from_ref(&parsed), &recovery).unwrap();
        assert_eq!((user.as_str(), opened.public()), ("alice", public));
        let other = RecoveryKey::make(&mut OsRng);
        assert_eq!(
            open_any_with_recovery(std::slice::from_ref(&parsed), &other)
                .unwrap_err()
                .kind,
            crate::Kind::Access
        );
        // Renamed to another member: the associated data binds the name.
        let mut renamed = parsed;
        renamed.user = "mallory".into();
        assert!(renamed.open_with_recovery(&recovery).is_err());
    }

    #[test]
    fn key_files_round_trip_and_check_the_fingerprint() {
        let id = UserIdentity::make(&mut OsRng);
        let kf = KeyFile::new("bot", Some("http://x"), &id, None, None).unwrap();
        let back = KeyFile::parse(kf.to_json().as_bytes()).unwrap();
        assert_eq!(back.identity().unwrap().public(), id.public());
        let mut wrong = back.clone();
        wrong.fingerprint = UserIdentity::make(&mut OsRng).public().fingerprint();
        assert!(wrong.identity().is_err());
        let mut future = back;
        future.zkwiki_key_file = 2;
        let json = serde_json::to_vec(&future).unwrap();
        assert_eq!(
            KeyFile::parse(&json).unwrap_err().kind,
            crate::Kind::Version
        );
    }
}
