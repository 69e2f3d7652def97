//! What people coming from Otterwiki expect of a wiki's pages, end to end in headless Chromium
//! against the real server (issue 13):
//!
//! - attachments: uploaded with the file picker and by dropping files on a page, listed on the
//!   page, images and PDFs shown inline from object URLs of the decrypted bytes (nothing is
//!   fetched by name), downloaded byte for byte, renamed and deleted; opening one from the tree
//!   shows it;
//! - Otterwiki's `/Page/a/FILE` links and `![..](/Page/a/img.png)` embeds show the wiki's files;
//! - titles from front matter or the first heading, Otterwiki-style names in the tree, pages
//!   before folders, breadcrumbs that link.
//!
//! Accounts and seed pages are made by a test client in this process (`support::member`); the
//! browser signs in through the form. Screenshots go to `target/artifacts/screenshots/`.
//! Needs the built web app and server: run with `cargo xtask test` (see `support/mod.rs`).

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::member::Member;
use support::{Browser, Server, target_dir};

const ALICE_PASS: &str = "alice's long passphrase";

/// A 3×2 red PNG.
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x02\x08\x02\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\xf8\xcf\xc0\x00\x41\x0c\x70\x16\x00\x41\xd2\x05\xfb\x87\xf0\xb9\x48\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// A small PDF (the viewer need not render it: the test checks the bytes behind the frame).
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Records every Blob the app turns into an object URL (the CSP lets the page fetch nothing but
/// its own origin, so a test reads the Blob itself).
async fn record_blobs(b: &Browser) {
    b.js("window.zkBlobs = new Map(); const make = URL.createObjectURL;
          URL.createObjectURL = (blob) => { const url = make(blob); window.zkBlobs.set(url, blob); return url; };")
        .await;
}

/// The bytes and type of the Blob behind an object URL the app made (see [`record_blobs`]).
async fn blob_bytes(b: &Browser, url_expr: &str) -> (Vec<u8>, String) {
    let v = b
        .client
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 const blob = window.zkBlobs.get({url_expr});
                 if (!blob) done('no such object URL');
                 else blob.arrayBuffer().then((a) => done([[...new Uint8Array(a)], blob.type]), (e) => done(String(e)));"
            ),
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v.clone()).unwrap_or_else(|_| panic!("not bytes: {v}"))
}

