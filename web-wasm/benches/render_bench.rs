//! The navigation step's local work, measured natively and in WebAssembly (node): markdown →
//! HTML for a 4 KiB and a 100 KiB page, and `WikiSession::view` (manifest check, decryption,
//! rendering and the JSON handed to JavaScript) on the same pages. Timed loops that print their
//! figures; nothing is asserted about time. A bench target, so normal test runs never build it.
//!
//! ```text
//! # native
//! cargo test --release -p web-wasm --bench render_bench -- --nocapture
//! # WebAssembly under node, with the web app's own profile (wasm-release)
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test \
//!   --profile wasm-release --target wasm32-unknown-unknown -p web-wasm --bench render_bench -- --nocapture
//! ```

// A benchmark whose setup fails must stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;

use client::Workspace;
use core_crypto::identity::UserIdentity;
use core_crypto::ids::Digest32;
use core_crypto::keyring::{KeyringDraft, MemberKind};
use core_crypto::snapshot::{SeenRecord, Snapshot};
use rand_core::OsRng;
use web_wasm::links::PageIndex;
use web_wasm::render::{Context, render_page};
use web_wasm::session::WikiSession;

#[cfg(target_arch = "wasm32")]
mod clock {
    use wasm_bindgen::prelude::wasm_bindgen;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
    }

    pub fn now_ms() -> f64 {
        performance_now()
    }

    macro_rules! say { ($($t:tt)*) => { wasm_bindgen_test::console_log!($($t)*) } }
    pub(crate) use say;
}

#[cfg(not(target_arch = "wasm32"))]
mod clock {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub fn now_ms() -> f64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
    }

    macro_rules! say { ($($t:tt)*) => { println!($($t)*) } }
    pub(crate) use say;
}

use clock::{now_ms, say};

#[cfg(not(target_arch = "wasm32"))]
use core::prelude::v1::test as bench;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as bench;

/// Runs `op` for at least `min_ms` (after a warm-up) and prints the median and best of batches.
fn measure(name: &str, mut op: impl FnMut()) {
    let warm = now_ms();
    while now_ms() - warm < 300.0 {
        op();
    }
    let mut samples = Vec::new();
    let start = now_ms();
    while now_ms() - start < 2000.0 || samples.len() < 10 {
        let t = now_ms();
        op();
        samples.push(now_ms() - t);
    }
    samples.sort_by(f64::total_cmp);
    say!(
        "render_bench {name}: median {:.3} ms, min {:.3} ms ({} runs)",
        samples[samples.len() / 2],
        samples[0],
        samples.len()
    );
}

/// The browser benchmark's page (web-wasm/tests/browser_bench.rs): headings, paragraphs with
/// links, lists, task lists, a table and a code block per section.
fn page_of(size: usize, title: &str) -> String {
    let mut s = format!("---\ntitle: {title}\ntags: [bench]\n---\n# {title}\n\n");
    let mut i = 0;
    while s.len() < size {
        i += 1;
        let _ = write!(
            s,
            "## Section {i}\n\nThe wiki keeps *notes*, **plans** and `code` for [[Home]] and [[Other]]; \
             see [the spec](https://example.org/spec/{i}) and [[Missing {i}]]. Lorem ipsum dolor sit \
             amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.\n\n\
             - item one with a [link](Other.md)\n- item two ~~struck~~\n- [x] done thing {i}\n\n\
             | key | value |\n|-----|------:|\n| alpha | {i} |\n| beta | {} |\n\n\
             ```rust\nfn section_{i}() -> u32 {{ {i} }}\n```\n\n",
            i * 7
        );
    }
    s
}

#[bench]
fn render_markdown() {
    let paths: Vec<String> = ["Home.md", "Other.md", "Small.md", "Large.md"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..27).map(|i| format!("notes/Note {i}.md")))
        .collect();
    let index = PageIndex::new(paths.iter().map(String::as_str));
    let ctx = Context {
        pages: &index,
        current: "Large.md",
        route: "#/w/0123456789abcdef0123456789abcdef/p/",
    };
    for (name, size) in [("4KiB", 4 * 1024), ("100KiB", 100 * 1024)] {
        let text = page_of(size, name);
        measure(&format!("render {name} ({} B)", text.len()), || {
            black_box(render_page(black_box(&text), &ctx));
        });
    }
}

#[bench]
fn session_view() {
    let me = UserIdentity::make(&mut OsRng);
    let genesis = KeyringDraft::genesis(&mut OsRng, &me, "bench", MemberKind::Person)
        .unwrap()
        .sign(&mut OsRng, &me)
        .unwrap();
    let snap = Snapshot::genesis(genesis.clone(), &me).unwrap();
    let keyrings = vec![genesis.as_bytes().to_vec()];
    let mut ws = Workspace::verify_and_open(
        &me,
        "bench",
        genesis.wiki,
        &keyrings,
        snap.state.as_bytes(),
        &snap.manifest.encode(),
        &SeenRecord::default(),
        &[],
    )
    .unwrap();
    let mut pages = Vec::new();
    for (path, size) in [("Small.md", 4 * 1024), ("Large.md", 100 * 1024)] {
        let text = page_of(size, path);
        let pending = ws
            .prepare_put(None, path, text.into_bytes(), None, 0)
            .unwrap();
        let page = pending.page.unwrap();
        let blobs = pending.commit().blobs.clone();
        ws.accept(pending).unwrap();
        let hash = ws.pages()[&page].hash;
        let envelope = blobs.into_iter().find(|b| Digest32::of(b) == hash).unwrap();
        pages.push((path, page.to_hex(), envelope));
    }
    let mut session = WikiSession::new(ws);
    for (path, id, envelope) in &pages {
        measure(
            &format!("view {path} ({} B envelope)", envelope.len()),
            || {
                black_box(session.view(id, envelope).unwrap());
            },
        );
    }
}
