//! The client logic against an in-memory stand-in for the server.

use super::*;
use crate::error::Kind;
use core_crypto::envelope::PageKind;

/// What the server stores for one wiki, and the checks it applies to a commit (simplified).
struct FakeServer {
    keyrings: Vec<Vec<u8>>,
    states: Vec<(Vec<u8>, Vec<u8>)>,
    blobs: BTreeMap<Digest32, Vec<u8>>,
}

impl FakeServer {
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

    fn head(&self) -> (&[u8], &[u8]) {
        let (s, m) = self.states.last().unwrap();
        (s, m)
    }

    fn open(&self, who: &UserIdentity, name: &str, seen: &SeenRecord) -> AppResult<Workspace> {
        let (s, m) = self.head();
        Workspace::open(who, name, self.wiki(), &self.keyrings, s, m, seen)
    }

    /// Accepts the commit if it extends the head (else a 409), like the real server.
    fn commit(&mut self, p: &Pending) -> Result<(), ()> {
        let c = p.commit();
        let head = WikiState::decode(self.head().0).unwrap();
        if c.state.seq != head.seq + 1 || c.state.prev != head.hash() {
            return Err(());
        }
        if let Some(k) = &c.keyring {
            self.keyrings.push(k.as_bytes().to_vec());
        }
        for b in &c.blobs {
            self.blobs.insert(Digest32::of(b), b.clone());
        }
        self.states
            .push((c.state.as_bytes().to_vec(), c.manifest.encode()));
        Ok(())
    }

    /// Loads what the workspace asks for until it asks for nothing; returns how many fetches.
    fn load_all(&self, ws: &mut Workspace) -> usize {
        let mut fetched = 0;
        for _ in 0..10 {
            let wanted = ws.wanted();
            if wanted.is_empty() {
                break;
            }
            for (id, hash) in wanted {
                fetched += 1;
                let _ = ws.load(id, &self.blobs[&hash]);
            }
        }
        fetched
    }

    /// Fetches and decrypts one page's current version.
    fn load_page(&self, ws: &mut Workspace, id: PageId) {
        let hash = ws.snapshot().manifest.pages[&id].hash;
        ws.load(id, &self.blobs[&hash]).unwrap();
    }
}

fn write(server: &mut FakeServer, ws: &mut Workspace, path: &str, text: &str) -> PageId {
    let id = ws.find(path);
    let base = id.and_then(|i| ws.pages().get(&i).map(|p| p.hash));
    let p = ws
        .prepare_put(id, path, text, base, 1_700_000_000_000)
        .unwrap();
    let page = p.page.unwrap();
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();
    page
}

#[test]
fn write_reload_render_search() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(
        &mut server,
        &mut ws,
        "Home.md",
        "---\ntitle: Welcome\n---\nSee [[Plan]] and [[Nowhere]].\n",
    );
    write(
        &mut server,
        &mut ws,
        "Plan.md",
        "# Plan\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
    );
    let seen = ws.seen();

    // A fresh session (a reload) verifies from bytes and reads the index, not every page.
    let mut ws2 = server.open(&alice, "alice", &seen).unwrap();
    assert_eq!(ws2.wanted().len(), 1, "only the index is fetched");
    assert_eq!(server.load_all(&mut ws2), 1);
    assert!(ws2.failures().is_empty());
    assert_eq!(ws2.catalog().len(), 2);
    assert!(ws2.pages().is_empty());
    let home = ws2.find("home.md").unwrap();
    // Search uses the index: whole words and, for the last term, prefixes.
    assert_eq!(ws2.search("wel", 10)[0].path, "Home.md");
    assert_eq!(ws2.search("plan", 10)[0].path, "Plan.md");
    assert!(ws2.search("nothing-like-this", 10).is_empty());
    server.load_page(&mut ws2, home);
    let page = &ws2.pages()[&home];
    let r = ws2.render(&page.record.path, page.record.markdown().unwrap());
    assert_eq!(r.title.as_deref(), Some("Welcome"));
    assert!(
        r.html.contains("class=\"wikilink\" href=\"#/w/"),
        "{}",
        r.html
    );
    assert!(r.html.contains("class=\"wikilink missing\""), "{}", r.html);
    let hits = ws2.search("see", 10);
    assert_eq!(hits[0].snippet[1].0, "See");
    assert_eq!(ws2.head_signer(), Some("alice"));
}

