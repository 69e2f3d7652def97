//! Signing in, saving, renaming and dialogs in the web app, end to end in headless Chromium
//! against the real server (issue 13, the web app's remaining items):
//!
//! - the login's Argon2id runs in a worker: the page keeps running timers while it derives,
//!   shows "Unlocking…", and fetches the WebAssembly module once; so do registering and
//!   changing the passphrase, after the client core has checked the new passphrase;
//! - a change message typed on save is kept with the version and shown, as text, in history,
//!   as is one written by another client of the core (the CLI's `-m`);
//! - renaming a page offers to update the links to it, and does, in one commit;
//! - both wikilink orders (`[[Target|Label]]`, Otterwiki's `[[Label|Target]]`) render as links
//!   to the target;
//! - a dialog focuses its first field and gives the focus back to what opened it.
//!
//! Accounts and seed pages are made by a test client in this process (`support::member`); the
//! browser signs in through the form. Needs the built web app and server: run with
//! `cargo xtask test` (see `support/mod.rs`).

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use client::links::WikilinkStyle;
use client::workspace::WikiSettings;
use core_crypto::envelope::VersionNote;
use serde_json::{Value, json};
use support::member::Member;
use support::{Browser, Server};

const ALICE_PASS: &str = "alice's long passphrase";

/// The id of the focused element (`""` when none has one).
async fn focused(b: &Browser) -> Value {
    b.js("return document.activeElement ? document.activeElement.id : null;")
        .await
}

