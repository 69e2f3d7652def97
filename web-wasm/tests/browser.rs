//! End to end in headless Chromium against the real server: register (recovery key shown once),
//! create a wiki, write a page with links, a table and front matter, reload and log in again,
//! read it rendered, edit it, see its history and diff, search, invite a second user who then
//! reads it; a page full of script payloads renders inert (no script runs, no dialog opens); and
//! a blob tampered on the server's disk is reported by a red integrity banner naming the problem.
//! Screenshots of the main screens go to `target/artifacts/screenshots/`.
//!
//! Needs the built web app and server: run with `cargo xtask test` (see `support/mod.rs`).

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{Browser, Server, flip_byte_in_page};

const ALICE_PASS: &str = "alice's long passphrase";
const BOB_PASS: &str = "bob's long passphrase!";

const PLAN: &str = "---\ntitle: The Plan\nstatus: draft\ntags: [budget, q3]\n---\n# The Plan\n\nSee [[Home]], [[Ideas|our ideas]] and [[Budget 2026]].\n\n| Item | Cost |\n|------|-----:|\n| Servers | 120 |\n| Coffee | 30 |\n\n- [x] write the plan\n- [ ] ship it\n\nRead more at [the docs](https://example.org/docs).[^1]\n\n[^1]: Footnotes work too.\n";

const PAYLOADS: &str = "# Payloads\n\n<script>window.zkPwned = 1; alert('script')</script>\n\n<img src=x onerror=\"window.zkPwned = 2; alert('img')\">\n\n[click me](javascript:window.zkPwned=3;alert('link'))\n\n[[x|<img src=x onerror=window.zkPwned=4>]]\n\n[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n<svg onload=\"window.zkPwned=5\"></svg>\n\n---\n";

async fn register(b: &Browser, base: &str, user: &str, pass: &str) {
    b.client.goto(&format!("{base}/#/register")).await.unwrap();
    b.fill("#reg-user", user).await;
    b.fill("#reg-pass", pass).await;
    b.fill("#reg-pass2", pass).await;
    b.click("#reg-submit").await;
    let key = b.wait("#recovery-key").await.text().await.unwrap();
    assert!(key.starts_with("ZKR1-"), "{key}");
    if user == "alice" {
        b.screenshot("register-recovery-key").await;
    }
    // Continue stays disabled until the user confirms saving the key.
    assert!(!b.wait("#recovery-continue").await.is_enabled().await.unwrap());
    b.click("#saved-recovery").await;
    b.click("#recovery-continue").await;
    b.wait_js(&format!("document.getElementById('whoami')?.textContent === '{user}'")).await;
}

async fn login(b: &Browser, base: &str, user: &str, pass: &str) {
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.fill("#login-user", user).await;
    b.fill("#login-pass", pass).await;
    b.click("#login-submit").await;
    b.wait_js(&format!("document.getElementById('whoami')?.textContent === '{user}'")).await;
}

