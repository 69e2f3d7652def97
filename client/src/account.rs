//! Account flows, once for every client: what a registration sends, what a login must check
//! before the identity it returns is trusted, and how a protector is replaced.
//!
//! A [`Protection`] is one way to open the identity: a passphrase (Argon2id with parameters the
//! client checks against its floor and ceiling, whatever the server sent), the recovery key, or
//! a key wrapped by AWS KMS (the driver unwraps it; this crate does no I/O). From it come the
//! auth secret sent to the server and the seal key that never leaves the client.

use core_crypto::identity::{PublicIdentity, UserIdentity, check_name};
use core_crypto::kdf::{KdfCost, KdfParams};
use core_crypto::protector::{ProtectorKey, ProtectorKind, RecoveryKey};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::wire::{
    self, LoginResponse, ProtectorBody, ProtectorRequest, RegisterRequest, b64, unb64,
};

/// The shortest passphrase a client accepts when one is chosen (the CLI and the web app alike).
pub const MIN_PASSPHRASE_CHARS: usize = 10;

/// Checks a newly chosen passphrase.
pub fn check_new_passphrase(passphrase: &str) -> Result<()> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(Error::input(format!(
            "the passphrase is shorter than {MIN_PASSPHRASE_CHARS} characters"
        ))
        .with_hint("choose a longer passphrase; several words are easy to remember"));
    }
    Ok(())
}

/// One protector of an account, derived and ready.
pub struct Protection {
    kind: ProtectorKind,
    key: ProtectorKey,
    /// KDF parameters (passphrase), the KMS-wrapped key (KMS), nothing (recovery).
    stored_form: Vec<u8>,
    kdf: Option<KdfParams>,
}

impl core::fmt::Debug for Protection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Protection({}, [REDACTED])", self.kind.name())
    }
}

impl Protection {
    /// A new passphrase protector: fresh KDF parameters at `cost`, then Argon2id.
    pub fn new_passphrase(
        rng: &mut impl CryptoRngCore,
        passphrase: &str,
        cost: KdfCost,
    ) -> Result<Self> {
        let kdf = Self::new_passphrase_kdf(rng, passphrase, cost)?;
        Self::passphrase(&kdf, passphrase)
    }

    /// The first half of [`Self::new_passphrase`] for a driver that runs Argon2id elsewhere:
    /// checks the chosen passphrase and makes fresh KDF parameters at `cost` (encoded). Then
    /// [`Self::derive_passphrase_key`] with them (in the web app's worker), and
    /// [`Self::passphrase_derived`].
    pub fn new_passphrase_kdf(
        rng: &mut impl CryptoRngCore,
        passphrase: &str,
        cost: KdfCost,
    ) -> Result<Vec<u8>> {
        check_new_passphrase(passphrase)?;
        Ok(KdfParams::make(rng, cost)?.encode().to_vec())
    }

    /// An existing passphrase protector, from the stored KDF parameters (refused outside the
    /// client's floor and ceiling, whoever sent them).
    pub fn passphrase(kdf_bytes: &[u8], passphrase: &str) -> Result<Self> {
        let key = Self::derive_passphrase_key(kdf_bytes, passphrase)?;
        Self::passphrase_derived(kdf_bytes, key)
    }

    /// [`Self::passphrase`] split in two for a driver that runs Argon2id elsewhere (the web
    /// app's worker, so the tab stays responsive): [`Self::derive_passphrase_key`] there, then
    /// this with its key. The KDF parameters are checked again here, whoever derived the key.
    pub fn passphrase_derived(kdf_bytes: &[u8], key: ProtectorKey) -> Result<Self> {
        let kdf = KdfParams::decode(kdf_bytes)?;
        Ok(Self {
            kind: ProtectorKind::Passphrase,
            key,
            stored_form: kdf.encode().to_vec(),
            kdf: Some(kdf),
        })
    }

    /// The passphrase protector key by Argon2id with the stored KDF parameters (refused outside
    /// the client's floor and ceiling): the slow half of [`Self::passphrase`].
    pub fn derive_passphrase_key(kdf_bytes: &[u8], passphrase: &str) -> Result<ProtectorKey> {
        let kdf = KdfParams::decode(kdf_bytes)?;
        Ok(ProtectorKey::derive_from_passphrase(
            &kdf,
            passphrase.as_bytes(),
        )?)
    }

    /// The recovery-key protector.
    pub fn recovery(key: &RecoveryKey) -> Self {
        Self {
            kind: ProtectorKind::Recovery,
            key: key.derive_protector_key(),
            stored_form: Vec::new(),
            kdf: None,
        }
    }