#[test]
fn stale_or_missing_index_is_rebuilt_from_pages() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut ws, "Home.md", "home\n");
    // Another client writes a page without updating the index.
    let keys = ws.snapshot().keyring.unlock(&alice).unwrap();
    let mut batch = ws.snapshot().begin_write();
    let id = PageId::random(&mut OsRng);
    let record = PageRecord {
        kind: PageKind::Markdown,
        path: "Unindexed.md".into(),
        author: "alice".into(),
        written_at_ms: 0,
        content: b"quiet words".to_vec(),
    };
    batch.put(&mut OsRng, &keys, id, &record).unwrap();
    let c = batch.finish(&alice).unwrap();
    let p = Pending {
        base_state: ws.snapshot().state.hash(),
        commit: c,
        written: vec![],
        removed: vec![],
        catalog: None,
        index_written: false,
        page: None,
    };
    server.commit(&p).unwrap();
    let mut fresh = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    assert_eq!(
        server.load_all(&mut fresh),
        2,
        "the index, then the page it lacks"
    );
    assert_eq!(fresh.find("Unindexed.md"), Some(id));
    assert_eq!(fresh.search("quiet", 5)[0].path, "Unindexed.md");
    // The next write stores a fresh index.
    write(&mut server, &mut fresh, "Third.md", "3\n");
    let mut again = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    assert_eq!(server.load_all(&mut again), 1);
    assert_eq!(again.catalog().len(), 3);
}

#[test]
fn conflicting_save_is_reported_not_lost() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let page = write(&mut server, &mut a, "Home.md", "v1\n");
    let base = a.pages()[&page].hash;

    let mut b = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    server.load_all(&mut b);
    write(&mut server, &mut a, "Home.md", "v2 from a\n");

    // B's save is built on an old head: the server refuses it.
    let stale = b
        .prepare_put(Some(page), "Home.md", "v2 from b\n", Some(base), 0)
        .unwrap();
    assert!(server.commit(&stale).is_err());
    // B refreshes from the 409's head; saving again from the same base is a conflict.
    let (s, m) = server.head();
    let changed = b.refresh(&server.keyrings[1..], s, m).unwrap();
    assert_eq!(changed, [page]);
    let err = b
        .prepare_put(Some(page), "Home.md", "v2 from b\n", Some(base), 0)
        .unwrap_err();
    assert_eq!(err.kind, Kind::Conflict);
    assert_eq!(err.page, Some(page));
    // A write to another page goes through after the refresh.
    server.load_all(&mut b);
    write(&mut server, &mut b, "Other.md", "x\n");
}

#[test]
fn tampered_blob_and_rollback_are_integrity_errors() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let page = write(&mut server, &mut ws, "Home.md", "secret text\n");
    let seen = ws.seen();

    let mut fresh = server.open(&alice, "alice", &seen).unwrap();
    server.load_all(&mut fresh);
    let hash = fresh.snapshot().manifest.pages[&page].hash;
    let mut blob = server.blobs[&hash].clone();
    let last = blob.len() - 1;
    blob[last] ^= 1;
    let err = fresh.load(page, &blob).unwrap_err();
    assert_eq!(err.kind, Kind::Integrity);
    assert!(
        err.message.contains("differs from the signed manifest"),
        "{}",
        err.message
    );
    assert!(fresh.failures().contains_key(&page));
    fresh.mark_missing(page, "404");
    assert!(fresh.failures()[&page].contains("did not return it"));

    // The server serves the first state again after the client saw the second.
    let (s, m) = server.states[0].clone();
    let err = Workspace::open(
        &alice,
        "alice",
        server.wiki(),
        &server.keyrings,
        &s,
        &m,
        &seen,
    )
    .unwrap_err();
    assert_eq!(err.kind, Kind::Integrity);
    assert!(err.message.contains("rollback"), "{}", err.message);
}

#[test]
fn invite_reader_then_revoke() {
    let alice = UserIdentity::make(&mut OsRng);
    let bob = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut a, "Home.md", "hello bob\n");
    let p = a
        .prepare_add_member("bob", MemberKind::Person, Role::Reader, bob.public())
        .unwrap();
    server.commit(&p).unwrap();
    a.accept(p).unwrap();
    let members = a.members();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1].fingerprint, bob.public().fingerprint());
    assert!(members[0].me && !members[1].me);

    let mut b = server.open(&bob, "bob", &SeenRecord::default()).unwrap();
    server.load_all(&mut b);
    let home = b.find("Home.md").unwrap();
    server.load_page(&mut b, home);
    assert_eq!(b.pages()[&home].record.content, b"hello bob\n");
    assert_eq!(b.my_role(), Some(Role::Reader));
    let err = b.prepare_put(None, "x.md", "x", None, 0).unwrap_err();
    assert_eq!(err.kind, Kind::Access, "{err:?}");
    assert!(err.message.contains("cryptography"));

    let (p, report) = a.prepare_remove_member("bob").unwrap();
    assert_eq!(
        (
            report.epochs_readable,
            report.pages_readable,
            report.new_epoch
        ),
        (1, 1, 2)
    );
    server.commit(&p).unwrap();
    a.accept(p).unwrap();
    write(&mut server, &mut a, "After.md", "not for bob\n");
    let (s, m) = server.head();
    let err = b.refresh(&server.keyrings[1..], s, m).unwrap_err();
    assert_eq!(err.kind, Kind::Access);
}

