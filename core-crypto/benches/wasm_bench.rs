//! The crypto core's seal/open and bulk AEAD measured in WebAssembly (node), where criterion
//! cannot run. Each `#[wasm_bindgen_test]` below is a timed loop (0.5 s warm-up, then at least 3 s
//! and 10 iterations) that prints its figures; nothing is asserted about time. It is a bench
//! target, so the normal test run never builds it. Run it, optimised, with:
//!
//! ```text
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test --release --target wasm32-unknown-unknown -p core-crypto --bench wasm_bench -- --nocapture
//! ```
//!
//! Natively this target is empty (`cargo bench` runs `benches/core.rs` instead).

#![cfg(target_arch = "wasm32")]
// A benchmark whose operation fails must stop loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use core_crypto::envelope::{self, PageKind, PageRecord};
use core_crypto::hazmat;
use core_crypto::identity::UserIdentity;
use core_crypto::ids::{Digest32, PageId, ScopeId, WikiId};
use core_crypto::kdf::{KdfCost, KdfParams};
use core_crypto::keyring::{KeyringDraft, MemberKind};
use core_crypto::scope::EpochSecret;
use core_crypto::state::{Manifest, ManifestEntry, StateDraft, WikiState};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: milliseconds, sub-millisecond resolution in node.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Runs `op` in a timed loop and prints time per operation and, if `bytes` > 0, throughput.
fn measure(name: &str, bytes: usize, min_ms: f64, mut op: impl FnMut()) {
    let warm = performance_now();
    while performance_now() - warm < 500.0 {
        op();
    }
    let start = performance_now();
    let mut iterations = 0u64;
    let elapsed = loop {
        op();
        iterations += 1;
        let elapsed = performance_now() - start;
        if elapsed >= min_ms && iterations >= 10 {
            break elapsed;
        }
    };
    let per_op_ms = elapsed / iterations as f64;
    if bytes > 0 {
        let mb_s = bytes as f64 / (per_op_ms / 1000.0) / 1e6;
        console_log!(
            "wasm_bench {name}: {:.2} µs/op, {:.0} MB/s ({iterations} iterations)",
            per_op_ms * 1000.0,
            mb_s
        );
    } else {
        console_log!(
            "wasm_bench {name}: {:.3} ms/op ({iterations} iterations)",
            per_op_ms
        );
    }
}

fn page(len: usize) -> PageRecord {
    PageRecord {
        kind: PageKind::Markdown,
        path: "projects/zkwiki/benchmarks.md".into(),
        author: "alice".into(),
        written_at_ms: 1_764_320_400_000,
        note: Default::default(),
        content: (0..len).map(|i| b"abcdefghij\n"[i % 11]).collect(),
    }
}

#[wasm_bindgen_test]
fn envelope_seal_open() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let key = EpochSecret::from_bytes([7; 32]).derive_scope(1, "");
    let (wiki, id) = (WikiId([2; 16]), PageId([3; 16]));
    for (name, len) in [("4KiB", 4096), ("1MiB", 1024 * 1024)] {
        let record = page(len);
        measure(&format!("envelope/seal/{name}"), len, 3000.0, || {
            black_box(
                envelope::seal_page(&mut rng, &key, &wiki, &id, black_box(&record)).expect("seal"),
            );
        });
        let sealed = envelope::seal_page(&mut rng, &key, &wiki, &id, &record).expect("seal");
        measure(&format!("envelope/open/{name}"), len, 3000.0, || {
            black_box(envelope::open_page(&key, &wiki, &id, black_box(&sealed)).expect("open"));
        });
    }
}

#[wasm_bindgen_test]
fn xchacha20poly1305_bulk() {
    let (key, nonce) = ([9u8; 32], [4u8; 24]);
    let data = vec![0x5a; 1024 * 1024];
    let ct = hazmat::xchacha20poly1305_encrypt(&key, &nonce, b"", &data).expect("encrypt");
    measure("xchacha20poly1305/encrypt/1MiB", data.len(), 3000.0, || {
        black_box(hazmat::xchacha20poly1305_encrypt(&key, &nonce, b"", black_box(&data)).ok());
    });
    measure("xchacha20poly1305/decrypt/1MiB", data.len(), 3000.0, || {
        black_box(hazmat::xchacha20poly1305_decrypt(&key, &nonce, b"", black_box(&ct)).ok());
    });
}

#[wasm_bindgen_test]
fn state_verify_10000_pages() {
    let rng = &mut ChaCha20Rng::from_seed([5; 32]);
    let alice = UserIdentity::make(rng);
    let keyring = KeyringDraft::genesis(rng, &alice, "alice", MemberKind::Person)
        .and_then(|d| d.sign(rng, &alice))
        .expect("keyring");
    let mut manifest = Manifest::default();
    for _ in 0..10_000 {
        let mut hash = [0u8; 32];
        rng.fill_bytes(&mut hash);
        manifest.pages.insert(
            PageId::random(rng),
            ManifestEntry {
                epoch: 1,
                scope: ScopeId::WHOLE_WIKI,
                size: 4096,
                hash: Digest32(hash),
            },
        );
    }
    let state = StateDraft {
        seq: 2,
        manifest: manifest.digest(),
        prev: Digest32([1; 32]),
        ..StateDraft::first(&keyring)
    }
    .sign(&alice);
    let (manifest_bytes, state_bytes, seen) = (
        manifest.encode(),
        state.as_bytes().to_vec(),
        Some(state.seen()),
    );
    measure("state/verify_10000_pages", 0, 3000.0, || {
        let m = Manifest::decode(black_box(&manifest_bytes)).expect("manifest");
        let s = WikiState::decode(black_box(&state_bytes)).expect("state");
        s.verify(&keyring, &m, seen).expect("verifies");
    });
}

#[wasm_bindgen_test]
fn argon2id() {
    for (name, cost) in [("default", KdfParams::DEFAULT), ("floor", KdfParams::FLOOR)] {
        let KdfCost { m_kib, t, p } = cost;
        let params = KdfParams {
            m_kib,
            t,
            p,
            salt: [6; 16],
        };
        measure(&format!("argon2id/{name}"), 0, 2000.0, || {
            black_box(
                params
                    .derive(b"correct horse battery staple")
                    .expect("argon2"),
            );
        });
    }
}