    /// A KMS protector: the key KMS unwrapped and its wrapped (`"ZKKM"…`) form.
    pub fn kms(key: ProtectorKey, wrapped: Vec<u8>) -> Self {
        Self {
            kind: ProtectorKind::Kms,
            key,
            stored_form: wrapped,
            kdf: None,
        }
    }

    /// Which protector.
    pub fn kind(&self) -> ProtectorKind {
        self.kind
    }

    /// The stored form (what the server keeps beside the sealed identity).
    pub fn stored_form(&self) -> &[u8] {
        &self.stored_form
    }

    /// The auth secret, hex, as sent to the server.
    pub fn auth_hex(&self) -> Zeroizing<String> {
        self.key.derive_auth_secret().to_hex()
    }

    /// Seals `identity` under this protector for the account `user`.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        identity: &UserIdentity,
        user: &str,
    ) -> Result<Vec<u8>> {
        Ok(identity.seal(
            rng,
            &self.key.derive_seal_key(),
            self.kind,
            user,
            self.kdf.as_ref(),
        )?)
    }

    /// Opens a sealed identity with this protector and checks it has `expected` public keys.
    pub fn open(
        &self,
        sealed: &[u8],
        user: &str,
        expected: &PublicIdentity,
    ) -> Result<UserIdentity> {
        if UserIdentity::sealed_kind(sealed)? != self.kind {
            return Err(Error::protocol(
                "the sealed identity is for another protector",
            ));
        }
        crate::keyfile::open_sealed(sealed, &self.key, user, self.kdf.as_ref(), expected)
    }

    /// The `PUT /account/protectors/{kind}` body replacing this protector with `sealed`.
    pub fn replace_body(&self, sealed: &[u8]) -> ProtectorRequest {
        ProtectorRequest {
            auth: self.auth_hex().to_string(),
            sealed_identity: b64(sealed),
            kdf: (self.kind != ProtectorKind::Recovery).then(|| b64(&self.stored_form)),
        }
    }

    /// The `POST /login` body.
    pub fn login_body(&self, user: &str) -> wire::LoginRequest {
        wire::LoginRequest {
            user: user.to_owned(),
            protector: self.kind.name().to_owned(),
            auth: self.auth_hex().to_string(),
            device: None,
        }
    }
}

/// A new account: its identity, its recovery key (shown once), and what to send.
pub struct NewAccount {
    /// The identity (secret).
    pub identity: UserIdentity,
    /// The recovery key (secret; shown to the person once).
    pub recovery: RecoveryKey,
    /// The identity sealed under the everyday protector.
    pub sealed: Vec<u8>,
    /// The `POST /register` body.
    pub request: RegisterRequest,
}

impl core::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NewAccount({}, [REDACTED])", self.request.user)
    }
}

/// Makes an account: a fresh identity sealed under `everyday` and under a fresh recovery key,
/// and the registration proof (a signature by the new key over the name and both public keys).
pub fn register(
    rng: &mut impl CryptoRngCore,
    user: &str,
    everyday: &Protection,
) -> Result<NewAccount> {
    check_name(user)?;
    let identity = UserIdentity::make(rng);
    let recovery = RecoveryKey::make(rng);
    let rprot = Protection::recovery(&recovery);
    let sealed = everyday.seal(rng, &identity, user)?;
    let rsealed = rprot.seal(rng, &identity, user)?;
    let public = identity.public();
    let request = RegisterRequest {
        user: user.to_owned(),
        x25519: b64(&public.x25519),
        ed25519: b64(&public.ed25519),
        protector: everyday.kind.name().to_owned(),
        kdf: b64(&everyday.stored_form),
        auth: everyday.auth_hex().to_string(),
        sealed_identity: b64(&sealed),
        recovery: ProtectorBody {
            auth: rprot.auth_hex().to_string(),
            sealed_identity: b64(&rsealed),
        },
        proof: b64(&identity.registration_proof(user)?),
    };
    Ok(NewAccount {
        identity,
        recovery,
        sealed,
        request,
    })
}

/// What a login answer yields once checked: the identity and its sealed form.
#[derive(Debug)]
pub struct LoggedIn {
    /// The unsealed identity.
    pub identity: UserIdentity,
    /// The sealed identity as the server holds it (kept on the device, for offline use).
    pub sealed: Vec<u8>,
}

