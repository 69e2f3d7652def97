//! Passphrase hashing: Argon2id (RFC 9106) with parameters stored beside the account.
//!
//! The server stores and returns these parameters, so it could try to lower them to make a stolen
//! auth hash cheaper to attack, or raise them to freeze a client. The client therefore checks every
//! parameter set against [`KdfParams::FLOOR`] and [`KdfParams::CEILING`] before deriving anything.
//!
//! Encoding (29 bytes): `alg (u8 = 1: Argon2id v1.3) ‖ m_kib (u32) ‖ t (u32) ‖ p (u32) ‖ salt (16)`.

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::wire::{Reader, Writer};
use crate::{Error, Result};

/// The only algorithm id defined: Argon2id, version 0x13.
pub const ALG_ARGON2ID_V13: u8 = 1;
/// Encoded length.
pub const ENCODED_LEN: usize = 29;

/// Argon2id parameters and salt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// Per-account random salt.
    pub salt: [u8; 16],
}

/// Cost settings without a salt, for floors, ceilings and defaults.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KdfCost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// The minimum a client accepts (OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane).
    pub const FLOOR: KdfCost = KdfCost {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };
    /// The maximum a client accepts, so a server cannot make it hang or exhaust memory.
    pub const CEILING: KdfCost = KdfCost {
        m_kib: 1024 * 1024,
        t: 16,
        p: 8,
    };
    /// What new accounts get: 64 MiB, 3 passes, 1 lane (about 0.15 s natively, under 1 s in WASM).
    pub const DEFAULT: KdfCost = KdfCost {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Fresh parameters with a random salt.
    pub fn make(rng: &mut impl CryptoRngCore, cost: KdfCost) -> Result<Self> {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let params = Self {
            m_kib: cost.m_kib,
            t: cost.t,
            p: cost.p,
            salt,
        };
        params.check()?;
        Ok(params)
    }

    /// Rejects parameters below the floor or above the ceiling.
    pub fn check(&self) -> Result<()> {
        let (f, c) = (Self::FLOOR, Self::CEILING);
        if self.m_kib < f.m_kib || self.t < f.t || self.p < f.p {
            return Err(Error::WeakKdf(
                "below the client's minimum (19 MiB, t=2, p=1)",
            ));
        }
        if self.m_kib > c.m_kib || self.t > c.t || self.p > c.p {
            return Err(Error::WeakKdf(
                "above the client's maximum (1 GiB, t=16, p=8)",
            ));
        }
        if self.m_kib < 8 * self.p {
            return Err(Error::WeakKdf("memory must be at least 8 KiB per lane"));
        }
        Ok(())
    }

    /// The 29-byte encoding.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut w = Writer::default();
        w.u8(ALG_ARGON2ID_V13);
        w.u32(self.m_kib);
        w.u32(self.t);
        w.u32(self.p);
        w.bytes(&self.salt);
        let mut out = [0u8; ENCODED_LEN];
        out.copy_from_slice(&w.buf);
        out
    }

    /// Parses and checks the encoding against the floor and ceiling.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "KDF parameters");
        let alg = r.u8()?;
        if alg != ALG_ARGON2ID_V13 {
            return Err(Error::UnsupportedVersion {
                what: "KDF algorithm",
                version: alg,
            });
        }
        let params = Self {
            m_kib: r.u32()?,
            t: r.u32()?,
            p: r.u32()?,
            salt: r.array()?,
        };
        r.finish()?;
        params.check()?;
        Ok(params)
    }

    /// Argon2id(passphrase, salt) → 32 bytes. Checks the parameters first.
    pub fn derive(&self, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        self.check()?;
        let params = Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|_| Error::WeakKdf("rejected by Argon2"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, &self.salt, out.as_mut())
            .map_err(|_| Error::WeakKdf("rejected by Argon2"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_ceiling_enforced_on_decode() {
        let ok = KdfParams {
            m_kib: 19456,
            t: 2,
            p: 1,
            salt: [3; 16],
        };
        assert_eq!(KdfParams::decode(&ok.encode()).unwrap(), ok);
        for bad in [
            KdfParams { m_kib: 1024, ..ok },
            KdfParams { t: 1, ..ok },
            KdfParams { p: 0, ..ok },
            KdfParams {
                m_kib: 2 * 1024 * 1024,
                ..ok
            },
            KdfParams { t: 1000, ..ok },
        ] {
            assert!(matches!(
                KdfParams::decode(&bad.encode()),
                Err(Error::WeakKdf(_))
            ));
            assert!(bad.derive(b"pw").is_err());
        }
        let mut wrong_alg = ok.encode();
        wrong_alg[0] = 2;
        assert!(matches!(
            KdfParams::decode(&wrong_alg),
            Err(Error::UnsupportedVersion { .. })
        ));
    }
}
