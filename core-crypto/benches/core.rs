//! Criterion benchmarks of the crypto core (native). Figures and the exact command are in
//! `docs/benchmarks.md` ("Crypto core"):
//!
//! ```text
//! cargo bench -p core-crypto --bench core -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `envelope/seal` and `envelope/open`: a 4 KiB and a 1 MiB markdown page, through
//!   `envelope::seal_page` / `envelope::open_page` (record encoding, PADMÉ, HKDF, commitment, AEAD);
//! - `xchacha20poly1305`: the raw AEAD (`hazmat`) on 1 MiB, the bulk throughput figure;
//! - `overhead`: a 1 MiB copy and a 1 MiB zeroize, what the envelope adds to the raw AEAD;
//! - `state/verify_10000_pages`: what a client does on fetching the head of a 10,000-page wiki
//!   (`Manifest::decode`, `WikiState::decode`, `WikiState::verify`, which hashes the manifest);
//! - `index`: a 10,000-page search index (wiki-like text, a Zipf vocabulary of 20,000 words):
//!   `decode` (what `ls` and `cat` pay), `decode + search` (what the first search pays: the terms
//!   are built on first use), `decode + insert` (what a `put` pays while the index lags);
//! - `argon2id`: `KdfParams::derive` at `KdfParams::DEFAULT` and `KdfParams::FLOOR`.
//!
//! The same seal/open are measured in WebAssembly by `benches/wasm_bench.rs`.

