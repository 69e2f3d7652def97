//! The raw primitives, exactly as the core calls them.
//!
//! Exposed only so that public test vectors (Wycheproof) and benchmarks run through the same code
//! paths as the formats. Feature code must use [`crate::sealed`] and the format modules instead: a
//! raw AEAD here has no key commitment and no context binding.

#[cfg(feature = "hazmat")]
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::{Signature, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;

/// Opaque failure of a raw primitive (deliberately without detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimitiveError;

/// XChaCha20-Poly1305 encryption (draft-irtf-cfrg-xchacha-03): returns `ciphertext ‖ tag`.
pub fn xchacha20poly1305_encrypt(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, PrimitiveError> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .map_err(|_| PrimitiveError)
}

/// XChaCha20-Poly1305 decryption of `ciphertext ‖ tag`.
pub fn xchacha20poly1305_decrypt(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, PrimitiveError> {
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .map_err(|_| PrimitiveError)
}

#[cfg(feature = "hazmat")]
/// ChaCha20-Poly1305 (RFC 8439) encryption, the AEAD inside age's payload and header: returns
/// `ciphertext ‖ tag`.
pub fn chacha20poly1305_encrypt(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, PrimitiveError> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .map_err(|_| PrimitiveError)
}

#[cfg(feature = "hazmat")]
/// ChaCha20-Poly1305 (RFC 8439) decryption of `ciphertext ‖ tag`.
pub fn chacha20poly1305_decrypt(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, PrimitiveError> {
    ChaCha20Poly1305::new(key.into())
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .map_err(|_| PrimitiveError)
}

/// HKDF-SHA256 (RFC 5869) extract-then-expand into `out` (at most 255 × 32 bytes).
pub fn hkdf_sha256(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), PrimitiveError> {
    let salt = if salt.is_empty() { None } else { Some(salt) };
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, out)
        .map_err(|_| PrimitiveError)
}

/// Ed25519 verification (RFC 8032) in strict mode: rejects non-canonical encodings and small-order
/// public keys, so one message has one valid signature per key.
pub fn ed25519_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(message, &sig).is_ok()
}

/// X25519 (RFC 7748) scalar multiplication. The core calls it with the base point only, to derive
/// an age recipient from its identity.
pub fn x25519(scalar: &[u8; 32], point: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*scalar, *point)
}
