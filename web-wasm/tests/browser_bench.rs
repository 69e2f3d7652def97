//! Browser benchmarks (not timed tests: `#[ignore]`d, run on demand), in headless Chromium
//! against the real server: login to the first rendered page, page-to-page navigation (fetch,
//! verify, decrypt, render) for a 4 KiB and a 100 KiB page, search as you type, and the size of
//! the WebAssembly bundle. Prints a markdown table and writes it to
//! `target/artifacts/browser-bench.md`.
//!
//! ```sh
//! cargo build --release -p server
//! ZKWIKI_SERVER_BIN=target/release/zkwiki-server \
//!   cargo test -p web-wasm --test browser_bench -- --ignored --nocapture
//! ```

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write as _;

use serde_json::{Value, json};
use support::{Browser, Server, target_dir, web_dir};

const PASS: &str = "benchmark passphrase";

/// A markdown page of about `size` bytes: headings, paragraphs with links, lists, a table, code.
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

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.5), pct(0.95), v[0])
}

async fn write_page(b: &Browser, wiki: &str, path: &str, text: &str) {
    b.route(&format!("#/w/{wiki}/new?path={path}")).await;
    b.wait("#editor").await;
    b.set_value("#editor", text).await;
    b.click("#save").await;
    b.wait_js(&format!(
        "location.hash.includes('/p/') && document.getElementById('page-title') && window.zkwikiTest.pageId({path:?})"
    ))
    .await;
}

/// Navigates to `path` and resolves when the page is rendered: `{view, paint, complete}` in ms,
/// where `view` is fetch + verify + decrypt + render + DOM insertion of the page's first screens
/// (measured in the app), `paint` also waits for the next animation frame, and `complete` is
/// `view` until the rest of a long page is in the DOM too (the app appends it after that frame).
const NAVIGATE: &str = r#"
const [wiki, path, done] = arguments;
const t0 = performance.now();
window.zkwikiLastCompleteMs = null;
const complete = () => new Promise((resolve) => {
  const poll = () => (window.zkwikiLastCompleteMs != null ? resolve() : setTimeout(poll, 1));
  poll();
});
let paint;
new Promise((resolve) => { window.zkwikiOnView = resolve; })
  .then(() => new Promise((r) => requestAnimationFrame(() => r())))
  .then(() => { paint = performance.now() - t0; })
  .then(complete)
  .then(() => {
    // The page fetch as the network stack saw it: request sent → first byte of the answer.
    const r = performance.getEntriesByType('resource').filter((e) => e.name.includes('/pages/')).pop();
    performance.clearResourceTimings();
    done({
      view: window.zkwikiLastViewMs,
      paint,
      complete: window.zkwikiLastCompleteMs,
      parts: {
        ...window.zkwikiLastViewParts,
        rest: window.zkwikiLastRestMs,
        server: r ? r.responseStart - r.requestStart : 0,
      },
    });
  });
location.hash = `#/w/${wiki}/p/${path}`;
"#;

/// Makes `n` different PNGs of random pixels (about 1 MiB each: noise does not compress) in the
/// page with a canvas, and drops them on the open page as attachments; resolves with their sizes
/// once all are saved.
const DROP_IMAGES: &str = r#"
const [n, done] = arguments;
const side = 552;
const files = [];
for (let i = 0; i < n; i++) {
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(side, side);
  for (let off = 0; off < img.data.length; off += 65536) {
    crypto.getRandomValues(img.data.subarray(off, Math.min(off + 65536, img.data.length)));
  }
  for (let p = 3; p < img.data.length; p += 4) img.data[p] = 255;
  ctx.putImageData(img, 0, 0);
  const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
  files.push(new File([blob], `photo-${i}.png`, { type: 'image/png' }));
}
const dt = new DataTransfer();
for (const f of files) dt.items.add(f);
const main = document.getElementById('main');
main.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
main.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
const poll = () => (document.querySelectorAll('#attachments li').length === n
  ? done(files.map((f) => f.size)) : setTimeout(poll, 20));
poll();
"#;

/// Opens an image attachment and resolves once the browser has decoded it: `{total, fetch,
/// wasm}` in ms, where `fetch` is the envelope's download, `wasm` its verification and
/// decryption, and `total` runs from the navigation to the decoded image (so `total - fetch` is
/// the time to open it once its blob is fetched).
const OPEN_IMAGE: &str = r#"
const [wiki, path, done] = arguments;
const t0 = performance.now();
new Promise((resolve) => { window.zkwikiOnView = resolve; })
  .then(() => document.getElementById('attachment-view').decode())
  .then(() => done({ total: performance.now() - t0, ...window.zkwikiLastViewParts }));
