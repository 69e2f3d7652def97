//! Secret byte strings: zeroized on drop, compared in constant time, never printed.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 secret bytes. `Debug` prints `[REDACTED]`; `==` is constant time; the bytes are wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret32([u8; 32]);

impl Secret32 {
    /// Wraps bytes (the caller's copy should be zeroized by the caller).
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// Fresh random bytes.
    pub fn random(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self(b)
    }
    /// Reads from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(arr))
    }
    /// The secret bytes; keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Secret32 {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Secret32 {}

impl core::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret32([REDACTED])")
    }
}

/// Defines a named secret newtype over [`Secret32`] with the same guarantees.
macro_rules! secret_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(pub(crate) $crate::secret::Secret32);

        impl $name {
            /// Wraps 32 bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self($crate::secret::Secret32::new(bytes))
            }
            /// The secret bytes; keep the borrow short.
            pub fn expose(&self) -> &[u8; 32] {
                self.0.expose()
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }
    };
}
pub(crate) use secret_newtype;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let s = Secret32::new([0xab; 32]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(Secret32::new([1; 32]), Secret32::new([1; 32]));
        assert_ne!(Secret32::new([1; 32]), Secret32::new([2; 32]));
    }
}
