//! A user's (or agent's) keys: an age X25519 identity to receive wiki secrets and an Ed25519 key to
//! sign writes; and the sealed form in which the server stores them.
//!
//! Sealed identity: `"ZKID" ‖ version (1) ‖ protector kind (u8) ‖ sealed box`, sealed under the
//! protector's seal key with label `SEAL_IDENTITY` and associated data
//! `"ZKID" ‖ 1 ‖ kind ‖ len(user name) (u8) ‖ user name ‖ KDF parameters (29 bytes, passphrase only)`,
//! so the server can neither move a sealed identity to another account nor pair it with other KDF
//! parameters. Plaintext: `X25519 secret (32) ‖ Ed25519 seed (32)`.

use bech32::{Bech32, Hrp};
use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::kdf::KdfParams;
use crate::protector::{ProtectorKind, SealKey};
use crate::secret::Secret32;
use crate::wire::{Reader, Writer};
use crate::{Error, Result, hazmat, labels, sealed};

const MAGIC: &[u8; 4] = b"ZKID";
const VERSION: u8 = 1;
/// Longest user or member name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
const X25519_BASEPOINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 9;
    b
};

/// Checks a user or member name: 1–64 bytes of `[a-z0-9._-]`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<()> {
    let ok_len = !name.is_empty() && name.len() <= MAX_NAME_LEN;
    let ok_chars = name
        .bytes()
        .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    let ok_start = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start {
        Ok(())
    } else {
        Err(Error::Invalid(
            "names are 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        ))
    }
}

/// The private keys. No `Debug` shows them; both are wiped on drop.
pub struct UserIdentity {
    x25519: Secret32,
    signing: SigningKey,
}

impl core::fmt::Debug for UserIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "UserIdentity({})", self.public().fingerprint())
    }
}

/// The public half of an identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    /// X25519 public key (the age recipient's bytes).
    pub x25519: [u8; 32],
    /// Ed25519 verifying key.
    pub ed25519: [u8; 32],
}

impl core::fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PublicIdentity({})", self.fingerprint())
    }
}

impl UserIdentity {
    /// Fresh random keys.
    pub fn make(rng: &mut impl CryptoRngCore) -> Self {
        let x = Secret32::random(rng);
        let ed = Secret32::random(rng);
        Self::from_secrets(x.expose(), ed.expose())
    }

    /// From an X25519 secret and an Ed25519 seed.
    pub fn from_secrets(x25519: &[u8; 32], ed25519_seed: &[u8; 32]) -> Self {
        Self {
            x25519: Secret32::new(*x25519),
            signing: SigningKey::from_bytes(ed25519_seed),
        }
    }

