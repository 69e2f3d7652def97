//! The passphrase protector: Argon2id with stored, client-checked parameters.

use core_crypto::kdf::{KdfCost, KdfParams};
use core_crypto::protector::{ProtectorKey, ProtectorKind};
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::{KeyProtector, ProtectorContext, ProtectorError};

/// A passphrase, held only as long as this value lives.
pub struct PassphraseProtector {
    passphrase: Zeroizing<String>,
    cost: KdfCost,
}

impl core::fmt::Debug for PassphraseProtector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PassphraseProtector([REDACTED])")
    }
}

impl PassphraseProtector {
    /// A protector for this passphrase; new keys use [`KdfParams::DEFAULT`].
    pub fn new(passphrase: Zeroizing<String>) -> Self {
        Self {
            passphrase,
            cost: KdfParams::DEFAULT,
        }
    }

    /// Uses other costs for new keys (never below the floor: `create` checks).
    pub fn with_cost(mut self, cost: KdfCost) -> Self {
        self.cost = cost;
        self
    }
}

impl KeyProtector for PassphraseProtector {
    fn kind(&self) -> ProtectorKind {
        ProtectorKind::Passphrase
    }

    fn create(&self, _ctx: &ProtectorContext) -> Result<(ProtectorKey, Vec<u8>), ProtectorError> {
        let params = KdfParams::make(&mut OsRng, self.cost)?;
        let key = ProtectorKey::derive_from_passphrase(&params, self.passphrase.as_bytes())?;
        Ok((key, params.encode().to_vec()))
    }

    fn unlock(
        &self,
        stored: &[u8],
        _ctx: &ProtectorContext,
    ) -> Result<ProtectorKey, ProtectorError> {
        let params = KdfParams::decode(stored)?;
        Ok(ProtectorKey::derive_from_passphrase(
            &params,
            self.passphrase.as_bytes(),
        )?)
    }
}
