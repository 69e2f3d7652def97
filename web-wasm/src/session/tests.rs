//! The bindings natively, over an in-memory server that applies the real server's acceptance
//! rule (`core_crypto::snapshot::check_commit`): what JavaScript receives (JSON fields, escaping,
//! ranges to fetch), the link index following the catalog, the attribution and history walks
//! fed the way `wiki.js` feeds them. Error *names* are checked in WebAssembly (`tests/wasm.rs`):
//! natively a thrown JavaScript error cannot be built.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use client::wire::b64;
use core_crypto::ids::WikiId;
use core_crypto::keyring::{Keyring, KeyringDraft};
use core_crypto::snapshot::{CommitRefusal, Snapshot, check_commit};
use core_crypto::state::{Manifest, WikiState};
use serde_json::{Value, json};

use super::*;
use crate::account::Account;

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// What the server stores for one wiki, accepting commits by the server's own rule.
struct Server {
    keyrings: Vec<Vec<u8>>,
    states: Vec<(Vec<u8>, Vec<u8>)>,
    blobs: BTreeMap<Digest32, Vec<u8>>,
}

impl Server {
    fn create(owner: &UserIdentity, name: &str) -> Self {
        let genesis = KeyringDraft::genesis(&mut OsRng, owner, name, MemberKind::Person)
            .unwrap()
            .sign(&mut OsRng, owner)
            .unwrap();
        let snap = Snapshot::genesis(genesis.clone(), owner).unwrap();
        Self {
            keyrings: vec![genesis.as_bytes().to_vec()],
            states: vec![(snap.state.as_bytes().to_vec(), snap.manifest.encode())],
            blobs: BTreeMap::new(),
        }
    }

    fn wiki(&self) -> WikiId {
        Keyring::decode(&self.keyrings[0]).unwrap().wiki
    }

    fn keyring_json(&self, since: usize) -> String {
        let versions: Vec<String> = self.keyrings[since..].iter().map(|k| b64(k)).collect();
        json!({ "versions": versions }).to_string()
    }

    fn head_json(&self) -> String {
        let (s, m) = self.states.last().unwrap();
        json!({"state": b64(s), "manifest": b64(m), "keyring_seq": self.keyrings.len()}).to_string()
    }

    /// The `/states?from=&to=` answer.
    fn states_json(&self, from: u64, to: u64) -> String {
        let states: Vec<Value> = (from..=to)
            .map(|q| {
                let (s, m) = &self.states[q as usize - 1];
                json!({"state": b64(s), "manifest": b64(m)})
            })
            .collect();
        json!({ "states": states }).to_string()
    }

    /// Fetches a range the bindings asked for (`null`: none).
    fn fetch(&self, range: &str) -> Option<String> {
        let r = parse(range);
        (!r.is_null())
            .then(|| self.states_json(r["from"].as_u64().unwrap(), r["to"].as_u64().unwrap()))
    }

    fn accept(
        &mut self,
        state: &[u8],
        manifest: &[u8],
        blobs: Vec<Vec<u8>>,
        keyring: Option<&[u8]>,
    ) -> core::result::Result<(), CommitRefusal> {
        let (hs, hm) = self.states.last().unwrap();
        let accepted = check_commit(
            &Keyring::decode(self.keyrings.last().unwrap()).unwrap(),
            &WikiState::decode(hs).unwrap(),
            &Manifest::decode(hm).unwrap(),
            WikiState::decode(state).map_err(CommitRefusal::Invalid)?,
            manifest,
            blobs,
            keyring,
        )?;
        if let Some(k) = &accepted.keyring {
            self.keyrings.push(k.as_bytes().to_vec());
        }
        for (_, hash, b) in accepted.blobs {
            self.blobs.insert(hash, b);
        }
        self.states.push((state.to_vec(), manifest.to_vec()));
        Ok(())
    }

    /// `POST /commits` with a body from the bindings.
    fn post(&mut self, body: &str) -> core::result::Result<(), CommitRefusal> {
        let c: wire::CommitRequest = wire::parse(body, "commit").unwrap();
        let de = |s: &str| unb64(s, "x").unwrap();
        let blobs = c.blobs.iter().map(|b| de(b)).collect();
        let keyring = c.keyring.as_deref().map(de);
        self.accept(&de(&c.state), &de(&c.manifest), blobs, keyring.as_deref())
    }

    /// Sends and applies a prepared write.
    fn write(&mut self, s: &mut WikiSession, mut w: PendingWrite) -> Option<String> {
        self.post(&w.body()).unwrap();
        s.accept(&mut w).unwrap();
        w.page()
    }

