//! Public identifiers: wiki ids, page ids, scope ids and SHA-256 digests.
//!
//! None of these is secret. Their text form is lowercase hex, the only form the server and git paths
//! use; parsing accepts exactly that (no uppercase, no prefix), so one id has one spelling.

use sha2::{Digest, Sha256};

use crate::{Error, Result};

macro_rules! byte_id {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Parses the lowercase-hex text form.
            pub fn from_hex(text: &str) -> Result<Self> {
                let bad = Error::Malformed { what: $what, reason: concat!("expected ", stringify!($len), " bytes as lowercase hex") };
                if text.len() != 2 * $len || !text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(bad);
                }
                let bytes = $crate::codec::unhex(text.as_bytes()).map_err(|_| bad.clone())?;
                Ok(Self(bytes.try_into().map_err(|_| bad)?))
            }

            /// The lowercase-hex text form.
            pub fn to_hex(&self) -> String {
                $crate::codec::hex(&self.0)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl core::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::from_hex(s)
            }
        }
    };
}

byte_id!(
    /// A wiki's id: the first 16 bytes of `SHA-256(WIKI_ID label ‖ creator Ed25519 key ‖ nonce)`, so
    /// a wiki id commits to the key of the owner who created it.
    WikiId, 16, "wiki id"
);
byte_id!(
    /// A page's id: 16 random bytes chosen when the page is created; it says nothing about the page.
    PageId, 16, "page id"
);
byte_id!(
    /// A scope's public id, derived from the scope secret (see [`crate::keyring`]).
    ScopeId, 16, "scope id"
);
byte_id!(
    /// A SHA-256 digest of our own bytes (never a git object id).
    Digest32, 32, "SHA-256 digest"
);

impl PageId {
    /// A fresh random page id.
    pub fn random(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

impl ScopeId {
    /// The scope id members with whole-wiki access carry in the keyring.
    pub const WHOLE_WIKI: ScopeId = ScopeId([0; 16]);
}

impl Digest32 {
    /// All zero: "no previous version".
    pub const ZERO: Digest32 = Digest32([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_strictness() {
        let id = PageId([0xab; 16]);
        assert_eq!(PageId::from_hex(&id.to_hex()).unwrap(), id);
        assert!(PageId::from_hex(&id.to_hex().to_uppercase()).is_err());
        assert!(PageId::from_hex("../../etc/passwd").is_err());
        assert!(PageId::from_hex("").is_err());
        assert!(WikiId::from_hex(&"0".repeat(31)).is_err());
        assert!(Digest32::from_hex(&"0".repeat(64)).is_ok());
    }
}
