//! The text encodings of the formats, written out here instead of a general encoding crate: the
//! browser bundle carries every bit width of a runtime-configurable encoder otherwise (about 20 KB
//! of gzipped WebAssembly for three fixed encodings).
//!
//! - [`hex`]/[`unhex`]: lowercase hex; decoding accepts lowercase only;
//! - [`base32`]/[`unbase32`]: RFC 4648 base32, uppercase, no padding;
//! - [`base64`]/[`unbase64`]: RFC 4648 §4 standard base64 with padding.
//!
//! Decoding is canonical: every input that decodes is exactly what encoding its output gives
//! (padding required, exact and only at the end, unused trailing bits zero). The tests check the
//! encoders and decoders against `data-encoding`, which these replace.

const HEX: &[u8; 16] = b"0123456789abcdef";
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Symbol values by byte (`NONE` for a byte not in the alphabet), so decoding a large body is
/// one lookup per character.
const fn reverse(alphabet: &[u8]) -> [u8; 256] {
    let mut table = [NONE; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
}
const NONE: u8 = 0xff;
static R32: [u8; 256] = reverse(B32);
static R64: [u8; 256] = reverse(B64);

/// Input that is not in the encoding (or not canonical in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// A fingerprint as people compare it: lowercase hex in groups of four (`1a2b 3c4d …`).
pub(crate) fn fingerprint_text(bytes: &[u8]) -> String {
    let hex = hex(bytes);
    hex.as_bytes()
        .chunks(4)
        .map(|c| core::str::from_utf8(c).unwrap_or("????"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes lowercase hex.
pub fn unhex(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(DecodeError),
    };
    if !text.len().is_multiple_of(2) {
        return Err(DecodeError);
    }
    text.chunks_exact(2)
        .map(|p| Ok((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// Decodes `text`, `bits`-wide symbols (values from `table`), into bytes; the bits left over must be
/// zero (canonical) and fewer than `bits`. No copy of the input is made (a recovery key goes
/// through here, and only the output is the caller's to zeroize).
fn pack(text: &[u8], bits: u32, table: &[u8; 256]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(text.len() * bits as usize / 8);
    let (mut acc, mut have) = (0u32, 0u32);
    for &c in text {
        let s = table[usize::from(c)];
        if s == NONE {
            return Err(DecodeError);
        }
        acc = (acc << bits) | u32::from(s);
        have += bits;
        if have >= 8 {
            have -= 8;
            out.push((acc >> have) as u8);
            acc &= (1 << have) - 1;
        }
    }
    if have >= bits || acc != 0 {
        return Err(DecodeError);
    }
    Ok(out)
}

/// `bytes` as `bits`-wide symbols of `alphabet` (the last one zero-filled), unpadded.
fn unpack(bytes: &[u8], bits: u32, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / bits as usize + 4);
    let (mut acc, mut have) = (0u32, 0u32);
    let mask = (1u32 << bits) - 1;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        have += 8;
        while have >= bits {
            have -= bits;
            out.push(alphabet[((acc >> have) & mask) as usize] as char);
        }
        acc &= (1 << have) - 1;
    }
    if have > 0 {
        out.push(alphabet[((acc << (bits - have)) & mask) as usize] as char);
    }
    out
}

/// RFC 4648 base32, uppercase, without padding.
pub fn base32(bytes: &[u8]) -> String {
    unpack(bytes, 5, B32)
}

/// Decodes unpadded RFC 4648 base32 (uppercase).
pub fn unbase32(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    pack(text, 5, &R32)
}

/// RFC 4648 §4 base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = unpack(bytes, 6, B64);
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

/// Decodes RFC 4648 §4 base64 with exact padding.
pub fn unbase64(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if !text.len().is_multiple_of(4) {
        return Err(DecodeError);
    }
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    pack(body, 6, &R64)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use data_encoding::{BASE32_NOPAD, BASE64, HEXLOWER};
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(hex(b"\x00\xffa"), "00ff61");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(unbase64(b"Zg==").unwrap(), b"f");
        assert_eq!(
            unbase64(b"Zh=="),
            Err(DecodeError),
            "non-zero trailing bits"
        );
        assert_eq!(unbase64(b"Zg"), Err(DecodeError), "padding required");
        assert_eq!(unbase64(b"Zg=A"), Err(DecodeError));
        assert_eq!(unbase64(b"Z==="), Err(DecodeError));
        assert_eq!(unhex(b"0A"), Err(DecodeError), "lowercase only");
        assert_eq!(unbase32(b"mzxw6"), Err(DecodeError), "uppercase only");
        assert_eq!(unbase32(b"M"), Err(DecodeError));
    }

    proptest! {
        #[test]
        fn encoders_match_data_encoding(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(hex(&bytes), HEXLOWER.encode(&bytes));
            prop_assert_eq!(base32(&bytes), BASE32_NOPAD.encode(&bytes));
            prop_assert_eq!(base64(&bytes), BASE64.encode(&bytes));
            prop_assert_eq!(unhex(hex(&bytes).as_bytes()).unwrap(), bytes.clone());
            prop_assert_eq!(unbase32(base32(&bytes).as_bytes()).unwrap(), bytes.clone());
            prop_assert_eq!(unbase64(base64(&bytes).as_bytes()).unwrap(), bytes);
        }

        /// The same answers as `data-encoding` for any text with padding at the end only;
        /// `data-encoding` also takes padded blocks in the middle (`AA==AAAA`), which these
        /// refuse: never a different decoding.
        #[test]
        fn decoders_accept_what_data_encoding_accepts(
            body in "[A-Za-z0-9+/]{0,24}",
            pad in "={0,3}",
            inner in "[A-Za-z0-9+/=]{0,24}",
        ) {
            let text = format!("{body}{pad}");
            let t = text.as_bytes();
            prop_assert_eq!(unhex(t).ok(), HEXLOWER.decode(t).ok());
            prop_assert_eq!(unbase32(t).ok(), BASE32_NOPAD.decode(t).ok());
            prop_assert_eq!(unbase64(t).ok(), BASE64.decode(t).ok());
            if let Ok(bytes) = unbase64(inner.as_bytes()) {
                prop_assert_eq!(Some(bytes), BASE64.decode(inner.as_bytes()).ok());
            }
        }
    }
}