/// Starts a timer in the page that records every tick, and whether the key-derivation status
/// (`#unlock-status` with its spinner) was on screen at that tick.
async fn start_ticks(b: &Browser) {
    b.js("window.zkTicks = [];
          (function tick() {
            const s = document.getElementById('unlock-status');
            window.zkTicks.push([performance.now(), !!(s && s.querySelector('.spinner'))]);
            setTimeout(tick, 4);
          })();")
        .await;
}

/// Asserts that the page kept running its timer (see [`start_ticks`]) through the last Argon2id
/// derivation (`zk-kdf-start` to `zk-kdf-done`) and showed that it was working; returns how
/// long the derivation took (ms).
async fn derived_without_freezing(b: &Browser, what: &str) -> f64 {
    let t = b
        .js(
            "const m = (n) => performance.getEntriesByName(n).pop().startTime;
             const r = [m('zk-kdf-start'), m('zk-kdf-done'), window.zkTicks];
             window.zkTicks = [];
             return r;",
        )
        .await;
    let (start, end) = (t[0].as_f64().unwrap(), t[1].as_f64().unwrap());
    let ticks: Vec<(f64, bool)> = serde_json::from_value(t[2].clone()).unwrap();
    let derive_ms = end - start;
    assert!(derive_ms > 0.0, "{what}: {derive_ms}");
    // The ticks around the derivation: the one before it through the one after it.
    let first = ticks.iter().rposition(|(at, _)| *at <= start).unwrap();
    let last = ticks
        .iter()
        .position(|(at, _)| *at >= end)
        .unwrap_or(ticks.len() - 1);
    let window = &ticks[first..=last];
    let longest_gap = window
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0, f64::max);
    let shown = window.iter().filter(|(_, working)| *working).count();
    eprintln!(
        "{what}: Argon2id in the worker: {derive_ms:.0} ms; {} timer ticks meanwhile, longest gap {longest_gap:.0} ms",
        window.len()
    );
    // On the main thread, the derivation would be one gap as long as itself, with no tick
    // (and so no status seen by a tick) during it.
    assert!(
        window.len() >= 4 && longest_gap < derive_ms / 2.0,
        "{what}: the page stopped while deriving: {derive_ms:.0} ms derivation, {} ticks, longest gap {longest_gap:.0} ms",
        window.len()
    );
    assert!(
        shown >= 2,
        "{what}: the working status was on screen at {shown} ticks"
    );
    derive_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_derives_the_key_in_a_worker_and_the_page_stays_responsive() {
    let server = Server::start("editing-login");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(&wiki, &mut ws, "Home.md", "# Home\n");

    let b = Browser::start().await;
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.wait_js("window.zkwikiReady === true").await;

    // A wrong passphrase: the worker derives, the server refuses, the form says so.
    b.fill("#login-user", "alice").await;
    b.fill("#login-pass", "not alice's passphrase").await;
    b.click("#login-submit").await;
    b.wait_js("document.querySelector('.form-status.form-error')?.textContent.length > 0")
        .await;
    assert!(
        b.js("return !document.getElementById('login-submit').disabled;")
            .await
            == json!(true)
    );

    start_ticks(&b).await;
    b.fill("#login-pass", ALICE_PASS).await;
    b.click("#login-submit").await;
    b.wait_js("document.getElementById('whoami')?.textContent === 'alice'")
        .await;
    derived_without_freezing(&b, "login").await;
    // The worker ran, and reused the page's module: one fetch of the wasm in all.
    let fetched = b
        .js("return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname);")
        .await;
    let fetched: Vec<String> = serde_json::from_value(fetched).unwrap();
    assert!(
        fetched.iter().any(|p| p.ends_with("/argon2-worker.js")),
        "{fetched:?}"
    );
    assert_eq!(
        fetched.iter().filter(|p| p.ends_with(".wasm")).count(),
        1,
        "{fetched:?}"
    );
    b.open_page(&wiki, "Home.md").await;
    b.no_script_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_and_changing_the_passphrase_derive_in_the_worker() {
    const OLD: &str = "dora's first passphrase";
    const NEW: &str = "dora's second passphrase";
    let server = Server::start("editing-register");
    let base = server.base.clone();
    let b = Browser::start().await;
    b.client.goto(&format!("{base}/#/register")).await.unwrap();
    b.wait_js("window.zkwikiReady === true").await;

    // Registering: the new passphrase's Argon2id runs in the worker, the page keeps going.
    start_ticks(&b).await;
    b.fill("#reg-user", "dora").await;
    b.fill("#reg-pass", OLD).await;
    b.fill("#reg-pass2", OLD).await;
    b.click("#reg-submit").await;
    b.wait("#recovery-key").await;
    derived_without_freezing(&b, "registration").await;
    b.click("#saved-recovery").await;
    b.click("#recovery-continue").await;
    b.wait_js("document.getElementById('whoami')?.textContent === 'dora'")
        .await;

    // A new passphrase under the client core's minimum is refused before any derivation.
    let derivations = "return performance.getEntriesByName('zk-kdf-start').length;";
    let before = b.js(derivations).await;
    b.click("#change-pass").await;
    b.fill("#new-pass", "too short").await;
    b.fill("#new-pass2", "too short").await;
    b.click("#new-pass-save").await;
    b.wait_js("document.querySelector('#dialog .form-error')?.textContent.includes('shorter than 10 characters')")
        .await;
    assert_eq!(b.js(derivations).await, before);

    // A good one: derived in the worker, the identity sealed again under it, saved.
    start_ticks(&b).await;
    b.fill("#new-pass", NEW).await;
    b.fill("#new-pass2", NEW).await;
    b.click("#new-pass-save").await;
    b.wait_js("document.getElementById('toast')?.textContent === 'Passphrase changed'")
        .await;
    derived_without_freezing(&b, "passphrase change").await;

    // Only the new passphrase opens the account now, in a fresh browser.
    let fresh = Browser::start().await;
    fresh.client.goto(&format!("{base}/")).await.unwrap();
    fresh.fill("#login-user", "dora").await;
    fresh.fill("#login-pass", OLD).await;
    fresh.click("#login-submit").await;
    fresh
        .wait_js("document.querySelector('.form-status.form-error')?.textContent.length > 0")
        .await;
    fresh.login(&base, "dora", NEW).await;
    b.no_script_errors().await;
    fresh.no_script_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_message_is_kept_and_shown_in_history() {
    let server = Server::start("editing-messages");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(&wiki, &mut ws, "Plan.md", "# Plan\n\nfirst\n");
    // Another client of the core (the CLI's `put -m` writes the same note).
    let id = ws.find("Plan.md").unwrap();
    let base_hash = ws.snapshot().manifest.pages[&id].hash;
    let note = VersionNote {
        message: "from the command line".into(),
        author_email: "alice@example.org".into(),
        ..VersionNote::default()
    };
    let p = ws
        .prepare_put_with(
            Some(id),
            "Plan.md",
            b"# Plan\n\nsecond\n".to_vec(),
            Some(base_hash),
            1_700_000_000_000,
            note,
        )
        .unwrap();
    alice.commit(&wiki, &mut ws, p);

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Plan.md").await;
    b.click("#edit").await;
    b.wait("#editor").await;
    b.set_value("#editor", "# Plan\n\nthird\n").await;
    // Markup in a message is text, never HTML.
    b.fill("#edit-message", "  Third draft: <b>bold</b> & done  ")
        .await;
    b.screenshot("editor-change-message").await;
    b.click("#save").await;
    // Saved: the editor hands over to the page.
    b.wait_js("!document.getElementById('editor') && document.getElementById('page-body')?.dataset.path === 'Plan.md'")
        .await;
    assert!(b.text("#page-body").await.contains("third"));

    b.click("#history").await;
    b.wait_js("document.querySelectorAll('#history-list li').length === 3")
        .await;
    let messages = b
        .js("return [...document.querySelectorAll('#history-list li')].map((li) => li.querySelector('.history-message')?.textContent ?? null);")
        .await;
    assert_eq!(
        messages,
        json!([
            "Third draft: <b>bold</b> & done",
            "from the command line",
            null
        ])
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#history-list b').length;")
            .await,
        json!(0)
    );
    let title = b
        .js("return document.querySelector('#history-list li:nth-child(2) .history-message').title;")
        .await;
    assert!(
        title.as_str().unwrap().contains("alice@example.org"),
        "{title}"
    );
    b.screenshot("history-messages").await;
    b.no_script_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_a_page_offers_to_update_the_links_to_it() {
    let server = Server::start("editing-rename");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(&wiki, &mut ws, "Plan.md", "# Plan\n");
    alice.put(
        &wiki,
        &mut ws,
        "Home.md",
        "# Home\n\nSee [[Plan|the plan]] and [details](Plan.md#goals).\n",
    );
    alice.put(&wiki, &mut ws, "Other.md", "# Other\n\nNo links.\n");
    let before = alice.head_seq(&wiki);

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Plan.md").await;
    b.click("#rename").await;
    b.wait_js("!document.getElementById('rename-links-row').hidden")
        .await;
    assert_eq!(
        b.js("return document.getElementById('rename-links').checked;")
            .await,
        json!(true)
    );
    let offer = b.text("#rename-links-text").await;
    assert!(
        offer.contains("1 page") && offer.contains("Home"),
        "{offer}"
    );
    b.set_value("#rename-path", "Archive/Old plan").await;
    b.screenshot("rename-update-links").await;
    b.click("#rename-ok").await;
    b.wait_js("decodeURIComponent(location.hash).endsWith('Archive/Old plan.md')")
        .await;
    // One commit for the rename and the rewritten page.
    assert_eq!(alice.head_seq(&wiki), before + 1);

    // The backlinking page now links to the new path, labels kept.
    b.open_page(&wiki, "Home.md").await;
    let links = b
        .js("return [...document.querySelectorAll('#page-body a')].map((a) => [decodeURIComponent(a.getAttribute('href')), a.textContent, a.classList.contains('missing')]);")
        .await;
    let links: Vec<(String, String, bool)> = serde_json::from_value(links).unwrap();
    assert_eq!(links.len(), 2, "{links:?}");
    for (href, _, missing) in &links {
        assert!(
            href.contains("/p/Archive/Old plan.md") && !missing,
            "{links:?}"
        );
    }
    assert_eq!(links[0].1, "the plan");
    let ws = alice.open(&wiki);
    let home = ws.find("Home.md").unwrap();
    let mut ws = ws;
    let hash = ws.snapshot().manifest.pages[&home].hash.to_hex();
    ws.load(home, &alice.blob(&wiki, &hash)).unwrap();
    assert_eq!(
        ws.record(&home).unwrap().markdown(),
        Some("# Home\n\nSee [[Old plan|the plan]] and [details](Archive/Old%20plan.md#goals).\n")
    );

    // Unticked, only the page moves.
    b.open_page(&wiki, "Archive/Old plan.md").await;
    b.click("#rename").await;
    b.wait_js("!document.getElementById('rename-links-row').hidden")
        .await;
    b.click("#rename-links").await;
    b.set_value("#rename-path", "Plan").await;
    b.click("#rename-ok").await;
    b.wait_js("decodeURIComponent(location.hash).endsWith('/p/Plan.md')")
        .await;
    b.open_page(&wiki, "Home.md").await;
    assert_eq!(
        b.js("return document.querySelectorAll('#page-body a.missing').length;")
            .await,
        json!(2)
    );
    b.no_script_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_wikilink_orders_render_links_to_the_target() {
    let server = Server::start("editing-link-orders");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let text = "# Home\n\n[[Guide|Read the guide]] and [[Read the guide|Guide]] and [[Guide]].\n";
    // The default wiki (target first) and an Otterwiki-style one (label first).
    let mut wikis = Vec::new();
    for style in [WikilinkStyle::TargetFirst, WikilinkStyle::LabelFirst] {
        let wiki = alice.create_wiki();
        let mut ws = alice.open(&wiki);
        if style == WikilinkStyle::LabelFirst {
            let settings = WikiSettings {
                wikilink_style: style,
                ..WikiSettings::default()
            };
            let p = ws.prepare_settings(&settings, 1).unwrap();
            alice.commit(&wiki, &mut ws, p);
        }
        alice.put(&wiki, &mut ws, "Guide.md", "# Guide\n");
        alice.put(&wiki, &mut ws, "Home.md", text);
        wikis.push((style, wiki));
    }

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    for (style, wiki) in &wikis {
        b.open_page(wiki, "Home.md").await;
        let links = b
            .js("return [...document.querySelectorAll('#page-body a')].map((a) => [decodeURIComponent(a.getAttribute('href')), a.textContent, a.classList.contains('missing')]);")
            .await;
        let links: Vec<(String, String, bool)> = serde_json::from_value(links).unwrap();
        // (label, goes to Guide.md): in a target-first wiki `[[Guide|Read the guide]]` is the
        // link to Guide and `[[Read the guide|Guide]]` names a missing page; in a label-first
        // (Otterwiki) wiki the other way round. `[[Guide]]` is the same in both.
        let expected = match style {
            WikilinkStyle::TargetFirst => {
                [("Read the guide", true), ("Guide", false), ("Guide", true)]
            }
            WikilinkStyle::LabelFirst => {
                [("Guide", false), ("Read the guide", true), ("Guide", true)]
            }
        };
        let shown: Vec<(&str, bool)> = links
            .iter()
            .map(|(href, label, missing)| {
                let to_guide = href.ends_with("/p/Guide.md") && !missing;
                assert!(to_guide || *missing, "{style:?}: {links:?}");
                (label.as_str(), to_guide)
            })
            .collect();
        assert_eq!(shown, expected, "{style:?}: {links:?}");
        b.screenshot(&format!("wikilinks-{}", style.as_str().replace('|', "-")))
            .await;
    }
    b.no_script_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialogs_focus_their_first_field_and_give_focus_back() {
    let server = Server::start("editing-focus");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(&wiki, &mut ws, "Plan.md", "# Plan\n");

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Plan.md").await;

    // Esc: the rename dialog had its field focused, and the Rename button gets the focus back.
    b.js("document.getElementById('rename').focus();").await;
    b.wait("#rename").await.send_keys("\u{e007}").await.unwrap();
    b.wait_js("document.getElementById('dialog').open").await;
    assert_eq!(focused(&b).await, json!("rename-path"));
    b.wait("#rename-path")
        .await
        .send_keys("\u{e00c}")
        .await
        .unwrap();
    // The focus comes back in the dialog's `close` event, a task queued after it closed: wait
    // for it rather than read it in the same breath.
    b.wait_js("!document.getElementById('dialog').open && document.activeElement?.id === 'rename'")
        .await;

    // Cancel: the same, for the delete dialog (no field: its first button).
    b.js("document.getElementById('delete').focus();").await;
    b.wait("#delete").await.send_keys("\u{e007}").await.unwrap();
    b.wait_js("document.getElementById('dialog').open").await;
    let first = b
        .js("return document.activeElement.closest('dialog') !== null && document.activeElement.tagName;")
        .await;
    assert_eq!(first, json!("BUTTON"));
    b.click("#dialog .dialog-buttons button:first-child").await;
    b.wait_js("!document.getElementById('dialog').open && document.activeElement?.id === 'delete'")
        .await;
    b.no_script_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_to_a_version_is_one_confirmed_action() {
    let server = Server::start("editing-revert");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    for text in ["# Plan\n\none\n", "# Plan\n\ntwo\n", "# Plan\n\nthree\n"] {
        alice.put(&wiki, &mut ws, "Plan.md", text);
    }
    let before = alice.head_seq(&wiki);

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Plan.md").await;
    b.click("#history").await;
    b.wait_js("document.querySelectorAll('#history-list li').length === 3")
        .await;
    // Not on the current version; on an earlier one, with a confirmation first.
    assert_eq!(
        b.js("return !!document.getElementById('revert-version');")
            .await,
        json!(false)
    );
    b.click("#history-list li:nth-child(3)").await;
    b.wait_js("document.getElementById('revert-version')?.textContent === 'Revert to version 1'")
        .await;
    b.click("#revert-version").await;
    b.wait_js("document.getElementById('dialog').open").await;
    b.screenshot("history-revert-confirm").await;
    b.click("#dialog .dialog-buttons button:first-child").await;
    b.wait_js("!document.getElementById('dialog').open").await;
    assert_eq!(alice.head_seq(&wiki), before, "cancel changes nothing");

    b.click("#revert-version").await;
    b.wait("#revert-ok").await;
    b.click("#revert-ok").await;
    b.wait_js("document.getElementById('page-body')?.dataset.path === 'Plan.md' && document.getElementById('page-body').textContent.includes('one')")
        .await;
    assert_eq!(alice.head_seq(&wiki), before + 1, "one new version");
    b.click("#history").await;
    b.wait_js("document.querySelectorAll('#history-list li').length === 4")
        .await;
    assert_eq!(
        b.text("#history-list li:first-child .history-message")
            .await,
        "Revert to version 1"
    );
    b.no_script_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_changes_list_every_page_version_across_the_wiki() {
    let server = Server::start("editing-changes");
    let base = server.base.clone();
    let alice = Member::register(&base, "alice", ALICE_PASS);
    let wiki = alice.create_wiki();
    let mut ws = alice.open(&wiki);
    alice.put(&wiki, &mut ws, "Home.md", "# Home\n");
    alice.put(&wiki, &mut ws, "Notes/Plan.md", "# Plan\n");
    let note = VersionNote {
        message: "second draft".into(),
        ..VersionNote::default()
    };
    let id = ws.find("Notes/Plan.md").unwrap();
    let hash = ws.snapshot().manifest.pages[&id].hash;
    let p = ws
        .prepare_put_with(
            Some(id),
            "Notes/Plan.md",
            b"# Plan\n\nmore\n".to_vec(),
            Some(hash),
            1_700_000_000_000,
            note,
        )
        .unwrap();
    alice.commit(&wiki, &mut ws, p);
    let gone = alice.put(&wiki, &mut ws, "Old.md", "# Old\n");
    let p = ws.prepare_delete(gone, 1_700_000_000_001).unwrap();
    alice.commit(&wiki, &mut ws, p);

    let b = Browser::start().await;
    b.login(&base, "alice", ALICE_PASS).await;
    b.open_page(&wiki, "Home.md").await;
    b.click("#changes-link").await;
    // Every page version of every wiki version, newest first; none of zkwiki's own records.
    b.wait_js("document.querySelectorAll('#changes-list li').length === 5 && [...document.querySelectorAll('#changes-list li')].every((li) => li.dataset.deleted || li.querySelector('.history-time').textContent)")
        .await;
    let rows = b
        .js("return [...document.querySelectorAll('#changes-list li')].map((li) => li.querySelector('.history-who').textContent.replace(/\\s+/g, ' ').trim());")
        .await;
    assert_eq!(
        rows,
        json!([
            "Old deleted by alice",
            "Old by alice",
            "Notes/Plan by alice",
            "Notes/Plan by alice",
            "Home by alice"
        ])
    );
    assert_eq!(
        b.text("#changes-list li:nth-child(3) .history-message")
            .await,
        "second draft"
    );
    b.screenshot("recent-changes").await;
    // A live page's entry links to it.
    b.click("#changes-list li:nth-child(3) a").await;
    b.wait_js("document.getElementById('page-body')?.dataset.path === 'Notes/Plan.md'")
        .await;
    b.no_script_errors().await;
}