    fn open(&self, who: &Account, seen: &str) -> WikiSession {
        let head = self.head_json();
        let trail = self
            .fetch(&trail_needed(seen, &head).unwrap())
            .unwrap_or_default();
        who.open_wiki(
            &self.wiki().to_hex(),
            &self.keyring_json(0),
            &head,
            seen,
            &trail,
        )
        .unwrap()
    }

    /// The pull loops of `wiki.js`: pages until none is wanted, then the attribution walk.
    fn load_all(&self, s: &mut WikiSession) {
        for _ in 0..10 {
            let wanted = parse(&s.wanted());
            let list = wanted.as_array().unwrap();
            if list.is_empty() {
                break;
            }
            for w in list {
                let hash = Digest32::from_hex(w["hash"].as_str().unwrap()).unwrap();
                let id = page_id(w["page"].as_str().unwrap()).unwrap();
                let _ = s.ws.load(id, &self.blobs[&hash]);
            }
        }
        while let Some(states) = self.fetch(&s.attribution_wanted().unwrap()) {
            s.attribute(&parse_states(&states).unwrap()).unwrap();
        }
    }

    fn envelope(&self, s: &WikiSession, page: &str) -> Vec<u8> {
        let hash = Digest32::from_hex(&s.hash_of(page).unwrap()).unwrap();
        self.blobs[&hash].clone()
    }

    /// A member's client that speaks the format directly: seals a record unchecked.
    fn hostile_put(&mut self, who: &UserIdentity, page: PageId, path: &[u8], author: &[u8]) {
        let (hs, hm) = self.states.last().unwrap().clone();
        let keyrings = self.keyrings.clone();
        let snap = Snapshot::verify(&keyrings, &hs, &hm, &SeenRecord::default()).unwrap();
        let keys = snap.keyring.unlock(who).unwrap();
        let key = keys.key_for_writing("x.md").unwrap();
        let env = core_crypto::envelope::hostile::seal_unchecked(
            &mut OsRng,
            &key,
            &snap.keyring.wiki,
            &page,
            1,
            path,
            author,
            1,
            b"# hostile\n",
        );
        let mut batch = snap.begin_write();
        batch.put_sealed(page, env).unwrap();
        let c = batch.finish(who).unwrap();
        self.accept(c.state.as_bytes(), &c.manifest.encode(), c.blobs, None)
            .unwrap();
    }
}

fn account(name: &str) -> (UserIdentity, Account) {
    let id = UserIdentity::make(&mut OsRng);
    let copy = UserIdentity::from_secret_bytes(id.to_secret_bytes().as_ref()).unwrap();
    (id, Account::from_identity(name, copy))
}

fn user_json(name: &str, id: &UserIdentity) -> String {
    let p = id.public();
    json!({"user": name, "x25519": b64(&p.x25519), "ed25519": b64(&p.ed25519)}).to_string()
}

#[test]
fn small_bindings_delegate_to_the_core() {
    assert_eq!(markdown_path(" /Projects/Plan/ "), "Projects/Plan.md");
    assert_eq!(escape_text("a\u{202e}b\u{1b}"), "a\\u{202e}b\\x1b");
    let e = parse(&classify_server_error(
        409,
        br#"{"error":{"code":"conflict","message":"m"}}"#,
    ));
    assert_eq!(e["name"], "ConflictError");
    let e = parse(&classify_server_error(502, b"<html>"));
    assert_eq!(e["name"], "UnavailableError");
    assert!(e["hint"].is_string());
    assert_eq!(batch_ending_at(300), 45..=300);
    assert_eq!(batch_ending_at(7), 1..=7);
}