    /// The public keys.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            x25519: hazmat::x25519(self.x25519.expose(), &X25519_BASEPOINT),
            ed25519: self.signing.verifying_key().to_bytes(),
        }
    }

    /// Signs `label ‖ message` with the Ed25519 key.
    pub fn sign(&self, label: &[u8], message: &[u8]) -> [u8; 64] {
        let mut m = Vec::with_capacity(label.len() + message.len());
        m.extend_from_slice(label);
        m.extend_from_slice(message);
        self.signing.sign(&m).to_bytes()
    }

    /// Proof, sent when registering, that whoever names these public keys holds the signing key:
    /// an Ed25519 signature over `SIGN_REGISTER ‖ u8 len ‖ name ‖ x25519 ‖ ed25519`. Without it a
    /// client could register someone else's published keys under a name of its choosing.
    pub fn registration_proof(&self, name: &str) -> Result<[u8; 64]> {
        Ok(self.sign(
            labels::SIGN_REGISTER,
            &registration_message(name, &self.public())?,
        ))
    }

    /// The age identity, for unwrapping keyring entries.
    pub fn age_identity(&self) -> Result<age::x25519::Identity> {
        self.age_identity_string()?
            .parse()
            .map_err(|_| Error::Invalid("age rejected the identity encoding"))
    }

    /// The age identity in age's text form (`AGE-SECRET-KEY-1…`), as stock `age -i` reads it.
    pub fn age_identity_string(&self) -> Result<Zeroizing<String>> {
        let hrp = Hrp::parse("age-secret-key-").map_err(|_| Error::Invalid("bech32 prefix"))?;
        let mut text = Zeroizing::new(
            bech32::encode::<Bech32>(hrp, self.x25519.expose())
                .map_err(|_| Error::Invalid("bech32 encoding"))?,
        );
        // bech32 text is ASCII: uppercased in place (no second copy of the secret, and no
        // Unicode case tables in the web bundle).
        text.make_ascii_uppercase();
        Ok(text)
    }

    /// The 64 secret bytes `X25519 secret ‖ Ed25519 seed` (for agent key files).
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(self.x25519.expose());
        out[32..].copy_from_slice(self.signing.as_bytes());
        out
    }

    /// Inverse of [`Self::to_secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 64 {
            return Err(Error::Malformed {
                what: "identity",
                reason: "expected 64 bytes",
            });
        }
        let mut x = Zeroizing::new([0u8; 32]);
        let mut e = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(&bytes[..32]);
        e.copy_from_slice(&bytes[32..]);
        Ok(Self::from_secrets(&x, &e))
    }

    /// Seals the identity for the server (random nonce).
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        key: &SealKey,
        kind: ProtectorKind,
        user_name: &str,
        kdf: Option<&KdfParams>,
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; sealed::NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(&nonce, key, kind, user_name, kdf)
    }

    /// Seals with a given nonce (test vectors).
    pub fn seal_with_nonce(
        &self,
        nonce: &[u8; sealed::NONCE_LEN],
        key: &SealKey,
        kind: ProtectorKind,
        user_name: &str,
        kdf: Option<&KdfParams>,
    ) -> Result<Vec<u8>> {
        let ad = sealed_identity_ad(kind, user_name, kdf)?;
        let plain = self.to_secret_bytes();
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.u8(kind as u8);
        w.bytes(&sealed::seal_with_nonce(
            key.expose(),
            nonce,
            labels::SEAL_IDENTITY,
            &ad,
            plain.as_ref(),
        ));
        Ok(w.buf)
    }

    /// Opens a sealed identity. `WrongKey` means a wrong passphrase or recovery key.
    pub fn unseal(
        bytes: &[u8],
        key: &SealKey,
        user_name: &str,
        kdf: Option<&KdfParams>,
    ) -> Result<Self> {
        let mut r = Reader::new(bytes, "sealed identity");
        r.header(MAGIC, VERSION)?;
        let kind = ProtectorKind::from_u8(r.u8()?)?;
        if (kind == ProtectorKind::Passphrase) != kdf.is_some() {
            // The kind byte names another protector than the one opening it: an altered header.
            return Err(Error::Tampered { what: "identity" });
        }
        let ad = sealed_identity_ad(kind, user_name, kdf)?;
        let plain = sealed::open(
            key.expose(),
            labels::SEAL_IDENTITY,
            &ad,
            r.rest(),
            "identity",
        )?;
        Self::from_secret_bytes(&plain)
    }

    /// The protector kind recorded in a sealed identity, without opening it.
    pub fn sealed_kind(bytes: &[u8]) -> Result<ProtectorKind> {
        let mut r = Reader::new(bytes, "sealed identity");
        r.header(MAGIC, VERSION)?;
        ProtectorKind::from_u8(r.u8()?)
    }
}

fn sealed_identity_ad(
    kind: ProtectorKind,
    user_name: &str,
    kdf: Option<&KdfParams>,
) -> Result<Vec<u8>> {
    if (kind == ProtectorKind::Passphrase) != kdf.is_some() {
        return Err(Error::Invalid(
            "KDF parameters go with the passphrase protector only",
        ));
    }
    let mut w = Writer::with_header(MAGIC, VERSION);
    w.u8(kind as u8);
    w.bytes_u8(user_name.as_bytes())?;
    if let Some(p) = kdf {
        w.bytes(&p.encode());
    }
    Ok(w.buf)
}

