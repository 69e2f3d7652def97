//! The sealed box: the one key-committing AEAD construction every zkwiki ciphertext uses.
//!
//! ```text
//! okm        = HKDF-SHA256(salt = nonce, ikm = key, info = label, L = 64)
//! enc_key    = okm[0..32]
//! commitment = okm[32..64]
//! sealed     = nonce (24) ‖ commitment (32) ‖ XChaCha20-Poly1305(enc_key, nonce, ad, plaintext)
//! ```
//!
//! XChaCha20-Poly1305 alone is not key-committing: with several parties sharing a wiki key, a
//! malicious one could craft a ciphertext that opens to different plaintexts under different keys.
//! The commitment is checked (in constant time) *before* any decryption, so a wrong key is reported
//! as such and the AEAD only ever runs under the key the sender committed to. Deriving a fresh
//! encryption key per nonce also keeps one key's AEAD usage far from any birthday bound.

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::hazmat;
use crate::{Error, Result};

/// Nonce length.
pub const NONCE_LEN: usize = 24;
/// Commitment length.
pub const COMMIT_LEN: usize = 32;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed box adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + COMMIT_LEN + TAG_LEN;

fn derive(key: &[u8; 32], nonce: &[u8; NONCE_LEN], label: &[u8]) -> Zeroizing<[u8; 64]> {
    let mut okm = Zeroizing::new([0u8; 64]);
    // 64 bytes is far below HKDF's 8160-byte limit, so expansion cannot fail.
    let _ = hazmat::hkdf_sha256(nonce, key, label, okm.as_mut());
    okm
}

/// Seals `plaintext` with a nonce drawn from `rng`.
pub fn seal(
    rng: &mut impl CryptoRngCore,
    key: &[u8; 32],
    label: &[u8],
    ad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with_nonce(key, &nonce, label, ad, plaintext)
}

/// Seals with a given nonce (for test vectors; a nonce must never repeat under one key).
pub fn seal_with_nonce(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    label: &[u8],
    ad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let okm = derive(key, nonce, label);
    let mut enc_key = Zeroizing::new([0u8; 32]);
    enc_key.copy_from_slice(&okm[..32]);
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&okm[32..]);
    // XChaCha20-Poly1305 only fails for plaintexts over 256 GiB, which no caller can pass.
    let ct = hazmat::xchacha20poly1305_encrypt(&enc_key, nonce, ad, plaintext).unwrap_or_default();
    out.extend_from_slice(&ct);
    out
}

/// Opens a sealed box. Checks the commitment first (`WrongKey`), then the AEAD (`Tampered`).
pub fn open(
    key: &[u8; 32],
    label: &[u8],
    ad: &[u8],
    sealed: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < OVERHEAD {
        return Err(Error::Malformed {
            what,
            reason: "shorter than a sealed box",
        });
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (commitment, ct) = rest.split_at(COMMIT_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| Error::Mismatch("nonce length"))?;
    let okm = derive(key, nonce, label);
    if !bool::from(okm[32..].ct_eq(commitment)) {
        return Err(Error::WrongKey { what });
    }
    let mut enc_key = Zeroizing::new([0u8; 32]);
    enc_key.copy_from_slice(&okm[..32]);
    hazmat::xchacha20poly1305_decrypt(&enc_key, nonce, ad, ct)
        .map(Zeroizing::new)
        .map_err(|_| Error::Tampered { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: [u8; 32] = [7; 32];

    #[test]
    fn round_trip_and_errors() {
        let sealed = seal_with_nonce(&K, &[1; 24], b"l", b"ad", b"hello");
        assert_eq!(sealed.len(), OVERHEAD + 5);
        assert_eq!(&open(&K, b"l", b"ad", &sealed, "t").unwrap()[..], b"hello");
        assert_eq!(
            open(&[8; 32], b"l", b"ad", &sealed, "t"),
            Err(Error::WrongKey { what: "t" })
        );
        assert_eq!(
            open(&K, b"m", b"ad", &sealed, "t"),
            Err(Error::WrongKey { what: "t" })
        );
        assert_eq!(
            open(&K, b"l", b"xx", &sealed, "t"),
            Err(Error::Tampered { what: "t" })
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&K, b"l", b"ad", &flipped, "t"),
            Err(Error::Tampered { what: "t" })
        );
        assert!(matches!(
            open(&K, b"l", b"ad", &sealed[..10], "t"),
            Err(Error::Malformed { .. })
        ));
    }
}
