//! Key protectors: the ways a user unlocks their identity.
//!
//! A protector yields a 32-byte [`ProtectorKey`], from which HKDF derives two independent values:
//! the [`AuthSecret`] the client shows the server to log in (the server stores only its hash), and
//! the seal key that encrypts the user's private identity. The server can never compute the seal
//! key from what it sees, because HKDF outputs under distinct labels are independent.
//!
//! | protector  | protector key                                            |
//! |------------|----------------------------------------------------------|
//! | passphrase | `Argon2id(passphrase, salt, m, t, p)` (see [`crate::kdf`]) |
//! | recovery   | `HKDF(ikm = recovery key, info = PROTECTOR_RECOVERY)`     |
//! | KMS        | a random 32-byte secret that KMS wraps (outside this crate) |

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::hazmat::hkdf_sha256;
use crate::kdf::KdfParams;
use crate::secret::{Secret32, secret_newtype};
use crate::{Error, Result, labels};

/// Which protector sealed an identity. Bound into the sealed identity's associated data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProtectorKind {
    /// A passphrase through Argon2id.
    Passphrase = 1,
    /// A printable random recovery key.
    Recovery = 2,
    /// A random secret wrapped by a KMS key.
    Kms = 3,
}

impl ProtectorKind {
    /// Parses the one-byte code.
    pub fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Self::Passphrase),
            2 => Ok(Self::Recovery),
            3 => Ok(Self::Kms),
            _ => Err(Error::Malformed {
                what: "protector kind",
                reason: "unknown code",
            }),
        }
    }
    /// A stable lowercase name, for APIs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Passphrase => "passphrase",
            Self::Recovery => "recovery",
            Self::Kms => "kms",
        }
    }
    /// Parses [`Self::name`].
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "passphrase" => Ok(Self::Passphrase),
            "recovery" => Ok(Self::Recovery),
            "kms" => Ok(Self::Kms),
            _ => Err(Error::Malformed {
                what: "protector kind",
                reason: "unknown name",
            }),
        }
    }
}

secret_newtype!(
    /// The output of a protector; root of a user's login and identity sealing.
    ProtectorKey
);
secret_newtype!(
    /// What the client shows the server to log in. The server stores only a hash of it.
    AuthSecret
);
secret_newtype!(
    /// The key that seals the user's identity (never leaves the client).
    SealKey
);
secret_newtype!(
    /// A random recovery key, printed once at registration.
    RecoveryKey
);

fn hkdf32(ikm: &[u8; 32], info: &[u8]) -> Secret32 {
    let mut out = [0u8; 32];
    // 32-byte output: cannot exceed HKDF's limit.
    let _ = hkdf_sha256(&[], ikm, info, &mut out);
    let s = Secret32::new(out);
    zeroize::Zeroize::zeroize(&mut out);
    s
}

impl ProtectorKey {
    /// Passphrase protector: Argon2id with the given (checked) parameters.
    pub fn derive_from_passphrase(params: &KdfParams, passphrase: &[u8]) -> Result<Self> {
        let out = params.derive(passphrase)?;
        Ok(Self(Secret32::new(*out)))
    }

    /// The auth secret for the server.
    pub fn derive_auth_secret(&self) -> AuthSecret {
        AuthSecret(hkdf32(self.expose(), labels::USER_AUTH))
    }

    /// The key sealing the user's identity.
    pub fn derive_seal_key(&self) -> SealKey {
        SealKey(hkdf32(self.expose(), labels::USER_SEAL))
    }
}

impl AuthSecret {
    /// Lowercase hex, for the login request body.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::codec::hex(self.expose()))
    }
}

/// The text prefix of a recovery key (format version 1).
pub const RECOVERY_PREFIX: &str = "ZKR1";

impl RecoveryKey {
    /// A fresh random recovery key.
    pub fn make(rng: &mut impl CryptoRngCore) -> Self {
        Self(Secret32::random(rng))
    }

    /// The protector key this recovery key yields.
    pub fn derive_protector_key(&self) -> ProtectorKey {
        ProtectorKey(hkdf32(self.expose(), labels::PROTECTOR_RECOVERY))
    }

    /// Printable form: `ZKR1-` then base32 (RFC 4648, no padding) of the key and a 2-byte SHA-256
    /// checksum, in groups of five separated by `-`.
    pub fn to_display(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(34));
        raw.extend_from_slice(self.expose());
        raw.extend_from_slice(&Sha256::digest(self.expose())[..2]);
        let b32 = Zeroizing::new(crate::codec::base32(&raw));
        let mut out = Zeroizing::new(String::from(RECOVERY_PREFIX));
        for chunk in b32.as_bytes().chunks(5) {
            out.push('-');
            out.extend(chunk.iter().map(|&c| c as char));
        }
        out
    }

    /// Parses the printable form; spaces, dashes and case are forgiven, a typo is caught.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason| Error::Malformed {
            what: "recovery key",
            reason,
        };
        let cleaned: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !matches!(c, '-' | ' ' | '\n' | '\t'))
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let body = cleaned
            .strip_prefix(RECOVERY_PREFIX)
            .ok_or(bad("it must start with ZKR1-"))?;
        let raw =
            Zeroizing::new(crate::codec::unbase32(body.as_bytes()).map_err(|_| bad("not base32"))?);
        if raw.len() != 34 {
            return Err(bad("wrong length"));
        }
        let (key, check) = raw.split_at(32);
        if Sha256::digest(key)[..2] != *check {
            return Err(bad("checksum mismatch (a typo?)"));
        }
        Secret32::from_slice(key)
            .map(Self)
            .ok_or(bad("wrong length"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_seal_keys_are_independent() {
        let pk = ProtectorKey::from_bytes([9; 32]);
        assert_ne!(
            pk.derive_auth_secret().expose(),
            pk.derive_seal_key().expose()
        );
    }

    #[test]
    fn recovery_key_display_round_trip_and_typo() {
        let rk = RecoveryKey::from_bytes([0x5a; 32]);
        let text = rk.to_display();
        assert!(text.starts_with("ZKR1-"));
        assert_eq!(RecoveryKey::parse(&text).unwrap(), rk);
        assert_eq!(
            RecoveryKey::parse(&text.to_lowercase().replace('-', " ")).unwrap(),
            rk
        );
        let mut typo = text.to_string();
        let i = typo.len() - 3;
        let c = if &typo[i..i + 1] == "A" { "B" } else { "A" };
        typo.replace_range(i..i + 1, c);
        assert!(RecoveryKey::parse(&typo).is_err());
    }
}