impl PublicIdentity {
    /// A short fingerprint to compare out of band: the first 16 bytes of
    /// `SHA-256(FINGERPRINT ‖ x25519 ‖ ed25519)` as eight groups of four hex digits.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(labels::FINGERPRINT);
        h.update(self.x25519);
        h.update(self.ed25519);
        let d = h.finalize();
        crate::codec::fingerprint_text(&d[..16])
    }

    /// The age recipient text (`age1…`), as stock `age -r` takes it.
    pub fn age_recipient_string(&self) -> Result<String> {
        let hrp = Hrp::parse("age").map_err(|_| Error::Invalid("bech32 prefix"))?;
        bech32::encode::<Bech32>(hrp, &self.x25519).map_err(|_| Error::Invalid("bech32 encoding"))
    }

    /// The age recipient.
    pub fn age_recipient(&self) -> Result<age::x25519::Recipient> {
        self.age_recipient_string()?
            .parse()
            .map_err(|_| Error::Invalid("age rejected the recipient"))
    }

    /// Checks a [`UserIdentity::registration_proof`] for `name` and these keys.
    pub fn verify_registration_proof(&self, name: &str, proof: &[u8]) -> Result<()> {
        if self.verify(
            labels::SIGN_REGISTER,
            &registration_message(name, self)?,
            proof,
        ) {
            Ok(())
        } else {
            Err(Error::BadSignature {
                what: "registration proof",
            })
        }
    }

    /// Verifies an Ed25519 signature over `label ‖ message` (strict).
    pub fn verify(&self, label: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let mut m = Vec::with_capacity(label.len() + message.len());
        m.extend_from_slice(label);
        m.extend_from_slice(message);
        hazmat::ed25519_verify(&self.ed25519, &m, signature)
    }
}

fn registration_message(name: &str, public: &PublicIdentity) -> Result<Vec<u8>> {
    check_name(name)?;
    let mut m = Vec::with_capacity(1 + name.len() + 64);
    m.push(name.len() as u8);
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(&public.x25519);
    m.extend_from_slice(&public.ed25519);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_proof_binds_name_and_both_keys() {
        let alice = UserIdentity::make(&mut rand_core::OsRng);
        let proof = alice.registration_proof("alice").unwrap();
        let public = alice.public();
        public.verify_registration_proof("alice", &proof).unwrap();
        assert!(public.verify_registration_proof("alice2", &proof).is_err());
        let other = UserIdentity::make(&mut rand_core::OsRng).public();
        let mixed = PublicIdentity {
            x25519: other.x25519,
            ed25519: public.ed25519,
        };
        assert!(mixed.verify_registration_proof("alice", &proof).is_err());
        let mut bad = proof;
        bad[0] ^= 1;
        assert!(public.verify_registration_proof("alice", &bad).is_err());
    }

    #[test]
    fn age_text_forms_agree_with_age() {
        let id = UserIdentity::from_secrets(&[1; 32], &[2; 32]);
        let age_id = id.age_identity().unwrap();
        let from_age = age_id.to_public().to_string();
        assert_eq!(from_age, id.public().age_recipient_string().unwrap());
    }

    #[test]
    fn sealed_identity_binds_user_and_params() {
        let id = UserIdentity::from_secrets(&[1; 32], &[2; 32]);
        let key = SealKey::from_bytes([3; 32]);
        let kdf = KdfParams {
            m_kib: 19456,
            t: 2,
            p: 1,
            salt: [4; 16],
        };
        let sealed = id
            .seal_with_nonce(
                &[5; 24],
                &key,
                ProtectorKind::Passphrase,
                "alice",
                Some(&kdf),
            )
            .unwrap();
        let back = UserIdentity::unseal(&sealed, &key, "alice", Some(&kdf)).unwrap();
        assert_eq!(back.public(), id.public());
        assert!(matches!(
            UserIdentity::unseal(&sealed, &key, "mallory", Some(&kdf)),
            Err(Error::Tampered { .. })
        ));
        let other = KdfParams { t: 3, ..kdf };
        assert!(UserIdentity::unseal(&sealed, &key, "alice", Some(&other)).is_err());
        assert!(matches!(
            UserIdentity::unseal(&sealed, &SealKey::from_bytes([6; 32]), "alice", Some(&kdf)),
            Err(Error::WrongKey { .. })
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("agent-1.bot_x").is_ok());
        for bad in ["", "Alice", "../x", "-a", "a b", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
