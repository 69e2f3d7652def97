//! Wycheproof vectors (C2SP/wycheproof, `testvectors_v1/`, copied into `tests/data/wycheproof/`)
//! run through [`core_crypto::hazmat`], the primitives exactly as the core calls them.
//!
//! Every file's vectors are counted: a test asserts that the number of vectors it ran equals the
//! file's `numberOfTests` minus the skips it names below, each with its reason, so no vector can be
//! dropped silently. Valid vectors must give the exact output; invalid ones must be rejected.
//!
//! The JSON is embedded with `include_str!`, so the same tests run natively and in WebAssembly
//! (`wasm-bindgen-test` under node).

// Test helpers outside `#[test]` functions may panic too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use core_crypto::hazmat;
use serde::Deserialize;

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .unwrap_or_else(|e| panic!("bad hex in a vector file: {e}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File<G> {
    algorithm: String,
    number_of_tests: usize,
    test_groups: Vec<G>,
}

// ---------------------------------------------------------------------------------------------
// AEAD: XChaCha20-Poly1305 and ChaCha20-Poly1305
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadGroup {
    iv_size: usize,
    key_size: usize,
    tag_size: usize,
    tests: Vec<AeadTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadTest {
    tc_id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
    flags: Vec<String>,
}

/// What a vector file yielded: how many ran, and which were skipped (tcId, reason).
#[derive(Default, Debug)]
struct Tally {
    ran: usize,
    valid: usize,
    rejected: usize,
    skipped: Vec<(u32, &'static str)>,
}

impl Tally {
    fn assert_complete(&self, number_of_tests: usize, expected_skips: usize) {
        assert_eq!(
            self.skipped.len(),
            expected_skips,
            "unexpected skips: {:?}",
            self.skipped
        );
        assert_eq!(
            self.ran + self.skipped.len(),
            number_of_tests,
            "every vector must run or be a named skip: {self:?}"
        );
        assert_eq!(self.ran, self.valid + self.rejected);
    }
}

/// Skip reason for AEAD vectors whose nonce length the typed API cannot take.
const SKIP_NONCE_SIZE: &str = "nonce of another length: the API takes &[u8; 24] (XChaCha) or \
     &[u8; 12] (ChaCha), so such a nonce cannot reach the primitive (the slice-to-array \
     conversion fails, which the harness checks)";

type Encrypt<const N: usize> =
    fn(&[u8; 32], &[u8; N], &[u8], &[u8]) -> Result<Vec<u8>, hazmat::PrimitiveError>;

fn run_aead<const N: usize>(json: &str, encrypt: Encrypt<N>, decrypt: Encrypt<N>) -> Tally {
    let file: File<AeadGroup> = serde_json::from_str(json).expect("vector file parses");
    let mut tally = Tally::default();
    for group in &file.test_groups {
        assert_eq!((group.key_size, group.tag_size), (256, 128));
        for t in &group.tests {
            let (key, iv, aad, msg, ct, tag) = (
                hex(&t.key),
                hex(&t.iv),
                hex(&t.aad),
                hex(&t.msg),
                hex(&t.ct),
                hex(&t.tag),
            );
            assert_eq!(iv.len() * 8, group.iv_size, "tc {}", t.tc_id);
            let Ok(nonce) = <[u8; N]>::try_from(iv.as_slice()) else {
                assert_eq!(t.result, "invalid", "tc {}", t.tc_id);
                assert!(t.flags.iter().any(|f| f == "InvalidNonceSize"));
                tally.skipped.push((t.tc_id, SKIP_NONCE_SIZE));
                continue;
            };
            let key: [u8; 32] = key.as_slice().try_into().expect("256-bit key");
            let mut ct_tag = ct.clone();
            ct_tag.extend_from_slice(&tag);
            tally.ran += 1;
            match t.result.as_str() {
                "valid" => {
                    let sealed = encrypt(&key, &nonce, &aad, &msg)
                        .unwrap_or_else(|_| panic!("tc {} encrypt failed", t.tc_id));
                    assert_eq!(sealed, ct_tag, "tc {} ciphertext", t.tc_id);
                    let opened = decrypt(&key, &nonce, &aad, &ct_tag)
                        .unwrap_or_else(|_| panic!("tc {} decrypt failed", t.tc_id));
                    assert_eq!(opened, msg, "tc {} plaintext", t.tc_id);
                    tally.valid += 1;
                }
                "invalid" => {
                    assert_eq!(
                        decrypt(&key, &nonce, &aad, &ct_tag),
                        Err(hazmat::PrimitiveError),
                        "tc {} must be rejected",
                        t.tc_id
                    );
                    tally.rejected += 1;
                }
                other => panic!("tc {}: unexpected result {other}", t.tc_id),
            }
        }
    }
    tally
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn xchacha20_poly1305() {
    let json = include_str!("data/wycheproof/xchacha20_poly1305_test.json");
    let file: File<AeadGroup> = serde_json::from_str(json).expect("parses");
    assert_eq!(file.algorithm, "XCHACHA20-POLY1305");
    let tally = run_aead::<24>(
        json,
        hazmat::xchacha20poly1305_encrypt,
        hazmat::xchacha20poly1305_decrypt,
    );
    // 315 vectors: 306 with a 24-byte nonce run; 9 `InvalidNonceSize` vectors are named skips.
    assert_eq!(file.number_of_tests, 315);
    tally.assert_complete(file.number_of_tests, 9);
    assert_eq!((tally.valid, tally.rejected), (246, 60));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn chacha20_poly1305() {
    let json = include_str!("data/wycheproof/chacha20_poly1305_test.json");
    let file: File<AeadGroup> = serde_json::from_str(json).expect("parses");
    assert_eq!(file.algorithm, "CHACHA20-POLY1305");
    let tally = run_aead::<12>(
        json,
        hazmat::chacha20poly1305_encrypt,
        hazmat::chacha20poly1305_decrypt,
    );
    // 325 vectors: 316 with a 12-byte nonce run; 9 `InvalidNonceSize` vectors are named skips.
    assert_eq!(file.number_of_tests, 325);
    tally.assert_complete(file.number_of_tests, 9);
    assert_eq!((tally.valid, tally.rejected), (256, 60));
}

// ---------------------------------------------------------------------------------------------
// HKDF-SHA256
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HkdfGroup {
    tests: Vec<HkdfTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HkdfTest {
    tc_id: u32,
    ikm: String,
    salt: String,
    info: String,
    size: usize,
    okm: String,
    result: String,
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn hkdf_sha256() {
    let json = include_str!("data/wycheproof/hkdf_sha256_test.json");
    let file: File<HkdfGroup> = serde_json::from_str(json).expect("parses");
    assert_eq!(file.algorithm, "HKDF-SHA-256");
    let mut tally = Tally::default();
    for group in &file.test_groups {
        for t in &group.tests {
            let (ikm, salt, info) = (hex(&t.ikm), hex(&t.salt), hex(&t.info));
            let mut out = vec![0u8; t.size];
            let result = hazmat::hkdf_sha256(&salt, &ikm, &info, &mut out);
            tally.ran += 1;
            match t.result.as_str() {
                "valid" => {
                    assert_eq!(result, Ok(()), "tc {}", t.tc_id);
                    assert_eq!(out, hex(&t.okm), "tc {} okm", t.tc_id);
                    tally.valid += 1;
                }
                "invalid" => {
                    assert_eq!(result, Err(hazmat::PrimitiveError), "tc {}", t.tc_id);
                    tally.rejected += 1;
                }
                other => panic!("tc {}: unexpected result {other}", t.tc_id),
            }
        }
    }
    assert_eq!(file.number_of_tests, 86);
    tally.assert_complete(file.number_of_tests, 0);
    assert_eq!((tally.valid, tally.rejected), (83, 3));
}

// ---------------------------------------------------------------------------------------------
// Ed25519 (strict verification)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EddsaGroup {
    public_key: EddsaKey,
    tests: Vec<EddsaTest>,
}

#[derive(Deserialize)]
struct EddsaKey {
    curve: String,
    pk: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EddsaTest {
    tc_id: u32,
    msg: String,
    sig: String,
    result: String,
}

/// Wycheproof "valid" Ed25519 vectors that strict verification rejects, with the reason. Empty
/// if every valid vector verifies; kept as an explicit list so a change shows up as a failure.
const ED25519_STRICT_REJECTS: &[(u32, &str)] = &[];

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn ed25519_strict() {
    let json = include_str!("data/wycheproof/ed25519_test.json");
    let file: File<EddsaGroup> = serde_json::from_str(json).expect("parses");
    assert_eq!(file.algorithm, "EDDSA");
    let mut tally = Tally::default();
    let mut strict_rejects = Vec::new();
    for group in &file.test_groups {
        assert_eq!(group.public_key.curve, "edwards25519");
        let pk: [u8; 32] = hex(&group.public_key.pk)
            .as_slice()
            .try_into()
            .expect("32-byte key");
        for t in &group.tests {
            let ok = hazmat::ed25519_verify(&pk, &hex(&t.msg), &hex(&t.sig));
            tally.ran += 1;
            match t.result.as_str() {
                "valid" => {
                    if ok {
                        tally.valid += 1;
                    } else {
                        strict_rejects.push(t.tc_id);
                        tally.rejected += 1;
                    }
                }
                "invalid" => {
                    assert!(!ok, "tc {} must be rejected", t.tc_id);
                    tally.rejected += 1;
                }
                other => panic!("tc {}: unexpected result {other}", t.tc_id),
            }
        }
    }
    let expected: Vec<u32> = ED25519_STRICT_REJECTS.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        strict_rejects, expected,
        "valid vectors rejected by strict verification"
    );
    assert_eq!(file.number_of_tests, 151);
    tally.assert_complete(file.number_of_tests, 0);
    assert_eq!((tally.valid, tally.rejected), (88, 63));
}

// ---------------------------------------------------------------------------------------------
// X25519
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct XdhGroup {
    curve: String,
    tests: Vec<XdhTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct XdhTest {
    tc_id: u32,
    public: String,
    private: String,
    shared: String,
    result: String,
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn x25519() {
    let json = include_str!("data/wycheproof/x25519_test.json");
    let file: File<XdhGroup> = serde_json::from_str(json).expect("parses");
    assert_eq!(file.algorithm, "XDH");
    let mut tally = Tally::default();
    for group in &file.test_groups {
        assert_eq!(group.curve, "curve25519");
        for t in &group.tests {
            let private: [u8; 32] = hex(&t.private).as_slice().try_into().expect("32 bytes");
            let public: [u8; 32] = hex(&t.public).as_slice().try_into().expect("32 bytes");
            // `hazmat::x25519` is the raw RFC 7748 function (the core only multiplies the base
            // point; age does its own contributory check). "acceptable" vectors (twist points,
            // low-order points giving an all-zero secret, non-canonical u) have a defined RFC 7748
            // output, which must come out exactly too.
            assert!(
                t.result == "valid" || t.result == "acceptable",
                "tc {}: {}",
                t.tc_id,
                t.result
            );
            assert_eq!(
                hazmat::x25519(&private, &public).to_vec(),
                hex(&t.shared),
                "tc {}",
                t.tc_id
            );
            tally.ran += 1;
            tally.valid += 1;
        }
    }
    assert_eq!(file.number_of_tests, 518);
    tally.assert_complete(file.number_of_tests, 0);
}