#[test]
fn links_follow_the_catalog_and_seen_records_merge() {
    let (alice, a) = account("alice");
    let mut server = Server::create(&alice, "alice");
    let mut s = server.open(&a, "");
    let w = s
        .prepare_put("", "Home.md", "# Home\n\nSee [[Plan]].\n", "", 1.0, "")
        .unwrap();
    let home = server.write(&mut s, w).unwrap();
    let html = s.view_loaded(&home).unwrap().take_html();
    assert!(html.contains("wikilink missing"), "{html}");
    // Viewed again with the same envelope and links: the kept rendering, the same HTML.
    assert_eq!(s.rendered_kept(), 1);
    assert_eq!(s.view_loaded(&home).unwrap().take_html(), html);
    assert_eq!(s.rendered_kept(), 1);
    // Another page appears: the cached link index is rebuilt for the new catalog.
    let path = markdown_path("Plan");
    let w = s.prepare_put("", &path, "plan\n", "", 2.0, "").unwrap();
    server.write(&mut s, w);
    let html = s.view_loaded(&home).unwrap().take_html();
    assert!(
        html.contains("class=\"wikilink\" href=\"#/w/") && !html.contains("missing"),
        "{html}"
    );
    // The rendering made with the old links was dropped, not kept beside the new one.
    assert_eq!(s.rendered_kept(), 1);
    assert_eq!(parse(&s.search("pla", 5))[0]["path"], "Plan.md");

    // What is remembered never moves back: a record stored by a tab that saw more is kept.
    let mine = parse_seen(&s.seen_json("")).unwrap();
    assert_eq!(mine.state.unwrap().seq, 3);
    let mut ahead = mine;
    if let Some(st) = ahead.state.as_mut() {
        st.seq = 9;
    }
    let stored = client::seen::encode(&ahead);
    assert_eq!(parse_seen(&s.seen_json(&stored)).unwrap(), ahead);

    // A reload with the seen record: the trail from the state seen to the head is fetched.
    let seen = s.seen_json("");
    for n in 0..3 {
        let w = s
            .prepare_put("", &format!("N{n}.md"), "x\n", "", 3.0, "")
            .unwrap();
        server.write(&mut s, w);
    }
    assert_eq!(
        parse(&trail_needed(&seen, &server.head_json()).unwrap()),
        json!({"from": 3, "to": 5})
    );
    let fresh = server.open(&a, &seen);
    assert_eq!(fresh.seq(), 6.0);
    // A session three states behind asks for the two between and advances.
    let mut old = server.open(&a, &seen);
    for n in 3..6 {
        let w = s
            .prepare_put("", &format!("N{n}.md"), "x\n", "", 3.0, "")
            .unwrap();
        server.write(&mut s, w);
    }
    let head = server.head_json();
    let range = old.trail_to(&head).unwrap();
    assert_eq!(parse(&range), json!({"from": 7, "to": 8}));
    let trail = server.fetch(&range).unwrap();
    let changed = old.refresh("", &head, &trail).unwrap();
    assert_eq!(parse(&changed), json!([]));
    assert_eq!(old.seq(), 9.0);
    assert_eq!(
        old.trail_to(&server.head_json()).unwrap(),
        "null",
        "up to date"
    );
}

/// A member's records against the rules are isolated, named by the member whose key signed
/// them (found by the attribution walk), escaped for display, and removable; a forged author is
/// shown as a claim beside the signer.
#[test]
fn isolated_pages_name_their_signer_and_can_be_removed() {
    let (alice, a) = account("alice");
    let (mallory, _) = account("mallory");
    let mut server = Server::create(&alice, "alice");
    let mut s = server.open(&a, "");
    let w = s.prepare_put("", "f.md", "f\n", "", 1.0, "").unwrap();
    server.write(&mut s, w);
    let fp = mallory.public().fingerprint();
    let w = s
        .prepare_invite(&user_json("mallory", &mallory), "writer", &fp, 2.0)
        .unwrap();
    server.write(&mut s, w);
    let reserved = PageId::random(&mut OsRng);
    server.hostile_put(&mallory, reserved, b".zkwiki/x", b"mallory");
    let clash = PageId::random(&mut OsRng);
    server.hostile_put(&mallory, clash, b"f.md/g.md", b"mallory");
    let forged = PageId::random(&mut OsRng);
    server.hostile_put(&mallory, forged, b"Notes.md", b"\x1b]0;TITLE\x07alice");

    let mut fresh = server.open(&a, "");
    server.load_all(&mut fresh);
    let isolated = parse(&fresh.isolated());
    let list = isolated.as_array().unwrap();
    assert_eq!(list.len(), 2, "{isolated}");
    for item in list {
        assert_eq!(item["signer"], "mallory", "{item}");
        assert!(item["seq"].as_u64().unwrap() >= 4, "{item}");
    }
    let reserved_item = list
        .iter()
        .find(|i| i["page"] == reserved.to_hex())
        .unwrap();
    assert_eq!(reserved_item["path"], ".zkwiki/x");
    assert!(
        reserved_item["problem"]
            .as_str()
            .unwrap()
            .contains("reserved")
    );
    // The rest of the wiki works: f.md stays (written first), Notes.md reads, with its author
    // escaped and shown as a claim beside the signer.
    assert!(fresh.find("f.md").is_some() && fresh.find("f.md/g.md").is_none());
    let notes = fresh.find("Notes.md").unwrap();
    let env = server.envelope(&fresh, &notes);
    let meta = parse(&fresh.view(&notes, &env).unwrap().meta());
    assert_eq!(meta["author"], "\\x1b]0;TITLE\\x07alice");
    assert_eq!(meta["signer"], "mallory");
    assert_eq!(meta["claim"], "\\x1b]0;TITLE\\x07alice");

    // The owner removes the isolated records.
    for page in [reserved, clash] {
        let w = fresh.prepare_delete(&page.to_hex(), 5.0).unwrap();
        server.write(&mut fresh, w);
    }
    assert_eq!(fresh.isolated(), "[]");
    let mut again = server.open(&a, "");
    server.load_all(&mut again);
    assert_eq!(again.isolated(), "[]");
    assert!(again.find("Notes.md").is_some());
}

