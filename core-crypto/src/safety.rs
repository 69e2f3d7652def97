//! Safety numbers: short digests of a wiki's current head and keyring that two members read to
//! each other over a channel they trust (as Signal's safety numbers), so a server that shows them
//! different views is caught even when no witness is configured.
//!
//! ```text
//! d = SHA-256(label ‖ wiki id (16) ‖ hash (32))      label = SAFETY_HEAD (hash of the state)
//!                                                     or SAFETY_KEYRING (hash of the keyring)
//! safety number = for i in 0..4: (d[5i..5i+5] as a big-endian u40) mod 100000,
//!                 as 5 decimal digits; the four groups joined by spaces
//! ```
//!
//! Four groups of five digits carry about 66 bits: enough that nobody can make two different
//! states show the same number, short enough to read aloud.

use sha2::{Digest, Sha256};

use crate::ids::{Digest32, WikiId};
use crate::labels;

/// Groups of five digits in a safety number.
const GROUPS: usize = 4;

fn number(label: &[u8], wiki: &WikiId, hash: &Digest32) -> String {
    let mut h = Sha256::new();
    h.update(label);
    h.update(wiki.as_bytes());
    h.update(hash.as_bytes());
    let d = h.finalize();
    // Digits written out rather than `format!("{:05}")`: the browser bundle then carries no
    // padded-integer formatting for this one use.
    let mut out = String::with_capacity(GROUPS * 6);
    for (i, c) in d.chunks_exact(5).take(GROUPS).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) % 100_000;
        for place in [10_000, 1_000, 100, 10, 1] {
            out.push(char::from(b'0' + (v / place % 10) as u8));
        }
    }
    out
}

/// The safety number of a wiki's head: the state whose SHA-256 is `state_hash`.
pub fn head(wiki: &WikiId, state_hash: &Digest32) -> String {
    number(labels::SAFETY_HEAD, wiki, state_hash)
}

/// The safety number of a wiki's keyring version whose SHA-256 is `keyring_hash`.
pub fn keyring(wiki: &WikiId, keyring_hash: &Digest32) -> String {
    number(labels::SAFETY_KEYRING, wiki, keyring_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_groups_of_five_digits_that_differ_by_label_and_input() {
        let w = WikiId([1; 16]);
        let a = head(&w, &Digest32([2; 32]));
        assert_eq!(a.len(), 23);
        assert!(
            a.split(' ')
                .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_ne!(a, keyring(&w, &Digest32([2; 32])));
        assert_ne!(a, head(&w, &Digest32([3; 32])));
        assert_ne!(a, head(&WikiId([9; 16]), &Digest32([2; 32])));
    }
}