/// Whether the page ever asked the network for something named like `name` (resource timing).
async fn fetched_by_name(b: &Browser, name: &str) -> bool {
    b.js(&format!(
        "return performance.getEntriesByType('resource').some((e) => e.name.toLowerCase().includes({:?}));",
        name.to_lowercase()
    ))
    .await
        == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_upload_view_download_rename_delete() {
    let server = Server::start("pages-attachments");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(
        &wiki,
        &mut ws,
        "Plan.md",
        "# Plan\n\nThe diagram:\n\n![Diagram](diagram.png)\n\nAnd [the report](Plan/report.pdf).\n",
    );

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    record_blobs(&b).await;
    b.open_page(&wiki, "Plan.md").await;
    // No attachment yet: the page offers to upload, the image is a placeholder.
    b.wait("#attach-button").await;
    assert!(b.text("#page-body").await.contains("[image: Diagram]"));

    // The file picker: a real file from disk, through the (visually hidden) input.
    let dir = target_dir()
        .join("tmp")
        .join(format!("web-e2e-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let png_path = dir.join("diagram.png");
    std::fs::write(&png_path, PNG).unwrap();
    let input = b.wait("#attach-input").await;
    input.send_keys(png_path.to_str().unwrap()).await.unwrap();
    b.wait_js("document.querySelectorAll('#attachments li').length === 1")
        .await;
    // Dropping a file on the page: a PDF.
    b.client
        .execute(
            "const [bytes] = arguments;
             const dt = new DataTransfer();
             dt.items.add(new File([new Uint8Array(bytes)], 'report.pdf', { type: 'application/pdf' }));
             const main = document.getElementById('main');
             main.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
             main.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![json!(PDF)],
        )
        .await
        .unwrap();
    b.wait_js("document.querySelectorAll('#attachments li').length === 2")
        .await;
    let listed = b.text("#attachments").await;
    assert!(
        listed.contains("diagram.png") && listed.contains("report.pdf"),
        "{listed}"
    );
    // Stored beside the page, the Otterwiki way, and readable by the CLI's core.
    let ws = alice.open(&wiki);
    assert!(ws.find("Plan/diagram.png").is_some() && ws.find("Plan/report.pdf").is_some());

    // The page shows the image from the decrypted bytes.
    b.wait_js("document.querySelector('#page-body img.attachment-embed')?.src.startsWith('blob:')")
        .await;
    b.wait_js("document.querySelector('#page-body img.attachment-embed').naturalWidth === 3")
        .await;
    b.screenshot("attachments-on-page").await;

    // The PDF link opens the attachment view: the PDF in a frame, from an object URL.
    b.click("#page-body a.wikilink[href$='report.pdf']").await;
    b.wait_js("document.querySelector('iframe#attachment-view')?.src.startsWith('blob:')")
        .await;
    assert_eq!(
        blob_bytes(&b, "document.getElementById('attachment-view').src").await,
        (PDF.to_vec(), "application/pdf".to_owned())
    );
    assert_eq!(b.text("#attachment-owner").await, "Plan");
    b.screenshot("attachment-pdf").await;

    // Opening the image from the tree shows it (not "does not exist").
    b.click(".tree a[title='Plan/diagram.png']").await;
    b.wait_js("document.querySelector('img#attachment-view')?.naturalWidth === 3")
        .await;
    b.screenshot("attachment-image").await;
    // Download: the exact bytes, as a download (octet-stream), never opened as a document.
    b.js("window.zkDownloads = [];
          HTMLAnchorElement.prototype.click = function () { window.zkDownloads.push([this.download, this.href]); };")
        .await;
    b.click("#download").await;
    let name = b.js("return window.zkDownloads[0][0];").await;
    assert_eq!(name, json!("diagram.png"));
    // The URL is revoked a second later; read it now.
    assert_eq!(
        blob_bytes(&b, "window.zkDownloads[0][1]").await,
        (PNG.to_vec(), "application/octet-stream".to_owned())
    );
    // Nothing was asked of the network by the file's name: only envelopes by id.
    assert!(!fetched_by_name(&b, "diagram").await);
    assert!(!fetched_by_name(&b, "report").await);

    // Rename, then delete.
    b.click("#rename").await;
    b.fill("#rename-path", "Plan/architecture.png").await;
    b.click("#rename-ok").await;
    b.wait_js("decodeURIComponent(location.hash).endsWith('Plan/architecture.png') && document.querySelector('img#attachment-view')")
        .await;
    b.open_page(&wiki, "Plan.md").await;
    b.wait_js("document.getElementById('attachments')?.textContent.includes('architecture.png')")
        .await;
    b.click("#attachments a[href$='report.pdf']").await;
    b.wait("iframe#attachment-view").await;
    b.click("#delete").await;
    b.click("#delete-ok").await;
    b.wait_js("!window.zkwikiTest.pageId('Plan/report.pdf')")
        .await;
    b.open_page(&wiki, "Plan.md").await;
    b.wait_js("document.querySelectorAll('#attachments li').length === 1")
        .await;

    // A markdown file is not taken as an attachment: the reason is shown, nothing is written.
    b.client
        .execute(
            "const dt = new DataTransfer();
             dt.items.add(new File(['# x'], 'notes.md'));
             document.getElementById('main').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await
        .unwrap();
    b.wait_js("document.getElementById('toast').textContent.includes('markdown file')")
        .await;
    assert_eq!(
        b.js("return window.zkwikiTest.pageId('Plan/notes.md');")
            .await,
        json!(null)
    );
    b.no_script_errors().await;
    let _ = std::fs::remove_dir_all(&dir);
    b.client.close().await.unwrap();
}

/// A wiki as Otterwiki writes it (lowercased file names, attachments in the page's folder,
/// `/Page/a/FILE` references) shows its images and links, titles and Otterwiki-style names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otterwiki_references_titles_and_tree() {
    let server = Server::start("pages-otterwiki");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(
        &wiki,
        &mut ws,
        "home.md",
        "# Home\n\nSee [[Platform Overview]].\n",
    );
    alice.put(
        &wiki,
        &mut ws,
        "platform overview.md",
        "# Platform Overview\n\n![The architecture](/Platform%20Overview/a/architecture.png)\n\nThe [spec](/Platform%20Overview/a/spec.pdf), and [a missing one](/Platform%20Overview/a/gone.pdf).\n",
    );
    alice.put_bytes(&wiki, &mut ws, "platform overview/architecture.png", PNG);
    alice.put_bytes(&wiki, &mut ws, "platform overview/spec.pdf", PDF);
    alice.put(
        &wiki,
        &mut ws,
        "projects/emergent.md",
        "---\ntitle: Emergent Behaviour\n---\nText.\n",
    );
    alice.put(&wiki, &mut ws, "projects/roadmap.md", "no heading here\n");
    alice.put(&wiki, &mut ws, "zebra.md", "# zebra notes\n");

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "platform overview.md").await;
    // The embed is the wiki's own file, decrypted here, and the links go to the files.
    b.wait_js("document.querySelector('#page-body img.attachment-embed')?.naturalWidth === 3")
        .await;
    let body = b.wait("#page-body").await.html(true).await.unwrap();
    assert!(!body.contains("[image:"), "{body}");
    assert!(
        body.contains("href=\"#/w/") && body.contains("/p/platform%20overview/spec.pdf\""),
        "{body}"
    );
    assert!(body.contains("class=\"wikilink missing\""), "{body}");
    assert!(!fetched_by_name(&b, "architecture").await);
    b.click("#page-body a[href$='spec.pdf']").await;
    b.wait("iframe#attachment-view").await;
    b.screenshot("otterwiki-embed").await;

    // Titles from front matter or the first heading; names Otterwiki-style; pages before
    // folders at every level.
    b.open_page(&wiki, "projects/emergent.md").await;
    assert_eq!(b.text("#page-title").await, "Emergent Behaviour");
    // Breadcrumbs link to the folder's page (Otterwiki's `projects.md`).
    let crumb = b
        .js("return document.querySelector('.crumbs a')?.getAttribute('href');")
        .await;
    assert!(
        crumb.as_str().unwrap().ends_with("/p/projects.md"),
        "{crumb}"
    );
    assert_eq!(b.text(".crumbs a").await, "Projects");
    // Every page is decrypted in the background after the wiki opens; then the tree has titles.
    b.wait_js("[...document.querySelectorAll('.tree a')].some((a) => a.textContent === 'Emergent Behaviour')")
        .await;
    let entries = b
        .js("return [...document.querySelectorAll('.tree > ul > li')].map((li) => li.classList.contains('tree-dir') ? 'dir:' + li.querySelector('summary').textContent : li.textContent);")
        .await;
    assert_eq!(
        entries,
        json!([
            "Home",
            "Platform Overview",
            "zebra notes",
            "dir:Platform Overview",
            "dir:Projects"
        ])
    );
    let projects = b
        .js("return [...document.querySelectorAll('.tree-dir')].find((d) => d.querySelector('summary').textContent === 'Projects').textContent;")
        .await;
    assert!(
        projects.as_str().unwrap().contains("Roadmap"),
        "an untitled page's name is its file name, capitalised: {projects}"
    );
    b.screenshot("tree-otterwiki-names").await;
    b.no_script_errors().await;
    b.client.close().await.unwrap();
}

/// At 390×844 (a phone) the content comes first under a top bar and the sidebar is a drawer;
/// the keyboard reaches everything: a skip link, `/` and Ctrl+K to search, `e` to edit, Esc to
/// close; every control has a name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_layout_keyboard_and_labels() {
    let server = Server::start("pages-phone");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    let long: String = (1..=40)
        .map(|i| format!("Paragraph {i} of the plan, long enough to wrap on a phone screen.\n\n"))
        .collect();
    alice.put(&wiki, &mut ws, "Home.md", &format!("# Home\n\n{long}"));
    alice.put(
        &wiki,
        &mut ws,
        "Ideas.md",
        "# Ideas\n\nA budget for snacks.\n",
    );

    let b = Browser::start().await;
    b.client.set_window_size(390, 844).await.unwrap();
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Home.md").await;
    let width = b.js("return window.innerWidth;").await;
    assert!(width.as_i64().unwrap() <= 400, "viewport {width}");
    // The top bar is shown, the sidebar is off screen, the page title is near the top.
    let layout = b
        .js("const r = (s) => document.querySelector(s).getBoundingClientRect();
             return { bar: getComputedStyle(document.getElementById('topbar')).display,
                      sideRight: r('#sidebar').right, title: r('#page-title').top,
                      sideVisible: getComputedStyle(document.getElementById('sidebar')).visibility };")
        .await;
    assert_eq!(layout["bar"], json!("flex"), "{layout}");
    assert!(layout["sideRight"].as_f64().unwrap() <= 0.0, "{layout}");
    assert_eq!(layout["sideVisible"], json!("hidden"), "{layout}");
    assert!(layout["title"].as_f64().unwrap() < 200.0, "{layout}");
    let titles = b
        .js("return [document.getElementById('topbar-title').textContent, document.querySelector('.side-wiki-title').textContent];")
        .await;
    assert_eq!(titles[0], titles[1], "{titles}");
    b.screenshot("phone-page").await;

    // The menu button opens the drawer; following a link in it closes it.
    b.click("#menu-button").await;
    b.wait_js("document.body.classList.contains('drawer-open') && document.getElementById('sidebar').getBoundingClientRect().left >= 0 && getComputedStyle(document.getElementById('sidebar')).transform === 'none'")
        .await;
    assert_eq!(
        b.js("return document.getElementById('menu-button').getAttribute('aria-expanded');")
            .await,
        json!("true")
    );
    b.screenshot("phone-drawer").await;
    b.click(".tree a[title='Ideas.md']").await;
    b.wait_js("document.getElementById('page-title')?.textContent === 'Ideas' && !document.body.classList.contains('drawer-open')")
        .await;
    // Esc closes the drawer too, and focus goes back to the menu button.
    b.click("#menu-button").await;
    b.wait_js("document.body.classList.contains('drawer-open')")
        .await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{e00c}")
        .await
        .unwrap();
    b.wait_js("!document.body.classList.contains('drawer-open') && document.activeElement.id === 'menu-button'")
        .await;

    // Keyboard shortcuts (on the page, not in a field): `/` searches, Esc leaves the search,
    // Ctrl+K searches, `e` edits.
    b.js("document.activeElement.blur();").await;
    b.wait("body").await.send_keys("/").await.unwrap();
    b.wait_js("document.activeElement?.id === 'search'").await;
    assert_eq!(
        b.js("return document.getElementById('search').value;")
            .await,
        json!(""),
        "the `/` is not typed into the box"
    );
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{e00c}")
        .await
        .unwrap();
    b.wait_js("document.activeElement?.id !== 'search' && !document.body.classList.contains('drawer-open')")
        .await;
    b.js("document.activeElement.blur();").await;
    b.wait("body")
        .await
        .send_keys("\u{e009}k\u{e009}")
        .await
        .unwrap();
    b.wait_js("document.activeElement?.id === 'search'").await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{e00c}\u{e00c}")
        .await
        .unwrap();
    b.js("document.activeElement.blur();").await;
    b.wait("body").await.send_keys("e").await.unwrap();
    b.wait_js("location.hash.includes('/edit/Ideas.md') && document.getElementById('editor')")
        .await;
    // In the editor, `e` is just a letter.
    b.wait("#editor").await.send_keys("e").await.unwrap();
    assert!(
        b.js("return location.hash;")
            .await
            .as_str()
            .unwrap()
            .contains("/edit/")
    );
    b.screenshot("phone-editor").await;
    // Leave without saving (the guard asks; accept).
    b.js("window.confirm = () => true;").await;
    b.open_page(&wiki, "Home.md").await;

    // The skip link is the first control on the page, shown when focused, and moves focus to
    // the content.
    let first = b
        .js("return document.querySelector('a[href], button, input, textarea, select').id;")
        .await;
    assert_eq!(first, json!("skip-link"));
    b.js("document.getElementById('skip-link').focus();").await;
    let top = b
        .js("return document.getElementById('skip-link').getBoundingClientRect().top;")
        .await;
    assert!(top.as_f64().unwrap() >= 0.0, "visible when focused: {top}");
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{e007}")
        .await
        .unwrap();
    b.wait_js("document.getElementById('main').contains(document.activeElement)")
        .await;

    // Every control has an accessible name: its text, a label, or aria-label.
    let unnamed = b
        .js("const named = (e) => (e.getAttribute('aria-label') || '').trim() || (e.labels && [...e.labels].some((l) => l.textContent.trim())) || (e.textContent || '').trim() || e.getAttribute('title');
             return [...document.querySelectorAll('button, a[href], input:not([type=hidden]), textarea, select')]
               .filter((e) => !named(e)).map((e) => e.outerHTML.slice(0, 80));")
        .await;
    assert_eq!(unnamed, json!([]), "controls without a name");
    b.no_script_errors().await;
    b.client.close().await.unwrap();
}

/// What Otterwiki users expect on a page: tags from front matter, "On this page" for a long page,
/// the pages that link here, history numbered per page with Restore only on earlier versions;
/// plain words: no literal backticks, search snippets that keep a link's target and label
/// apart, the wiki's state number out of the everyday text; a light/dark choice beside the
/// system setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_extras_history_numbers_and_copy() {
    let server = Server::start("pages-extras");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(
        &wiki,
        &mut ws,
        "Home.md",
        "# Home\n\nStart with [[Guide|our guide]] on the budget.\n",
    );
    let guide = |n: u32| {
        format!(
            "---\ntags: [setup, q3]\n---\n# Guide\n\nEdit {n}.\n\n## Install\n\nText.\n\n## Configure\n\nText.\n\n### Keys\n\nText.\n\n## Run\n\nText.\n"
        )
    };
    for n in 1..=3 {
        alice.put(&wiki, &mut ws, "Guide.md", &guide(n));
    }
    alice.put(
        &wiki,
        &mut ws,
        "notes/Other.md",
        "See [the guide](../Guide.md).\n",
    );
    alice.put(
        &wiki,
        &mut ws,
        "Lonely.md",
        "# Lonely\n\nNo one links here.\n",
    );

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Guide.md").await;
    // Tags: one click searches for the tag.
    let tags = b
        .js("return [...document.querySelectorAll('#page-tags .page-tag')].map((t) => t.textContent);")
        .await;
    assert_eq!(tags, json!(["#setup", "#q3"]));
    // On this page: the sections, linking to their headings.
    b.wait_js("document.querySelectorAll('#toc a').length === 4")
        .await;
    let toc = b
        .js("return [...document.querySelectorAll('#toc a')].map((a) => [a.textContent, a.getAttribute('href')]);")
        .await;
    assert_eq!(
        toc,
        json!([
            ["Install", "#zk-install"],
            ["Configure", "#zk-configure"],
            ["Keys", "#zk-keys"],
            ["Run", "#zk-run"]
        ])
    );
    b.screenshot("page-toc-tags").await;
    let route = b.js("return location.hash;").await;
    b.click("#toc a[href='#zk-run']").await;
    assert_eq!(
        b.js("return location.hash;").await,
        route,
        "a TOC link scrolls, it does not navigate"
    );
    // Pages that link here: a wiki link with a label and a relative markdown link.
    b.wait_js("document.querySelectorAll('#backlinks li').length === 2")
        .await;
    assert_eq!(b.text("#backlinks").await.lines().count(), 3, "heading + 2");
    let back = b.text("#backlinks ul").await;
    assert!(back.contains("Home") && back.contains("Other"), "{back}");
    b.screenshot("page-backlinks").await;
    b.click("#page-tags .page-tag").await;
    b.wait_js("document.getElementById('search').value === 'setup' && document.querySelectorAll('#search-results .search-hit').length >= 1")
        .await;
    b.js("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); s.blur();")
        .await;
    // A short page without links to it has neither. The page adds them after its first paint
    // (a frame callback, then a timer): a frame callback and a timer queued now run after that,
    // however slow the machine (a fixed 300 ms could look before it, and pass for nothing).
    b.open_page(&wiki, "Lonely.md").await;
    b.client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             requestAnimationFrame(() => setTimeout(() => done(true), 0));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        b.js("return !!(document.getElementById('toc') || document.getElementById('backlinks') || document.getElementById('page-tags'));")
            .await,
        json!(false)
    );

    // History: the page's own version numbers; Restore only on earlier versions.
    b.open_page(&wiki, "Guide.md").await;
    b.click("#history").await;
    b.wait_js("document.querySelectorAll('#history-list li').length === 3")
        .await;
    let labels = b
        .js("return [...document.querySelectorAll('#history-list .seq')].map((s) => s.textContent);")
        .await;
    assert_eq!(labels, json!(["Version 3", "Version 2", "Version 1"]));
    b.wait_js("document.querySelector('#diff .diff-head')")
        .await;
    assert!(
        b.text("#diff .diff-head")
            .await
            .starts_with("Version 3 compared with version 2")
    );
    assert_eq!(
        b.js("return !!document.getElementById('restore-version');")
            .await,
        json!(false),
        "no Restore on the current version"
    );
    b.click("#history-list li:nth-child(2)").await;
    b.wait_js("document.getElementById('restore-version')?.textContent === 'Restore version 2'")
        .await;
    b.screenshot("history-page-versions").await;

    // Search snippets keep a link's target and label apart.
    b.fill("#search", "budget").await;
    b.wait_js("document.querySelectorAll('#search-results .search-hit').length >= 1")
        .await;
    let snippet = b.text("#search-results").await;
    assert!(snippet.contains("Guide our guide"), "{snippet}");
    // Plain words: the sidebar says what you are, not the wiki's state number; the members page
    // keeps the key epoch one click away; no literal backticks anywhere.
    assert_eq!(
        b.js("return document.querySelector('.side-wiki-meta').textContent;")
            .await,
        json!("You are an owner · 1 member")
    );
    b.route(&format!("#/w/{wiki}/members")).await;
    b.wait("#agent-name").await;
    let details = b
        .js("const d = document.querySelector('.crypto-details'); return [d.open, d.textContent.includes('Key epoch 1')];")
        .await;
    assert_eq!(details, json!([false, true]));
    // The safety numbers of the version shown and its keyring: the client core's, the ones
    // `zkwiki status` prints for the same head (here from a client in this process).
    let numbers = client::witness::safety_numbers(alice.open(&wiki).head());
    assert_eq!(b.text("#safety-head").await, numbers.head);
    assert_eq!(b.text("#safety-keyring").await, numbers.keyring);
    assert!(
        b.text("#safety-numbers")
            .await
            .contains(&format!("Wiki version {}", numbers.seq))
    );
    b.screenshot("members-safety-numbers").await;
    assert!(
        !b.js("return document.getElementById('main').textContent;")
            .await
            .as_str()
            .unwrap()
            .contains('`'),
        "literal backticks on the members page"
    );
    // Light or dark beside the system setting: system → light → dark, kept across a reload.
    let bg = "getComputedStyle(document.documentElement).getPropertyValue('--bg').trim()";
    assert_eq!(b.text("#theme-toggle").await, "Theme: system");
    b.click("#theme-toggle").await;
    assert_eq!(b.text("#theme-toggle").await, "Theme: light");
    assert_eq!(b.js(&format!("return {bg};")).await, json!("#f7f7f5"));
    b.click("#theme-toggle").await;
    assert_eq!(b.text("#theme-toggle").await, "Theme: dark");
    assert_eq!(b.js(&format!("return {bg};")).await, json!("#15171b"));
    b.client.refresh().await.unwrap();
    b.wait("#login-user").await;
    assert_eq!(
        b.js(&format!(
            "return [document.documentElement.dataset.theme, {bg}];"
        ))
        .await,
        json!(["dark", "#15171b"])
    );
    b.screenshot("login-dark-chosen").await;
    b.no_script_errors().await;
    b.client.close().await.unwrap();
}

/// Fenced code blocks are highlighted after the first paint, by DOM nodes only: the text stays
/// exactly what was written (markup inside code is text, never parsed), languages by their
/// usual names and aliases, an unknown language stays plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_blocks_are_highlighted_as_text() {
    let server = Server::start("pages-highlight");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    let rust = "fn main() {\n    // say it\n    let n = 42;\n    println!(\"</code><img src=x onerror=window.zkPwned=1>\");\n}\n";
    let python = "def f(x):\n    \"\"\"Doc.\"\"\"\n    return None  # nothing\n";
    let yaml = "name: zkwiki\nports:\n  - 8080\n";
    let page = format!(
        "# Code\n\n```rust\n{rust}```\n\n```py\n{python}```\n\n```yml\n{yaml}```\n\n```klingon\nqapla' 42\n```\n"
    );
    alice.put(&wiki, &mut ws, "Code.md", &page);

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Code.md").await;
    b.wait_js("document.querySelectorAll('#page-body code[data-hl]').length === 3")
        .await;
    let langs = b
        .js("return [...document.querySelectorAll('#page-body pre > code')].map((c) => c.dataset.hl || null);")
        .await;
    assert_eq!(langs, json!(["rust", "python", "yaml", null]));
    // What each kind of token became, per block.
    let tokens = b
        .js("return [...document.querySelectorAll('#page-body pre > code')].map((c) => [...c.querySelectorAll('span')].map((s) => s.className + ' ' + s.textContent));")
        .await;
    let has_tokens = |block: usize, wanted: &[&str]| {
        let got = tokens[block].as_array().unwrap();
        for want in wanted {
            assert!(got.contains(&json!(want)), "{want} in {got:?}");
        }
    };
    has_tokens(
        0,
        &[
            "hl-kw fn",
            "hl-com // say it",
            "hl-kw let",
            "hl-num 42",
            "hl-str \"</code><img src=x onerror=window.zkPwned=1>\"",
        ],
    );
    has_tokens(
        1,
        &[
            "hl-kw def",
            "hl-str \"\"\"Doc.\"\"\"",
            "hl-kw return",
            "hl-kw None",
            "hl-com # nothing",
        ],
    );
    has_tokens(2, &["hl-key name", "hl-num 8080"]);
    assert_eq!(tokens[3], json!([]), "an unknown language stays plain");
    // The text is exactly the source; nothing inside a block became markup or ran.
    let texts = b
        .js("return [...document.querySelectorAll('#page-body pre > code')].map((c) => c.textContent);")
        .await;
    assert_eq!(texts, json!([rust, python, yaml, "qapla' 42\n"]));
    assert_eq!(
        b.js("return [document.querySelectorAll('#page-body img').length, window.zkPwned === undefined];")
            .await,
        json!([0, true])
    );
    b.no_script_errors().await;
    b.screenshot("page-code-highlighted").await;
}

/// Blame in a page's history: each line of a version with the version that brought it in (the
/// page's own version numbers) and its signer; a name selects that version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blame_names_the_version_of_each_line() {
    let server = Server::start("pages-blame");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    for text in [
        "alpha\nbeta\n",
        "alpha\nBETA\ngamma\n",
        "intro <b>bold?</b>\nalpha\nBETA\ngamma\n",
    ] {
        alice.put(&wiki, &mut ws, "Notes.md", text);
    }

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Notes.md").await;
    b.route(&format!("#/w/{wiki}/history/Notes.md")).await;
    b.wait_js("document.querySelectorAll('#history-list .history-item').length === 3")
        .await;
    b.click("#blame-version").await;
    b.wait_js("document.querySelectorAll('#blame tr').length === 4")
        .await;
    let rows = b
        .js("return [...document.querySelectorAll('#blame tr')].map((r) => [...r.children].map((c) => c.textContent));")
        .await;
    assert_eq!(
        rows,
        json!([
            ["Version 3 · alice", "1", "intro <b>bold?</b>"],
            ["Version 1 · alice", "2", "alpha"],
            ["Version 2 · alice", "3", "BETA"],
            ["", "4", "gamma"],
        ])
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#blame b').length;")
            .await,
        json!(0),
        "a line is text, never markup"
    );
    b.screenshot("history-blame").await;
    // A name selects its version.
    b.js("document.querySelectorAll('#blame .blame-who button')[1].click(); return null;")
        .await;
    b.wait_js("document.querySelector('#history-list .history-item.active')?.dataset.i === '2'")
        .await;
    b.no_script_errors().await;
}