location.hash = `#/w/${wiki}/p/${path}`;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored (see the file's doc)"]
async fn browser_benchmarks() {
    let server = Server::start("bench");
    let base = server.base.clone();
    let b = Browser::start().await;
    b.client.goto(&format!("{base}/#/register")).await.unwrap();
    b.fill("#reg-user", "bench").await;
    b.fill("#reg-pass", PASS).await;
    b.fill("#reg-pass2", PASS).await;
    b.click("#reg-submit").await;
    b.wait("#recovery-key").await;
    b.click("#saved-recovery").await;
    b.click("#recovery-continue").await;
    b.click("#create-wiki").await;
    b.click("#wiki-create-ok").await;
    b.wait_js("document.getElementById('page-title')").await;
    let wiki = b.js("return window.zkwikiTest.wiki();").await;
    let wiki = wiki.as_str().unwrap().to_owned();

    let small = page_of(4 * 1024, "Small");
    let large = page_of(100 * 1024, "Large");
    write_page(&b, &wiki, "Other.md", "# Other\n\nA short page.\n").await;
    write_page(&b, &wiki, "Small.md", &small).await;
    write_page(&b, &wiki, "Large.md", &large).await;
    for i in 0..27 {
        let text =
            format!("# Note {i}\n\nSome words about topic{i} and the shared keyword zebra.\n");
        write_page(&b, &wiki, &format!("notes/Note {i}.md"), &text).await;
    }

    // Navigation: Other → Small → Other → Large …, measuring the moves to Small and Large.
    let mut nav: [(Vec<f64>, Vec<f64>, Vec<f64>); 2] = Default::default();
    let mut parts: [[Vec<f64>; 5]; 2] = Default::default();
    let rounds = 25;
    for round in 0..rounds + 3 {
        for (k, target) in ["Small.md", "Large.md"].iter().enumerate() {
            b.client
                .execute_async(NAVIGATE, vec![json!(wiki), json!("Other.md")])
                .await
                .unwrap();
            let r = b
                .client
                .execute_async(NAVIGATE, vec![json!(wiki), json!(target)])
                .await
                .unwrap();
            if round == rounds + 2 {
                println!("{target}: {}", r["parts"]);
            }
            if round >= 3 {
                nav[k].0.push(r["view"].as_f64().unwrap());
                nav[k].1.push(r["paint"].as_f64().unwrap());
                nav[k].2.push(r["complete"].as_f64().unwrap());
                for (i, part) in ["fetch", "server", "wasm", "dom", "rest"]
                    .iter()
                    .enumerate()
                {
                    parts[k][i].push(r["parts"][part].as_f64().unwrap_or(0.0));
                }
            }
        }
    }

    // Opening a 1 MiB image attachment, each one for the first time (no decoded copy cached).
    let images = 8;
    b.open_page(&wiki, "Other.md").await;
    let sizes = b
        .client
        .execute_async(DROP_IMAGES, vec![json!(images)])
        .await
        .unwrap();
    let image_bytes = sizes[0].as_f64().unwrap();
    let (mut image_open, mut image_wasm) = (Vec::new(), Vec::new());
    for i in 0..images {
        b.open_page(&wiki, "Other.md").await;
        let r = b
            .client
            .execute_async(
                OPEN_IMAGE,
                vec![json!(wiki), json!(format!("Other/photo-{i}.png"))],
            )
            .await
            .unwrap();
        let (total, fetch) = (r["total"].as_f64().unwrap(), r["fetch"].as_f64().unwrap());
        image_open.push(total - fetch);
        image_wasm.push(r["wasm"].as_f64().unwrap());
    }

    // Search as you type over the index (30 pages), per keystroke.
    let mut search = Vec::new();
    for q in [
        "z", "ze", "zeb", "zebr", "zebra", "t", "to", "top", "topi", "topic1",
    ] {
        b.fill("#search", "").await;
        let ms = b
            .js(&format!(
                "const s = document.getElementById('search'); s.value = {q:?}; \
                 s.dispatchEvent(new Event('input')); return window.zkwikiLastSearchMs;"
            ))
            .await;
        search.push(ms.as_f64().unwrap());
    }

    b.js("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); s.blur();").await;

    // Login to the first rendered page (Argon2id with the default 64 MiB, t = 3 included).
    let mut login = Vec::new();
    let mut kdf = Vec::new();
    for _ in 0..3 {
        b.click("#logout").await;
        b.wait("#login-user").await;
        b.fill("#login-user", "bench").await;
        b.fill("#login-pass", PASS).await;
        let marks: Value = b
            .client
            .execute_async(
                r#"const done = arguments[0];
                   document.getElementById('login-submit').click();
                   const poll = () => {
                     const m = Object.fromEntries(performance.getEntriesByType('mark').map((e) => [e.name, e.startTime]));
                     if (m['zk-first-page'] !== undefined && m['zk-login-start'] !== undefined) done(m);
                     else setTimeout(poll, 5);
                   };
                   poll();"#,
                vec![],
            )
            .await
            .unwrap();
        let at = |k: &str| marks[k].as_f64().unwrap();
        login.push(at("zk-first-page") - at("zk-login-start"));
        kdf.push(at("zk-key-derived") - at("zk-login-start"));
    }

    // App start (fresh page load: HTML, JS modules, wasm compile) to ready.
    let mut boot = Vec::new();
    for _ in 0..3 {
        b.client.goto(&format!("{base}/")).await.unwrap();
        let v = b.wait_js("window.zkwikiReadyAt").await;
        boot.push(v.as_f64().unwrap());
    }

    let wasm = web_dir().join("pkg").join("web_wasm_bg.wasm");
    let raw = std::fs::metadata(&wasm).unwrap().len();
    let gz = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&wasm)
        .output()
        .map(|o| o.stdout.len())
        .unwrap_or(0);
    let js: u64 = std::fs::read_dir(web_dir())
        .unwrap()
        .chain(std::fs::read_dir(web_dir().join("pkg")).unwrap())
        .filter_map(Result::ok)
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "js" || x == "css")
        })
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();

    let chrome = b.js("return navigator.userAgent;").await;
    let mut out = String::new();
    let row = |out: &mut String, name: &str, v: Vec<f64>| {
        let (p50, p95, min) = stats(v);
        let _ = writeln!(out, "| {name} | {p50:.1} | {p95:.1} | {min:.1} |");
    };
    let _ = writeln!(
        out,
        "| Measure (ms) | median | p95 | min |\n|---|---:|---:|---:|"
    );
    row(
        &mut out,
        "login → first rendered page (incl. Argon2id 64 MiB, t=3)",
        login,
    );
    row(
        &mut out,
        "  of which: passphrase → key (Argon2id in wasm)",
        kdf,
    );
    row(
        &mut out,
        &format!(
            "navigate to a 4 KiB page ({} B): fetch+verify+decrypt+render",
            small.len()
        ),
        nav[0].0.clone(),
    );
    row(
        &mut out,
        "  same, to the next painted frame",
        nav[0].1.clone(),
    );
    row(
        &mut out,
        "  same, until the whole page is in the DOM",
        nav[0].2.clone(),
    );
    row(
        &mut out,
        &format!(
            "navigate to a 100 KiB page ({} B): fetch+verify+decrypt+render",
            large.len()
        ),
        nav[1].0.clone(),
    );
    row(
        &mut out,
        "  same, to the next painted frame",
        nav[1].1.clone(),
    );
    row(
        &mut out,
        "  same, until the whole page is in the DOM",
        nav[1].2.clone(),
    );
    row(
        &mut out,
        &format!(
            "open a 1 MiB image attachment ({:.0} KB PNG) once its blob is fetched: verify+decrypt, show, decode",
            image_bytes / 1000.0
        ),
        image_open,
    );
    row(&mut out, "  of which: verify+decrypt (wasm)", image_wasm);
    row(
        &mut out,
        "search as you type, per keystroke (30 pages, index)",
        search,
    );
    row(
        &mut out,
        "app start: page load to ready (JS + wasm compile)",
        boot,
    );
    let _ = writeln!(
        out,
        "\n| Navigation parts, median (ms) | fetch | of which request → first byte | verify+decrypt+render (wasm) | DOM (first screens) | DOM (rest, after paint) |\n|---|---:|---:|---:|---:|---:|"
    );
    for (k, name) in ["4 KiB page", "100 KiB page"].iter().enumerate() {
        let m: Vec<f64> = parts[k].iter().map(|v| stats(v.clone()).0).collect();
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            m[0], m[1], m[2], m[3], m[4]
        );
    }
    let _ = writeln!(
        out,
        "\nWebAssembly bundle: {:.1} KB raw, {:.1} KB gzipped (gzip -9); JS + CSS: {:.1} KB raw.\n\nChromium: {}",
        raw as f64 / 1000.0,
        gz as f64 / 1000.0,
        js as f64 / 1000.0,
        chrome.as_str().unwrap_or("?")
    );
    println!("{out}");
    let dir = target_dir().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("browser-bench.md"), &out).unwrap();
    b.client.close().await.unwrap();
}