/// Checks a login answer and opens the identity in it with `protection`: the stored form the
/// answer carries is the one the secret was derived from, the sealed identity opens under the
/// account's name, and the public keys the server lists for the account are the identity's (so
/// nobody invites a key this user does not hold).
pub fn open_login(answer: &LoginResponse, user: &str, protection: &Protection) -> Result<LoggedIn> {
    if protection.kind != ProtectorKind::Recovery
        && let Some(k) = &answer.kdf
        && unb64(k, "kdf")? != protection.stored_form
    {
        return Err(Error::integrity(
            "the server changed the protector's parameters between two requests",
        ));
    }
    let sealed = unb64(&answer.sealed_identity, "sealed identity")?;
    let claimed = PublicIdentity {
        x25519: unb64(&answer.x25519, "x25519")?
            .try_into()
            .map_err(|_| Error::protocol("x25519 is not 32 bytes"))?,
        ed25519: unb64(&answer.ed25519, "ed25519")?
            .try_into()
            .map_err(|_| Error::protocol("ed25519 is not 32 bytes"))?,
    };
    let identity = protection.open(&sealed, user, &claimed).map_err(|e| {
        if e.kind == crate::Kind::Integrity {
            Error::integrity(
                "the server lists public keys for your account that are not the ones your sealed \
                 identity holds (others would invite a key you do not hold)",
            )
        } else {
            e
        }
    })?;
    Ok(LoggedIn { identity, sealed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn register_then_login_checks_the_answer() {
        let rng = &mut OsRng;
        assert!(Protection::new_passphrase(rng, "short", KdfParams::FLOOR).is_err());
        let p = Protection::new_passphrase(rng, "a long passphrase", KdfParams::FLOOR).unwrap();
        let acc = register(rng, "alice", &p).unwrap();
        let answer = LoginResponse {
            token: String::new(),
            expires_at: 0,
            sealed_identity: acc.request.sealed_identity.clone(),
            kdf: Some(acc.request.kdf.clone()),
            x25519: acc.request.x25519.clone(),
            ed25519: acc.request.ed25519.clone(),
            device: None,
        };
        let again = Protection::passphrase(
            &unb64(&acc.request.kdf, "kdf").unwrap(),
            "a long passphrase",
        )
        .unwrap();
        let done = open_login(&answer, "alice", &again).unwrap();
        assert_eq!(done.identity.public(), acc.identity.public());
        // Derived in two halves (the web app's worker, then the tab), the same protector.
        let kdf = unb64(&acc.request.kdf, "kdf").unwrap();
        let key = Protection::derive_passphrase_key(&kdf, "a long passphrase").unwrap();
        let split = Protection::passphrase_derived(&kdf, key).unwrap();
        assert_eq!(*split.auth_hex(), *again.auth_hex());
        assert!(open_login(&answer, "alice", &split).is_ok());
        // Parameters under the floor are refused by either half.
        let weak = KdfParams {
            m_kib: 1024,
            ..KdfParams::decode(&kdf).unwrap()
        }
        .encode();
        assert!(Protection::derive_passphrase_key(&weak, "a long passphrase").is_err());
        assert!(
            Protection::passphrase_derived(
                &weak,
                core_crypto::protector::ProtectorKey::from_bytes([7; 32])
            )
            .is_err()
        );
        // The recovery key opens its own sealed copy.
        let r = Protection::recovery(&acc.recovery);
        let rsealed = unb64(&acc.request.recovery.sealed_identity, "r").unwrap();
        assert!(r.open(&rsealed, "alice", &acc.identity.public()).is_ok());
        // A server that lists another key for the account is caught.
        let other = UserIdentity::make(rng).public();
        let forged = LoginResponse {
            ed25519: b64(&other.ed25519),
            ..answer
        };
        assert_eq!(
            open_login(&forged, "alice", &again).unwrap_err().kind,
            crate::Kind::Integrity
        );
        // A wrong passphrase is an access error.
        let wrong = Protection::passphrase(
            &unb64(&acc.request.kdf, "kdf").unwrap(),
            "another passphrase",
        )
        .unwrap();
        let answer = LoginResponse {
            token: String::new(),
            expires_at: 0,
            sealed_identity: acc.request.sealed_identity.clone(),
            kdf: Some(acc.request.kdf.clone()),
            x25519: acc.request.x25519.clone(),
            ed25519: acc.request.ed25519.clone(),
            device: None,
        };
        assert_eq!(
            open_login(&answer, "alice", &wrong).unwrap_err().kind,
            crate::Kind::Access
        );
    }
}
