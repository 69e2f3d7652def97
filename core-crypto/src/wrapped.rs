//! The stored form of a protector key wrapped by an external key service (AWS KMS).
//!
//! The wrapping itself happens outside this crate (`key-protector` calls KMS); the core only owns
//! the byte format, so the CLI, the key files and the server (which must match the key named at a
//! KMS login without talking to KMS) parse it the same way.
//!
//! ```text
//! "ZKKM" ‖ 0x01 ‖ u16 len ‖ key ARN (printable ASCII) ‖ u32 len ‖ KMS ciphertext blob
//! ```

use crate::wire::{Reader, Writer};
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"ZKKM";
const VERSION: u8 = 1;
const WHAT: &str = "KMS-wrapped key";

/// Longest key ARN accepted (AWS's limit for a key ARN is 2,048 characters).
pub const MAX_KEY_ARN: usize = 2048;
/// Longest KMS ciphertext blob accepted (KMS's own limit is 6,144 bytes).
pub const MAX_CIPHERTEXT: usize = 6144;

/// A key wrapped by a KMS key, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// The ARN of the KMS key that wrapped it (as KMS reported it, so unwrapping names the key).
    pub key_arn: String,
    /// KMS's ciphertext blob (opaque; only KMS can open it).
    pub ciphertext: Vec<u8>,
}

/// Checks a key id is something a KMS key can be named by: non-empty, bounded, printable ASCII.
pub fn check_key_arn(arn: &str) -> Result<()> {
    let bad = |reason| Error::Malformed { what: WHAT, reason };
    if arn.is_empty() {
        return Err(bad("empty key ARN"));
    }
    if arn.len() > MAX_KEY_ARN {
        return Err(bad("key ARN over 2,048 characters"));
    }
    if !arn.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("key ARN is not printable ASCII"));
    }
    Ok(())
}

impl WrappedKey {
    /// Encodes the stored form; fails if a field is over its limit.
    pub fn encode(&self) -> Result<Vec<u8>> {
        check_key_arn(&self.key_arn)?;
        if self.ciphertext.is_empty() || self.ciphertext.len() > MAX_CIPHERTEXT {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "ciphertext empty or over 6,144 bytes",
            });
        }
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.u16(self.key_arn.len() as u16);
        w.bytes(self.key_arn.as_bytes());
        w.u32(self.ciphertext.len() as u32);
        w.bytes(&self.ciphertext);
        Ok(w.buf)
    }

    /// Parses the stored form: every length checked, no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, WHAT);
        r.header(MAGIC, VERSION)?;
        let key_arn = r.str_u16()?.to_owned();
        check_key_arn(&key_arn)?;
        let ciphertext = r.bytes_u32(MAX_CIPHERTEXT)?.to_vec();
        if ciphertext.is_empty() {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "empty ciphertext",
            });
        }
        r.finish()?;
        Ok(Self {
            key_arn,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let w = WrappedKey {
            key_arn: "arn:aws:kms:eu-west-1:111122223333:key/abc".into(),
            ciphertext: vec![7; 184],
        };
        let bytes = w.encode().unwrap();
        assert_eq!(WrappedKey::decode(&bytes).unwrap(), w);
        let mut long = bytes.clone();
        long.push(0);
        assert!(WrappedKey::decode(&long).is_err(), "trailing byte");
        assert!(WrappedKey::decode(&bytes[..bytes.len() - 1]).is_err());
        let spaced = WrappedKey {
            key_arn: "arn with space".into(),
            ..w.clone()
        };
        assert!(spaced.encode().is_err());
        let empty = WrappedKey {
            ciphertext: vec![],
            ..w
        };
        assert!(empty.encode().is_err());
    }
}