#[test]
fn history_versions_verify_against_their_state() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let page = write(&mut server, &mut ws, "Home.md", "one\n");
    let h1 = ws.pages()[&page].hash;
    write(&mut server, &mut ws, "Home.md", "two\n");
    let (s1, m1) = server.states[1].clone();
    let v = ws.open_version(page, &s1, &m1, &server.blobs[&h1]).unwrap();
    assert_eq!(
        (v.seq, v.signer.as_str(), v.record.content.as_slice()),
        (2, "alice", &b"one\n"[..])
    );
    // A blob that is not the one that state signs is refused.
    let h2 = ws.pages()[&page].hash;
    let err = ws
        .open_version(page, &s1, &m1, &server.blobs[&h2])
        .unwrap_err();
    assert_eq!(err.kind, Kind::Integrity);
    // Rename keeps the id; delete removes it.
    let p = ws.prepare_rename(page, "Start.md", 0).unwrap();
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();
    assert_eq!(ws.find("Start.md"), Some(page));
    assert!(ws.prepare_put(None, "start.MD", "dup", None, 0).is_err());
    let p = ws.prepare_delete(page, 0).unwrap();
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();
    assert!(ws.find("Start.md").is_none());
}

#[test]
fn folder_scoped_member_fetches_only_its_folder() {
    let alice = UserIdentity::make(&mut OsRng);
    let bot = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut a, "Home.md", "private\n");
    // A folder-scoped agent, added with the core API (the app grants whole-wiki agents).
    let keys = a.snapshot().keyring.unlock(&alice).unwrap();
    let mut draft = KeyringDraft::edit(&a.snapshot().keyring, &keys).unwrap();
    draft
        .add_member(NewMember {
            name: "bot".into(),
            kind: MemberKind::Agent,
            role: Role::Writer,
            public: bot.public(),
            prefix: "research/".into(),
        })
        .unwrap();
    let p = a.keyring_write(draft).unwrap();
    server.commit(&p).unwrap();
    a.accept(p).unwrap();
    let id = write(&mut server, &mut a, "research/notes.md", "for the bot\n");

    let mut b = server.open(&bot, "bot", &SeenRecord::default()).unwrap();
    server.load_all(&mut b);
    assert!(b.failures().is_empty(), "{:?}", b.failures());
    assert_eq!(b.find("research/notes.md"), Some(id));
    assert!(b.find("Home.md").is_none());
    assert_eq!(
        a.members()
            .iter()
            .find(|m| m.name == "bot")
            .and_then(|m| m.folder.clone()),
        Some("research/".to_owned())
    );
}

/// A large wiki's index lags by up to `MAX_LAG` pages: small edits do not carry it, a fresh
/// session fetches the index and then just the pages it does not describe, and the write that
/// would exceed the lag stores it again. (A small wiki's index goes with every write, as the tests
/// above show.)
#[test]
fn a_large_wikis_index_lags_a_little() {
    use core_crypto::index::{LAG_ABOVE_PAGES, MAX_LAG};
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let bulk: Vec<(PageId, PageRecord)> = (0..LAG_ABOVE_PAGES + 10)
        .map(|k| {
            let r = ws.record(
                &format!("Bulk{k}.md"),
                format!("bulk {k}\n").into_bytes(),
                1,
            );
            (PageId::random(&mut OsRng), r)
        })
        .collect();
    let p = ws.write_pages(bulk, Vec::new(), None, 1).unwrap();
    assert!(p.index_written, "no stored index yet: written");
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();

    let mut carried = Vec::new();
    for n in 0..MAX_LAG + 5 {
        let path = format!("Note{n}.md");
        let p = ws
            .prepare_put(None, &path, &format!("note {n} zq{n}x\n"), None, 2)
            .unwrap();
        let blobs = p.commit().blobs.len();
        assert_eq!(blobs, if p.index_written { 2 } else { 1 }, "write {n}");
        if p.index_written {
            carried.push(n);
        }
        server.commit(&p).unwrap();
        ws.accept(p).unwrap();
        if n == 3 {
            // A fresh session: the index, then the four pages it does not describe.
            let mut fresh = server
                .open(&alice, "alice", &SeenRecord::default())
                .unwrap();
            assert_eq!(server.load_all(&mut fresh), 1 + 4);
            assert_eq!(fresh.catalog().len(), LAG_ABOVE_PAGES + 10 + 4);
            assert!(!fresh.search("zq3x", 5).is_empty());
        }
    }
    assert_eq!(
        carried,
        vec![MAX_LAG],
        "the write past the lag limit stores the index"
    );
    let mut fresh = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    assert_eq!(
        server.load_all(&mut fresh),
        1 + 4,
        "the index, then the 4 pages since"
    );
    assert_eq!(fresh.catalog().len(), LAG_ABOVE_PAGES + 10 + MAX_LAG + 5);
}