async fn logout(b: &Browser) {
    b.click("#logout").await;
    b.wait("#login-user").await;
    // The keys are gone: nothing of the session is reachable any more.
    assert_eq!(b.js("return window.zkwikiTest.wiki();").await, json!(null));
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

async fn open_page(b: &Browser, wiki: &str, path: &str) {
    let enc = path.replace(' ', "%20");
    b.route(&format!("#/w/{wiki}/p/{enc}")).await;
    b.wait_js(&format!(
        "document.getElementById('page-body') && decodeURIComponent(location.hash).endsWith({path:?})"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_end_to_end() {
    let server = Server::start("scenario");
    let base = server.base.clone();
    let b = Browser::start().await;

    // Login page first.
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.wait("#login-user").await;
    b.screenshot("login").await;

    // Register alice; the recovery key is shown once, with a confirmation.
    register(&b, &base, "alice", ALICE_PASS).await;
    b.wait("#create-wiki").await;
    b.screenshot("wiki-list-empty").await;

    // Create a wiki: it opens on its welcome page.
    b.click("#create-wiki").await;
    b.wait_js("document.getElementById('page-title')?.textContent === 'Home'").await;
    let wiki = b.js("return window.zkwikiTest.wiki();").await;
    let wiki = wiki.as_str().unwrap().to_owned();

    // Write a page with links, a table, a task list, a footnote and front matter (editor shot).
    b.route(&format!("#/w/{wiki}/new?path=Plan.md")).await;
    b.wait("#editor").await;
    b.set_value("#editor", PLAN).await;
    b.wait_js("document.querySelector('#preview table')").await;
    b.screenshot("editor").await;
    b.click("#save").await;
    b.wait_js("document.getElementById('page-title')?.textContent === 'The Plan'").await;
    write_page(&b, &wiki, "Ideas.md", "# Ideas\n\nA budget for snacks.\n").await;

    // Reload: not "kept signed in", so the keys are gone; log in again.
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.wait("#login-user").await;
    login(&b, &base, "alice", ALICE_PASS).await;
    b.wait_js("document.getElementById('page-title')").await;
    open_page(&b, &wiki, "Plan.md").await;
    let body = b.wait("#page-body").await.html(true).await.unwrap();
    assert!(body.contains("<table class=\"front-matter\">"), "{body}");
    assert!(body.contains("<td>draft</td>"), "{body}");
    assert!(body.contains("class=\"wikilink\" href=\"#/w/"), "{body}");
    assert!(body.contains(">our ideas</a>"), "{body}");
    assert!(body.contains("class=\"wikilink missing\""), "{body}");
    assert!(body.contains("<td class=\"align-right\">120</td>"), "{body}");
    assert!(body.contains("type=\"checkbox\" disabled=\"\" checked=\"\""), "{body}");
    assert!(body.contains("rel=\"noopener noreferrer nofollow\""), "{body}");
    b.screenshot("page").await;

    // Follow a wiki link.
    b.click("a.wikilink[href$='Ideas.md']").await;
    b.wait_js("document.getElementById('page-title')?.textContent === 'Ideas'").await;

    // Edit the plan.
    open_page(&b, &wiki, "Plan.md").await;
    b.click("#edit").await;
    b.wait("#editor").await;
    let edited = PLAN.replace("| Coffee | 30 |", "| Coffee | 45 |\n| Tea | 12 |");
    b.set_value("#editor", &edited).await;
    b.click("#save").await;
    b.wait_js("document.getElementById('page-body')?.textContent.includes('Tea')").await;

    // History: two versions, the newest with its diff; each checked against its signed state.
    b.click("#history").await;
    b.wait_js("document.querySelectorAll('#history-list li').length === 2").await;
    b.wait_js("document.querySelector('#diff .diff-table tr.ins')").await;
    let diff = b.text("#diff").await;
    assert!(diff.contains("+ | Tea | 12 |"), "{diff}");
    assert!(diff.contains("- | Coffee | 30 |"), "{diff}");
    let history = b.text("#history-list").await;
    assert!(history.contains("alice"), "{history}");
    b.screenshot("history").await;

    // Search as you type (prefix of the last word).
    open_page(&b, &wiki, "Plan.md").await;
    b.fill("#search", "budg").await;
    b.wait_js("document.querySelectorAll('#search-results .search-hit').length >= 2").await;
    let results = b.text("#search-results").await;
    assert!(results.contains("Plan") && results.contains("Ideas"), "{results}");
    b.screenshot("search").await;
    b.js("document.getElementById('search').value=''; document.getElementById('search').dispatchEvent(new Event('input'));").await;

    // A page of script payloads renders inert.
    write_page(&b, &wiki, "Payloads.md", PAYLOADS).await;
    let html = b.wait("#page-body").await.html(true).await.unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
    // No element that can run script exists in the rendered page, and no attribute of any
    // element is an event handler or a script URL.
    let active = b
        .js("const body = document.getElementById('page-body');
             const bad = [...body.querySelectorAll('script, iframe, object, embed, svg, img, style, form, meta, base')].length;
             const attrs = [...body.querySelectorAll('*')].flatMap((e) => [...e.attributes])
               .filter((a) => a.name.startsWith('on') || /^\\s*(javascript|data|vbscript):/i.test(a.value)).length;
             return bad + attrs;")
        .await;
    assert_eq!(active, json!(0), "{html}");
    // Clicking what was a javascript: link does nothing either.
    b.click("#page-body .dropped-link").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(b.js("return window.zkPwned === undefined;").await, json!(true));
    assert!(b.client.get_alert_text().await.is_err(), "an alert dialog opened");
    b.screenshot("script-payloads-inert").await;
    logout(&b).await;

    // A second user: bob registers; alice invites him after checking his fingerprint.
    register(&b, &base, "bob", BOB_PASS).await;
    let bob_fp = b.text("#sidebar .fingerprint").await;
    logout(&b).await;
    login(&b, &base, "alice", ALICE_PASS).await;
    b.route(&format!("#/w/{wiki}/members")).await;
    b.fill("#invite-user", "bob").await;
    b.click("#invite-submit").await;
    let shown = b.wait("#invite-fingerprint").await.text().await.unwrap();
    assert_eq!(shown, bob_fp, "the invite dialog shows bob's own fingerprint");
    b.screenshot("invite-fingerprint").await;
    b.click("#invite-confirm").await;
    b.wait_js("document.querySelector('tr[data-member=\"bob\"]')").await;
    b.screenshot("members").await;
    logout(&b).await;

    login(&b, &base, "bob", BOB_PASS).await;
    b.route(&format!("#/w/{wiki}")).await;
    b.wait_js("window.zkwikiTest.wiki()").await;
    open_page(&b, &wiki, "Plan.md").await;
    assert!(b.text("#page-body").await.contains("Tea"));
    assert_eq!(b.js("return window.zkwikiTest.info().role;").await, json!("reader"));
    assert_eq!(b.text("#edit").await, "", "a reader gets no Edit button");

    // The operator flips a byte of the plan's envelope on disk. A browser that has not cached
    // the page (bob on another computer: a fresh profile) gets the tampered copy and says so.
    let page = b.js("return window.zkwikiTest.pageId('Plan.md');").await;
    flip_byte_in_page(&server.repo(&wiki), page.as_str().unwrap());
    let b2 = Browser::start().await;
    login(&b2, &base, "bob", BOB_PASS).await;
    b2.route(&format!("#/w/{wiki}/p/Plan.md")).await;
    b2.wait_js("!document.getElementById('banner').hidden").await;
    let banner = b2.text("#banner").await;
    assert!(banner.contains("Integrity check failed"), "{banner}");
    assert!(banner.contains("differs from the signed manifest"), "{banner}");
    let panel = b2.text("#main").await;
    assert!(panel.contains("Integrity check failed"), "not a blank page: {panel}");
    assert!(!panel.contains("Servers"), "no tampered content is shown: {panel}");
    b2.screenshot("integrity-warning").await;
    b2.client.close().await.unwrap();

    b.client.close().await.unwrap();
}
