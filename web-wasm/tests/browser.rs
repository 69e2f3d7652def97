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
use support::{Browser, Server, copy_dir, flip_byte_in_page, target_dir, web_dir};

const ALICE_PASS: &str = "alice's long passphrase";
const BOB_PASS: &str = "bob's long passphrase!";

const PLAN: &str = "---\ntitle: The Plan\nstatus: draft\ntags: [budget, q3]\n---\n# The Plan\n\nSee [[Home]], [[Ideas|our ideas]] and [[Budget 2026]].\n\n| Item | Cost |\n|------|-----:|\n| Servers | 120 |\n| Coffee | 30 |\n\n- [x] write the plan\n- [ ] ship it\n\nRead more at [the docs](https://example.org/docs).[^1]\n\n[^1]: Footnotes work too.\n";

const PAYLOADS: &str = "# Payloads\n\n<script>window.zkPwned = 1; alert('script')</script>\n\n<img src=x onerror=\"window.zkPwned = 2; alert('img')\">\n\n[click me](javascript:window.zkPwned=3;alert('link'))\n\n[[x|<img src=x onerror=window.zkPwned=4>]]\n\n[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n<svg onload=\"window.zkPwned=5\"></svg>\n\n---\n";

/// Registers through the UI; returns the recovery key the app showed.
async fn register(b: &Browser, base: &str, user: &str, pass: &str) -> String {
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
    assert!(
        !b.wait("#recovery-continue")
            .await
            .is_enabled()
            .await
            .unwrap()
    );
    b.click("#saved-recovery").await;
    b.click("#recovery-continue").await;
    b.wait_js(&format!(
        "document.getElementById('whoami')?.textContent === '{user}'"
    ))
    .await;
    key
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
    let alice_recovery = register(&b, &base, "alice", ALICE_PASS).await;
    b.wait("#create-wiki").await;
    b.screenshot("wiki-list-empty").await;

    // Create a wiki, named: it opens on its welcome page, titled with the name.
    b.click("#create-wiki").await;
    b.fill("#wiki-name", "Team notes").await;
    b.click("#wiki-create-ok").await;
    b.wait_js("document.getElementById('page-title')?.textContent === 'Team notes'")
        .await;
    let wiki = b.js("return window.zkwikiTest.wiki();").await;
    let wiki = wiki.as_str().unwrap().to_owned();

    // Write a page with links, a table, a task list, a footnote and front matter (editor shot).
    b.route(&format!("#/w/{wiki}/new?path=Plan.md")).await;
    b.wait("#editor").await;
    b.set_value("#editor", PLAN).await;
    b.wait_js("document.querySelector('#preview table')").await;
    b.screenshot("editor").await;
    b.click("#save").await;
    b.wait_js("document.getElementById('page-title')?.textContent === 'The Plan'")
        .await;
    write_page(&b, &wiki, "Ideas.md", "# Ideas\n\nA budget for snacks.\n").await;

    // Reload: not "kept signed in", so the keys are gone; log in again, this time asking to be
    // kept signed in, and reload once more: still signed in, without the passphrase.
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.wait("#login-user").await;
    b.login_with(&base, "alice", ALICE_PASS, true).await;
    b.wait_js("document.getElementById('page-title')").await;
    let stored = b.js("return Object.keys(localStorage).join(' ');").await;
    assert!(
        !stored.as_str().unwrap().contains("signin"),
        "nothing secret in localStorage: {stored}"
    );
    b.client.refresh().await.unwrap();
    b.wait_js("document.getElementById('whoami')?.textContent === 'alice'")
        .await;
    b.wait_js("document.getElementById('page-title')").await;
    let wikis = b
        .js("return document.querySelectorAll('.wiki-card').length;")
        .await;
    assert_eq!(wikis, json!(0), "opened the last wiki directly");
    b.open_page(&wiki, "Plan.md").await;
    let body = b.wait("#page-body").await.html(true).await.unwrap();
    assert!(body.contains("<table class=\"front-matter\">"), "{body}");
    assert!(body.contains("<td>draft</td>"), "{body}");
    assert!(body.contains("class=\"wikilink\" href=\"#/w/"), "{body}");
    assert!(body.contains(">our ideas</a>"), "{body}");
    assert!(body.contains("class=\"wikilink missing\""), "{body}");
    assert!(
        body.contains("<td class=\"align-right\">120</td>"),
        "{body}"
    );
    assert!(
        body.contains("type=\"checkbox\" disabled=\"\" checked=\"\""),
        "{body}"
    );
    assert!(
        body.contains("rel=\"noopener noreferrer nofollow\""),
        "{body}"
    );
    b.screenshot("page").await;

    // Follow a wiki link.
    b.click("a.wikilink[href$='Ideas.md']").await;
    b.wait_js("document.getElementById('page-title')?.textContent === 'Ideas'")
        .await;

    // A long page: the first screens go in at once and the rest after the first paint, so the
    // whole page arrives; a heading beyond the fold is there as soon as the page shows.
    let long: String = (1..=300)
        .map(|i| format!("## Part {i}\n\nSome text about part {i}, see [[Ideas]].\n\n"))
        .collect();
    write_page(&b, &wiki, "Long.md", &format!("# Long\n\n{long}")).await;
    b.wait_js("document.querySelectorAll('#page-body h2').length === 300")
        .await;
    b.open_page(&wiki, "Ideas.md").await;
    let shown = b
        .client
        .execute_async(
            r#"const [wiki, done] = arguments;
               // After the rest of showPage's synchronous work, before any frame or timer.
               window.zkwikiOnView = () => queueMicrotask(() => done({
                 target: !!document.getElementById('zk-part-290'),
                 complete: window.zkwikiLastCompleteMs != null,
               }));
               location.hash = `#/w/${wiki}/p/Long.md?h=part-290`;"#,
            vec![json!(wiki)],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!({"target": true, "complete": true}));
    b.open_page(&wiki, "Ideas.md").await;
    let first = b
        .client
        .execute_async(
            r#"const [wiki, done] = arguments;
               window.zkwikiOnView = () => queueMicrotask(() => done(
                 window.zkwikiLastCompleteMs == null ? document.querySelectorAll('#page-body h2').length : -1));
               location.hash = `#/w/${wiki}/p/Long.md`;"#,
            vec![json!(wiki)],
        )
        .await
        .unwrap();
    let first = first.as_i64().unwrap();
    assert!(first > 0 && first < 300, "first screens only: {first}");
    b.wait_js("document.querySelectorAll('#page-body h2').length === 300 && document.getElementById('zk-part-300')")
        .await;

    // Edit the plan.
    b.open_page(&wiki, "Plan.md").await;
    b.click("#edit").await;
    b.wait("#editor").await;
    let edited = PLAN.replace("| Coffee | 30 |", "| Coffee | 45 |\n| Tea | 12 |");
    b.set_value("#editor", &edited).await;
    b.click("#save").await;
    b.wait_js("document.getElementById('page-body')?.textContent.includes('Tea')")
        .await;

    // Conflicts: alice also has the plan open in another browser (signed in there with her
    // recovery key). Both edit; the second save merges, and overlapping edits are marked with
    // both versions kept. Nothing typed is ever lost.
    let b2 = Browser::start().await;
    b2.client.goto(&format!("{base}/")).await.unwrap();
    b2.fill("#login-user", "alice").await;
    b2.click(".linklike").await;
    b2.fill("#login-recovery", &alice_recovery).await;
    b2.click("#login-submit").await;
    b2.wait_js("document.getElementById('whoami')?.textContent === 'alice'")
        .await;
    // After a recovery-key login the app offers to set a new passphrase: later.
    b2.wait("#new-pass").await;
    b2.click("#dialog .dialog-buttons button").await;
    b2.route(&format!("#/w/{wiki}/edit/Plan.md")).await;
    b2.wait_js("document.getElementById('editor')?.value.includes('Tea')")
        .await;
    b.route(&format!("#/w/{wiki}/edit/Plan.md")).await;
    b.wait_js("document.getElementById('editor')?.value.includes('Tea')")
        .await;
    let mine = b
        .js("return document.getElementById('editor').value;")
        .await;
    let mine = mine
        .as_str()
        .unwrap()
        .replace("status: draft", "status: final");
    b.set_value("#editor", &mine).await;
    b.click("#save").await;
    b.wait_js("document.getElementById('page-body')?.textContent.includes('Tea')")
        .await;
    // The other browser's edit touches another line: merged automatically, shown for review.
    let theirs = b2
        .js("return document.getElementById('editor').value;")
        .await;
    let theirs = theirs
        .as_str()
        .unwrap()
        .replace("- [ ] ship it", "- [ ] ship it soon");
    b2.set_value("#editor", &theirs).await;
    b2.click("#save").await;
    b2.wait_js("!document.getElementById('edit-notice').hidden")
        .await;
    let merged = b2
        .js("return document.getElementById('editor').value;")
        .await;
    let merged = merged.as_str().unwrap().to_owned();
    assert!(
        merged.contains("status: final") && merged.contains("ship it soon"),
        "{merged}"
    );
    b2.screenshot("conflict-merged").await;
    b2.click("#save").await;
    b2.wait_js("document.getElementById('page-body')?.textContent.includes('ship it soon')")
        .await;
    // Now both change the same line: both versions are kept between markers.
    b2.route(&format!("#/w/{wiki}/edit/Plan.md")).await;
    b2.wait_js("document.getElementById('editor')?.value.includes('ship it soon')")
        .await;
    b.route(&format!("#/w/{wiki}/edit/Plan.md")).await;
    b.wait_js("document.getElementById('editor')?.value.includes('ship it soon')")
        .await;
    let text = b
        .js("return document.getElementById('editor').value;")
        .await;
    b.set_value(
        "#editor",
        &text
            .as_str()
            .unwrap()
            .replace("| Servers | 120 |", "| Servers | 150 |"),
    )
    .await;
    b.click("#save").await;
    b.wait_js("document.getElementById('page-body')?.textContent.includes('150')")
        .await;
    let text = b2
        .js("return document.getElementById('editor').value;")
        .await;
    let mine = text
        .as_str()
        .unwrap()
        .replace("| Servers | 120 |", "| Servers | 99 |");
    b2.set_value("#editor", &mine).await;
    b2.click("#save").await;
    b2.wait_js("!document.getElementById('edit-notice').hidden")
        .await;
    let marked = b2
        .js("return document.getElementById('editor').value;")
        .await;
    let marked = marked.as_str().unwrap().to_owned();
    assert!(
        marked.contains("<<<<<<< your version")
            && marked.contains("| Servers | 99 |")
            && marked.contains("| Servers | 150 |"),
        "{marked}"
    );
    b2.screenshot("conflict-marked").await;
    b2.click("#restore-mine").await;
    assert_eq!(
        b2.js("return document.getElementById('editor').value;")
            .await,
        json!(mine)
    );
    b2.click("#save").await;
    b2.wait_js("document.getElementById('page-body')?.textContent.includes('99')")
        .await;
    b2.client.close().await.unwrap();
    // Opening the page again fetches the server's current copy: the other browser's version.
    b.open_page(&wiki, "Ideas.md").await;
    b.open_page(&wiki, "Plan.md").await;
    b.wait_js("document.getElementById('page-body')?.textContent.includes('99')")
        .await;

    // History: every version, the newest with its diff; each checked against its signed state.
    b.click("#history").await;
    b.wait_js("document.querySelectorAll('#history-list li').length === 6")
        .await;
    b.wait_js("document.querySelector('#diff .diff-table tr.ins')")
        .await;
    let diff = b.text("#diff").await;
    assert!(diff.contains("+ | Servers | 99 |"), "{diff}");
    assert!(diff.contains("- | Servers | 150 |"), "{diff}");
    b.click("#history-list li:last-child").await;
    b.wait_js("document.getElementById('diff').textContent.includes('nothing')")
        .await;
    b.click("#history-list li:nth-child(5)").await;
    b.wait_js("document.getElementById('diff').textContent.includes('+ | Tea | 12 |')")
        .await;
    let history = b.text("#history-list").await;
    assert!(history.contains("alice"), "{history}");
    b.screenshot("history").await;

    // Search as you type (prefix of the last word).
    b.open_page(&wiki, "Plan.md").await;
    b.fill("#search", "budg").await;
    b.wait_js("document.querySelectorAll('#search-results .search-hit').length >= 2")
        .await;
    let results = b.text("#search-results").await;
    assert!(
        results.contains("Plan") && results.contains("Ideas"),
        "{results}"
    );
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
    assert_eq!(
        b.js("return window.zkPwned === undefined;").await,
        json!(true)
    );
    assert!(
        b.client.get_alert_text().await.is_err(),
        "an alert dialog opened"
    );
    b.screenshot("script-payloads-inert").await;

    // Rename into a folder (the tree shows it), then delete.
    b.click("#rename").await;
    b.fill("#rename-path", "Attic/Payloads").await;
    b.click("#rename-ok").await;
    b.wait_js("decodeURIComponent(location.hash).endsWith('Attic/Payloads.md') && document.getElementById('page-body')").await;
    b.wait_js(
        "[...document.querySelectorAll('.tree summary')].some((s) => s.textContent === 'Attic')",
    )
    .await;
    b.click("#delete").await;
    b.click("#delete-ok").await;
    b.wait_js(
        "!window.zkwikiTest.pageId('Attic/Payloads.md') && document.getElementById('page-title')",
    )
    .await;
    logout(&b).await;

    // A second user: bob registers; alice invites him after checking his fingerprint.
    register(&b, &base, "bob", BOB_PASS).await;
    let bob_fp = b.text("#sidebar .fingerprint").await;
    logout(&b).await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.route(&format!("#/w/{wiki}/members")).await;
    b.fill("#invite-user", "bob").await;
    b.click("#invite-submit").await;
    let shown = b.wait("#invite-fingerprint").await.text().await.unwrap();
    assert_eq!(
        shown, bob_fp,
        "the invite dialog shows bob's own fingerprint"
    );
    b.screenshot("invite-fingerprint").await;
    b.click("#invite-confirm").await;
    b.wait_js("document.querySelector('tr[data-member=\"bob\"]')")
        .await;
    b.screenshot("members").await;

    // Grant an agent read access: a key file, shown once; then remove it and see what it could
    // have read.
    b.fill("#agent-name", "notes-bot").await;
    b.click("#agent-submit").await;
    let keyfile_text = b.wait("#agent-keyfile").await.text().await.unwrap();
    let keyfile: serde_json::Value = serde_json::from_str(&keyfile_text).unwrap();
    assert_eq!(keyfile["agent"]["role"], "read");
    assert!(
        keyfile["agent"]["token"]
            .as_str()
            .unwrap()
            .starts_with("zka_"),
        "{keyfile}"
    );
    b.screenshot("agent-keyfile").await;
    // The key file works with the CLI (`zkwiki --key-file`), which reads what the browser wrote
    // (pages, index, keyring) and verifies all of it on its own.
    let home = target_dir()
        .join("tmp")
        .join(format!("web-e2e-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let key_path = home.join("notes-bot.zkwiki-agent.json");
    std::fs::write(&key_path, &keyfile_text).unwrap();
    let key_arg = key_path.to_str().unwrap();
    let listed = support::cli(&home, &["--key-file", key_arg, "ls"]);
    assert!(
        listed.contains("Plan.md") && listed.contains("Ideas.md"),
        "{listed}"
    );
    let plan = support::cli(&home, &["--key-file", key_arg, "cat", "Plan.md"]);
    assert!(plan.contains("| Servers | 99 |"), "{plan}");
    b.click("#keyfile-done").await;
    b.wait_js("document.querySelector('tr[data-member=\"notes-bot\"]')")
        .await;
    b.click("button[data-revoke='notes-bot']").await;
    let report = b.wait("#dialog .dialog-body").await.text().await.unwrap();
    assert!(
        report.contains("epochs 1–1") && report.contains("new key epoch (2)"),
        "{report}"
    );
    b.screenshot("revoke-report").await;
    b.click("#revoke-confirm").await;
    b.wait_js("!document.querySelector('tr[data-member=\"notes-bot\"]') && document.querySelector('.page-head p')?.textContent.includes('Key epoch 2')").await;
    logout(&b).await;

    b.login(&base, "bob", BOB_PASS).await;
    b.route(&format!("#/w/{wiki}")).await;
    b.wait_js("window.zkwikiTest.wiki()").await;
    b.open_page(&wiki, "Plan.md").await;
    assert!(b.text("#page-body").await.contains("ship it soon"));
    assert_eq!(
        b.js("return window.zkwikiTest.info().role;").await,
        json!("reader")
    );
    assert_eq!(b.text("#edit").await, "", "a reader gets no Edit button");

    // The operator flips a byte of the plan's envelope on disk. A browser that has not cached
    // the page (bob on another computer: a fresh profile) gets the tampered copy and says so.
    let page = b.js("return window.zkwikiTest.pageId('Plan.md');").await;
    flip_byte_in_page(&server.repo(&wiki), page.as_str().unwrap());
    // (This browser prefers a dark color scheme: the app follows it.)
    let b3 = Browser::start_with(&["--force-dark-mode"]).await;
    b3.login(&base, "bob", BOB_PASS).await;
    b3.open_page(&wiki, "Ideas.md").await;
    b3.screenshot("page-dark").await;
    b3.route(&format!("#/w/{wiki}/p/Plan.md")).await;
    b3.wait_js("!document.getElementById('banner').hidden")
        .await;
    let banner = b3.text("#banner").await;
    assert!(banner.contains("Integrity check failed"), "{banner}");
    assert!(
        banner.contains("differs from the signed manifest"),
        "{banner}"
    );
    let panel = b3.text("#main").await;
    assert!(
        panel.contains("Integrity check failed"),
        "not a blank page: {panel}"
    );
    assert!(
        !panel.contains("Servers"),
        "no tampered content is shown: {panel}"
    );
    b3.screenshot("integrity-warning").await;
    for browser in [&b, &b3] {
        let errors = browser.js("return window.zkwikiErrors;").await;
        assert_eq!(errors, json!([]), "script errors or CSP violations");
    }
    b3.client.close().await.unwrap();

    b.client.close().await.unwrap();
}

/// The served app is pinned by subresource integrity: a server that changes a script module or
/// the WebAssembly module after the build gets an app that refuses to start, not a modified one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modified_app_files_are_refused() {
    let b = Browser::start().await;
    for (name, file) in [("module", "dom.js"), ("wasm", "pkg/web_wasm_bg.wasm")] {
        let web = target_dir()
            .join("tmp")
            .join(format!("web-sri-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&web);
        copy_dir(&web_dir(), &web);
        let mut bytes = std::fs::read(web.join(file)).unwrap();
        if name == "wasm" {
            // A custom section "test": the module stays valid, only its hash changes.
            bytes.extend_from_slice(&[0, 5, 4, b't', b'e', b's', b't']);
        } else {
            bytes.extend_from_slice(b"\n// changed by the server\n");
        }
        std::fs::write(web.join(file), bytes).unwrap();
        let server = Server::start_serving(&format!("sri-{name}"), &web);
        b.client.goto(&format!("{}/", server.base)).await.unwrap();
        if name == "wasm" {
            // The refused module ends the start with a message: wait for it (a fixed 3 s could
            // end before a loaded machine got there).
            b.wait_js(
                "document.getElementById('main')?.textContent.includes('zkwiki could not start')",
            )
            .await;
        } else {
            // A refused script never runs, so nothing will show that it did not: give a
            // modified app that did start the time to say so.
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        let ready = b.js("return window.zkwikiReady === true;").await;
        assert_eq!(
            ready,
            json!(false),
            "the app started with a modified {file}"
        );
        assert!(b.text("#login-user").await.is_empty());
        let main = b.text("#main").await;
        let expected = if name == "wasm" {
            "zkwiki could not start"
        } else {
            "Loading zkwiki"
        };
        assert!(main.contains(expected), "{file}: {main}");
        let _ = std::fs::remove_dir_all(&web);
    }
    b.client.close().await.unwrap();
}