/// The history view's versions come from the verified walk: newest first, each with the member
/// who signed it; an old state rewritten by the server is refused.
#[test]
fn page_history_is_walked_and_verified() {
    let (alice, a) = account("alice");
    let (bob, b) = account("bob");
    let mut server = Server::create(&alice, "alice");
    let mut s = server.open(&a, "");
    let w = s.prepare_put("", "Home.md", "one\n", "", 1.0, "").unwrap();
    let page = server.write(&mut s, w).unwrap();
    let fp = bob.public().fingerprint();
    let w = s
        .prepare_invite(&user_json("bob", &bob), "writer", &fp, 2.0)
        .unwrap();
    server.write(&mut s, w);
    let mut bs = server.open(&b, "");
    server.load_all(&mut bs);
    let env = server.envelope(&bs, &page);
    bs.view(&page, &env).unwrap();
    let base = bs.hash_of(&page).unwrap();
    let w = bs
        .prepare_put(&page, "Home.md", "two\n", &base, 3.0, "")
        .unwrap();
    server.write(&mut bs, w);
    for n in 0..3 {
        let w = bs
            .prepare_put("", &format!("Other{n}.md"), "x\n", "", 4.0, "")
            .unwrap();
        server.write(&mut bs, w);
    }
    let mut s = server.open(&a, "");
    server.load_all(&mut s);

    let mut h = s.page_history(&page, 10).unwrap();
    while let Some(states) = server.fetch(&h.wanted()) {
        h.push_states(&parse_states(&states).unwrap()).unwrap();
    }
    let v = parse(&h.versions());
    assert_eq!(v["complete"], true);
    let versions = v["versions"].as_array().unwrap();
    let seqs: Vec<u64> = versions
        .iter()
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 2]);
    assert_eq!(versions[0]["signer"], "bob");
    assert_eq!(versions[1]["signer"], "alice");
    let open = |i: usize| {
        let hash = Digest32::from_hex(versions[i]["hash"].as_str().unwrap()).unwrap();
        parse(
            &h.open(s.ws.keys(), seqs[i], None, &server.blobs[&hash])
                .unwrap(),
        )
    };
    assert_eq!(open(0)["text"], "two\n");
    assert_eq!(open(0)["claim"], Value::Null, "bob wrote as bob");
    assert_eq!(open(1)["text"], "one\n");
    // An envelope that is not the signed one for that version is refused.
    let hash = Digest32::from_hex(versions[1]["hash"].as_str().unwrap()).unwrap();
    let err = h
        .open(s.ws.keys(), seqs[0], None, &server.blobs[&hash])
        .unwrap_err();
    assert_eq!(err.kind, client::Kind::Integrity);

    // The server rewrites state 2 with another state 2 alice signed (on another branch).
    let mut other = Server {
        keyrings: server.keyrings[..1].to_vec(),
        states: server.states[..1].to_vec(),
        blobs: BTreeMap::new(),
    };
    let mut os = other.open(&a, "");
    let w = os
        .prepare_put("", "Home.md", "history rewritten\n", "", 9.0, "")
        .unwrap();
    other.write(&mut os, w);
    let mut rewritten = server.states.clone();
    rewritten[1] = other.states[1].clone();
    let mut h = s.page_history(&page, 10).unwrap();
    let range = parse(&h.wanted());
    let (from, to) = (
        range["from"].as_u64().unwrap(),
        range["to"].as_u64().unwrap(),
    );
    let err = h
        .push_states(&rewritten[from as usize - 1..to as usize])
        .unwrap_err();
    assert_eq!(err.kind, client::Kind::Integrity, "{err:?}");
    let v = parse(&h.versions());
    assert!(
        v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["seq"] != 2),
        "{v}"
    );
}

#[test]
fn kept_renderings_are_bounded() {
    let (alice, a) = account("alice");
    let mut server = Server::create(&alice, "alice");
    let mut s = server.open(&a, "");
    let mut ids = Vec::new();
    for n in 0..RENDERED_PAGES + 3 {
        let w = s
            .prepare_put("", &format!("P{n}.md"), &format!("# P{n}\n"), "", 1.0, "")
            .unwrap();
        ids.push(server.write(&mut s, w).unwrap());
    }
    for (n, id) in ids.iter().enumerate() {
        let html = s.view_loaded(id).unwrap().take_html();
        assert!(html.contains(&format!(">P{n}</h1>")), "{html}");
    }
    assert_eq!(s.rendered_kept(), RENDERED_PAGES);
    // The oldest went first: the newest ones are still kept (viewing one keeps the count).
    s.view_loaded(ids.last().unwrap()).unwrap();
    assert_eq!(s.rendered_kept(), RENDERED_PAGES);
}