// A benchmark that cannot set up or whose operation fails must stop loudly.
#![allow(clippy::expect_used)]

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use core_crypto::envelope::{self, PageKind, PageRecord};
    use core_crypto::hazmat;
    use core_crypto::identity::UserIdentity;
    use core_crypto::ids::{Digest32, PageId, ScopeId};
    use core_crypto::index::SearchIndex;
    use core_crypto::kdf::{KdfCost, KdfParams};
    use core_crypto::keyring::{KeyringDraft, MemberKind};
    use core_crypto::scope::EpochSecret;
    use core_crypto::state::{Manifest, ManifestEntry, StateDraft, WikiState};
    use criterion::{BenchmarkId, Criterion, Throughput};
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    const SIZES: [(&str, usize); 2] = [("4KiB", 4096), ("1MiB", 1024 * 1024)];

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

    pub fn envelope(c: &mut Criterion) {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let key = EpochSecret::from_bytes([7; 32]).derive_scope(1, "");
        let wiki = core_crypto::ids::WikiId([2; 16]);
        let id = PageId([3; 16]);
        let mut group = c.benchmark_group("envelope");
        for (name, len) in SIZES {
            let record = page(len);
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::new("seal", name), |b| {
                b.iter(|| {
                    envelope::seal_page(&mut rng, &key, &wiki, &id, black_box(&record))
                        .expect("seal")
                })
            });
            let sealed = envelope::seal_page(&mut rng, &key, &wiki, &id, &record).expect("seal");
            group.bench_function(BenchmarkId::new("open", name), |b| {
                b.iter(|| envelope::open_page(&key, &wiki, &id, black_box(&sealed)).expect("open"))
            });
        }
        group.finish();
    }

    pub fn aead(c: &mut Criterion) {
        let key = [9u8; 32];
        let nonce = [4u8; 24];
        let data = vec![0x5a; 1024 * 1024];
        let ct = hazmat::xchacha20poly1305_encrypt(&key, &nonce, b"", &data).expect("encrypt");
        let mut group = c.benchmark_group("xchacha20poly1305");
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function("encrypt/1MiB", |b| {
            b.iter(|| hazmat::xchacha20poly1305_encrypt(&key, &nonce, b"", black_box(&data)))
        });
        group.bench_function("decrypt/1MiB", |b| {
            b.iter(|| hazmat::xchacha20poly1305_decrypt(&key, &nonce, b"", black_box(&ct)))
        });
        group.finish();
    }

    /// What `envelope` adds on top of the raw AEAD for a large page: copying the content into
    /// the padded record and out of it, and wiping each plaintext buffer (zeroize writes byte by
    /// byte through volatile stores).
    pub fn overheads(c: &mut Criterion) {
        let data = vec![0x5a_u8; 1024 * 1024];
        let mut group = c.benchmark_group("overhead");
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function("copy/1MiB", |b| b.iter(|| black_box(&data).to_vec()));
        group.bench_function("zeroize/1MiB", |b| {
            let mut buf = data.clone();
            b.iter(|| zeroize::Zeroize::zeroize(black_box(buf.as_mut_slice())))
        });
        group.finish();
    }

    pub fn state(c: &mut Criterion) {
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
                    size: 4096 + (rng.next_u32() % 4096),
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
        let manifest_bytes = manifest.encode();
        let state_bytes = state.as_bytes().to_vec();
        let seen = Some(state.seen());
        let mut group = c.benchmark_group("state");
        group.throughput(Throughput::Elements(10_000));
        group.bench_function("verify_10000_pages", |b| {
            b.iter(|| {
                let m = Manifest::decode(black_box(&manifest_bytes)).expect("manifest");
                let s = WikiState::decode(black_box(&state_bytes)).expect("state");
                s.verify(&keyring, &m, seen).expect("verifies");
                m
            })
        });
        group.bench_function("manifest_digest_10000_pages", |b| {
            b.iter(|| black_box(&manifest).digest())
        });
        group.finish();
    }

    /// A wiki-like 10,000-page index: ~300 words a page from a Zipf vocabulary of 20,000.
    fn wiki_index(rng: &mut ChaCha20Rng) -> SearchIndex {
        let vocab: Vec<String> = (0..20_000).map(|i| format!("w{i:x}q")).collect();
        // Zipf by inverse transform on the harmonic weights' running sum.
        let mut cumulative = Vec::with_capacity(vocab.len());
        let mut sum = 0.0f64;
        for i in 0..vocab.len() {
            sum += 1.0 / (i + 1) as f64;
            cumulative.push(sum);
        }
        let mut ix = SearchIndex::new();
        for n in 0..10_000 {
            let words: Vec<&str> = (0..300)
                .map(|_| {
                    let x = (rng.next_u64() as f64 / u64::MAX as f64) * sum;
                    let k = cumulative.partition_point(|c| *c < x).min(vocab.len() - 1);
                    vocab[k].as_str()
                })
                .collect();
            let mut record = page(0);
            record.path = format!("area{:02}/topic{}/page-{n:05}.md", n % 20, n % 5);
            record.content = words.join(" ").into_bytes();
            ix.insert(PageId::random(rng), &record, Digest32([7; 32]));
        }
        ix
    }

    pub fn index(c: &mut Criterion) {
        let rng = &mut ChaCha20Rng::from_seed([9; 32]);
        let bytes = wiki_index(rng).encode().expect("encodes");
        let extra = page(4096);
        let mut group = c.benchmark_group("index");
        group.sample_size(20);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("decode_10000_pages", |b| {
            b.iter(|| SearchIndex::decode(black_box(&bytes)).expect("decodes"))
        });
        group.bench_function("decode_and_search_10000_pages", |b| {
            b.iter(|| {
                let ix = SearchIndex::decode(black_box(&bytes)).expect("decodes");
                ix.search("w1fq w2*").len()
            })
        });
        group.bench_function("decode_and_insert_10000_pages", |b| {
            b.iter(|| {
                let mut ix = SearchIndex::decode(black_box(&bytes)).expect("decodes");
                ix.insert(PageId([3; 16]), &extra, Digest32([8; 32]));
                ix
            })
        });
        group.finish();
    }

    pub fn argon2(c: &mut Criterion) {
        let mut group = c.benchmark_group("argon2id");
        group.sample_size(10);
        for (name, cost) in [("default", KdfParams::DEFAULT), ("floor", KdfParams::FLOOR)] {
            let KdfCost { m_kib, t, p } = cost;
            let params = KdfParams {
                m_kib,
                t,
                p,
                salt: [6; 16],
            };
            group.bench_function(
                BenchmarkId::new(name, format!("m={m_kib}KiB,t={t},p={p}")),
                |b| b.iter(|| params.derive(black_box(b"correct horse battery staple"))),
            );
        }
        group.finish();
    }

    criterion::criterion_group!(benches, envelope, aead, overheads, state, index, argon2);
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

/// Criterion does not run in WebAssembly; see `benches/wasm_bench.rs`.
#[cfg(target_arch = "wasm32")]
fn main() {}
