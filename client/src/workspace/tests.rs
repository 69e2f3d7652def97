//! The client logic against an in-memory stand-in for the server that applies the server's own
//! acceptance rule (`core_crypto::snapshot::check_commit`), and against hostile members whose
//! clients speak the format directly.

use std::collections::BTreeMap;

use core_crypto::envelope::{PageKind, PageRecord, VersionNote};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::keyring::{Keyring, KeyringDraft, MemberKind, Role};
use core_crypto::snapshot::{CommitRefusal, SeenRecord, Snapshot, check_commit};
use core_crypto::state::{Manifest, WikiState};
use rand_core::OsRng;

use super::*;
use crate::error::Kind;
use crate::head::{TrailPoint, trail_needed};
use crate::history::{HistoryWalk, introduces};

/// What the server stores for one wiki.
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

    fn seq(&self) -> u64 {
        self.states.len() as u64
    }

    /// States `range` (oldest first), as a client fetches a trail.
    fn trail(&self, seen: &SeenRecord) -> Vec<TrailPoint> {
        match trail_needed(seen, self.seq()).unwrap() {
            Some(r) => r.map(|s| self.states[s as usize - 1].clone()).collect(),
            None => Vec::new(),
        }
    }

    fn open(&self, who: &UserIdentity, name: &str, seen: &SeenRecord) -> Result<Workspace> {
        let (s, m) = self.head();
        Workspace::verify_and_open(
            who,
            name,
            self.wiki(),
            &self.keyrings,
            s,
            m,
            seen,
            &self.trail(seen),
        )
    }

    /// Brings `ws` up to the server's head, as a client after a 409 does.
    fn refresh(&self, ws: &mut Workspace) -> Result<Vec<PageId>> {
        let since = ws.snapshot().keyring.seq as usize;
        let (s, m) = self.head();
        let from = ws.head().seq() as usize;
        let trail: Vec<TrailPoint> = self.states[from..self.states.len() - 1].to_vec();
        ws.advance(&self.keyrings[since..], s, m, &trail)
    }

    /// The server's acceptance rule, as the real server applies it.
    fn accept(
        &mut self,
        state: &[u8],
        manifest: &[u8],
        blobs: Vec<Vec<u8>>,
        keyring: Option<&[u8]>,
    ) -> core::result::Result<(), CommitRefusal> {
        let (hs, hm) = self.head();
        let head_state = WikiState::decode(hs).unwrap();
        let head_manifest = Manifest::decode(hm).unwrap();
        let head_keyring = Keyring::decode(self.keyrings.last().unwrap()).unwrap();
        let next = WikiState::decode(state).map_err(CommitRefusal::Invalid)?;
        let accepted = check_commit(
            &head_keyring,
            &head_state,
            &head_manifest,
            next,
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

    fn commit(&mut self, p: &Pending) -> core::result::Result<(), CommitRefusal> {
        let c = p.commit();
        self.accept(
            c.state.as_bytes(),
            &c.manifest.encode(),
            c.blobs.clone(),
            c.keyring.as_ref().map(|k| k.as_bytes()),
        )
    }

    /// Loads what the workspace asks for until it asks for nothing; returns how many fetches.
    fn load_all(&self, ws: &mut Workspace) -> usize {
        let mut fetched = 0;
        for _ in 0..20 {
            let wanted = ws.wanted();
            if wanted.is_empty() {
                break;
            }
            for (id, hash) in wanted {
                fetched += 1;
                let _ = ws.load(id, &self.blobs[&hash]);
            }
        }
        self.attribute(ws);
        fetched
    }

    /// Walks history back until every page the workspace needs a writer for is found.
    fn attribute(&self, ws: &mut Workspace) {
        let mut wanted = ws.unattributed();
        if wanted.is_empty() {
            return;
        }
        let head = ws.head().clone();
        let mut walk = HistoryWalk::new(&head);
        let mut found = Vec::new();
        loop {
            let step = match walk.needed() {
                Some(seq) => {
                    let (s, m) = &self.states[seq as usize - 1];
                    walk.push(s, m).unwrap()
                }
                None => walk.finish().unwrap(),
            };
            wanted.retain(|(id, e)| !introduces(&step, id, e));
            found.push(step);
            if wanted.is_empty()
                || walk.needed().is_none() && found.last().is_some_and(|s| s.seq == 1)
            {
                break;
            }
        }
        ws.attribute(&found);
    }

    /// Fetches and decrypts one page's current version.
    fn load_page(&self, ws: &mut Workspace, id: PageId) {
        let hash = ws.snapshot().manifest.pages[&id].hash;
        ws.load(id, &self.blobs[&hash]).unwrap();
    }
}

fn write(server: &mut FakeServer, ws: &mut Workspace, path: &str, text: &str) -> PageId {
    let id = ws.find(path);
    let base = id.and_then(|i| ws.page(&i).map(|p| p.hash));
    let p = ws
        .prepare_put(id, path, text.as_bytes().to_vec(), base, 1_700_000_000_000)
        .unwrap();
    let page = p.page.unwrap();
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();
    page
}

fn commit_draft(server: &mut FakeServer, d: Draft<'_>) -> Pending {
    let p = d.finish(IndexWrite::WhenDue).unwrap();
    server.commit(&p).unwrap();
    p
}

/// A hostile member's client: seals `path`/`author`/`kind` unchecked under the key the wiki
/// would use for `scope_path` (its own folder for a folder key), and commits it as a signed
/// state. The server accepts it: only readers can tell.
fn hostile_put(
    server: &mut FakeServer,
    who: &UserIdentity,
    page: PageId,
    scope_path: &str,
    kind: u8,
    path: &[u8],
    author: &[u8],
) {
    let (hs, hm) = server.head();
    let keyrings: Vec<Vec<u8>> = server.keyrings.clone();
    let snap = Snapshot::verify(&keyrings, hs, hm, &SeenRecord::default()).unwrap();
    let keys = snap.keyring.unlock(who).unwrap();
    let key = keys.key_for_writing(scope_path).unwrap();
    let env = core_crypto::envelope::hostile::seal_unchecked(
        &mut OsRng,
        &key,
        &snap.keyring.wiki,
        &page,
        kind,
        path,
        author,
        1,
        b"# hostile\n",
    );
    let mut batch = snap.begin_write();
    batch.put_sealed(page, env).unwrap();
    let c = batch.finish(who).unwrap();
    server
        .accept(c.state.as_bytes(), &c.manifest.encode(), c.blobs, None)
        .unwrap();
}

fn add_member(
    server: &mut FakeServer,
    ws: &mut Workspace,
    name: &str,
    kind: MemberKind,
    role: Role,
    who: &UserIdentity,
    prefix: &str,
) {
    let d = ws
        .add_member(name, kind, role, who.public(), prefix, 5)
        .unwrap();
    let p = commit_draft(server, d);
    ws.accept(p).unwrap();
}

#[test]
fn write_reload_search() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(
        &mut server,
        &mut ws,
        "Home.md",
        "---\ntitle: Welcome\n---\nSee [[Plan]].\n",
    );
    write(&mut server, &mut ws, "Plan.md", "# Plan\n\nsteps\n");
    let seen = ws.seen();

    // A fresh session (a reload) verifies from bytes and reads the index, not every page.
    let mut ws2 = server.open(&alice, "alice", &seen).unwrap();
    assert_eq!(ws2.wanted().len(), 1, "only the index is fetched");
    assert_eq!(server.load_all(&mut ws2), 1);
    assert!(ws2.failures().is_empty() && ws2.isolated().is_empty());
    assert_eq!(ws2.catalog().len(), 2);
    assert!(ws2.pages().is_empty());
    let home = ws2.find("home.md").unwrap();
    // Search: whole words and, for the last word, prefixes.
    assert_eq!(ws2.search("wel", 10)[0].path, "Home.md");
    assert_eq!(ws2.search("plan", 10)[0].path, "Plan.md");
    assert!(
        ws2.search("plan ", 10)
            .iter()
            .all(|h| h.path != "Planning.md")
    );
    assert!(ws2.search("nothing-like-this", 10).is_empty());
    server.load_page(&mut ws2, home);
    assert_eq!(ws2.search("see", 10)[0].snippet[1].0, "See");
    assert_eq!(ws2.head_signer(), Some("alice"));
    // Writes name their kind by path: a markdown path holds markdown, others attachments.
    let p = ws2
        .prepare_put(None, "diagram.png", vec![0x89, b'P', b'N', b'G'], None, 1)
        .unwrap();
    server.commit(&p).unwrap();
    ws2.accept(p).unwrap();
    let png = ws2.find("diagram.png").unwrap();
    assert_eq!(ws2.kind_of(&png), Some(PageKind::Attachment));
}

#[test]
fn stale_or_missing_index_is_rebuilt_from_pages() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut ws, "Home.md", "home\n");
    // Another client writes a page and defers the index.
    let id = PageId::random(&mut OsRng);
    let mut d = ws.draft(1).unwrap();
    d.put_content(id, "Unindexed.md", b"quiet words".to_vec())
        .unwrap();
    let p = d.finish(IndexWrite::Defer).unwrap();
    assert_eq!(p.commit().blobs.len(), 1);
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
    let base = a.page(&page).unwrap().hash;

    let mut b = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    server.load_all(&mut b);
    write(&mut server, &mut a, "Home.md", "v2 from a\n");

    // B's save is built on an old head: the server's rule refuses it.
    let stale = b
        .prepare_put(
            Some(page),
            "Home.md",
            b"v2 from b\n".to_vec(),
            Some(base),
            0,
        )
        .unwrap();
    assert_eq!(server.commit(&stale), Err(CommitRefusal::Conflict));
    let changed = server.refresh(&mut b).unwrap();
    assert_eq!(changed, [page]);
    let err = b
        .prepare_put(
            Some(page),
            "Home.md",
            b"v2 from b\n".to_vec(),
            Some(base),
            0,
        )
        .unwrap_err();
    assert_eq!(err.kind, Kind::Conflict);
    assert_eq!(err.page, Some(page));
    // A new page on a taken path is refused, up to case.
    let err = b
        .prepare_put(None, "home.MD", b"dup".to_vec(), None, 0)
        .unwrap_err();
    assert_eq!(err.kind, Kind::Input, "{err:?}");
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
    assert!(
        fresh.isolated().is_empty(),
        "the server's fault, not a member's"
    );
    fresh.mark_missing(page, "404");
    assert!(fresh.failures()[&page].contains("did not return it"));

    // The server serves the first state again after the client saw the second.
    let (s, m) = server.states[0].clone();
    let err = Workspace::verify_and_open(
        &alice,
        "alice",
        server.wiki(),
        &server.keyrings,
        &s,
        &m,
        &seen,
        &[],
    )
    .unwrap_err();
    assert_eq!(err.kind, Kind::Integrity);
    assert!(err.message.contains("rollback"), "{}", err.message);
}

/// A server that keeps a second branch and later serves it, ahead of what the client saw, at
/// distance 1, 2 and 5: caught by a fresh open (trail from the seen record) and by a session
/// (advance), never accepted.
#[test]
fn a_fork_that_jumps_ahead_is_caught_at_any_distance() {
    for distance in [1usize, 2, 5] {
        let alice = UserIdentity::make(&mut OsRng);
        let mut server = FakeServer::create(&alice, "alice");
        let mut ws = server
            .open(&alice, "alice", &SeenRecord::default())
            .unwrap();
        write(&mut server, &mut ws, "Home.md", "base\n");
        // The server forks here: branch B is a copy of the history so far.
        let mut branch = FakeServer {
            keyrings: server.keyrings.clone(),
            states: server.states.clone(),
            blobs: server.blobs.clone(),
        };
        let mut other = branch
            .open(&alice, "alice", &SeenRecord::default())
            .unwrap();
        branch.load_all(&mut other);
        // The client's own acknowledged write lands on branch A.
        write(&mut server, &mut ws, "Mine.md", "acknowledged\n");
        let seen = ws.seen();
        // Branch B grows by `distance` states beyond what the client saw.
        for n in 0..distance {
            write(
                &mut branch,
                &mut other,
                &format!("B{n}.md"),
                "other branch\n",
            );
        }
        assert!(branch.seq() >= seen.state.unwrap().seq);
        let (s, m) = branch.head();
        let trail: Vec<TrailPoint> = match trail_needed(&seen, branch.seq()).unwrap() {
            Some(r) => r.map(|q| branch.states[q as usize - 1].clone()).collect(),
            None => Vec::new(),
        };
        let err = Workspace::verify_and_open(
            &alice,
            "alice",
            server.wiki(),
            &branch.keyrings,
            s,
            m,
            &seen,
            &trail,
        )
        .unwrap_err();
        assert_eq!(err.kind, Kind::Integrity, "distance {distance}");
        assert!(
            err.message.contains("fork"),
            "distance {distance}: {}",
            err.message
        );
        // A session holding the head is refused the same way.
        let from = ws.head().seq() as usize;
        let session_trail: Vec<TrailPoint> = branch
            .states
            .get(from..branch.states.len() - 1)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let err = ws
            .advance(&branch.keyrings[1..], s, m, &session_trail)
            .unwrap_err();
        assert_eq!(
            err.kind,
            Kind::Integrity,
            "session, distance {distance}: {err:?}"
        );
        // A trail that skips a state is refused too (the server cannot shorten it).
        if trail.len() > 1 {
            let err = Workspace::verify_and_open(
                &alice,
                "alice",
                server.wiki(),
                &branch.keyrings,
                s,
                m,
                &seen,
                &trail[1..],
            )
            .unwrap_err();
            assert_eq!(err.kind, Kind::Integrity);
        }
        // The honest branch still opens, with the trail.
        write(&mut server, &mut ws, "More.md", "x\n");
        write(&mut server, &mut ws, "More2.md", "x\n");
        let mut ok = server.open(&alice, "alice", &seen).unwrap();
        server.load_all(&mut ok);
        assert!(ok.find("Mine.md").is_some());
    }
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
    add_member(
        &mut server,
        &mut a,
        "bob",
        MemberKind::Person,
        Role::Reader,
        &bob,
        "",
    );
    let members = a.members();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1].fingerprint, bob.public().fingerprint());
    assert!(members[0].me && !members[1].me);

    let mut b = server.open(&bob, "bob", &SeenRecord::default()).unwrap();
    server.load_all(&mut b);
    let home = b.find("Home.md").unwrap();
    server.load_page(&mut b, home);
    assert_eq!(b.page(&home).unwrap().record.content, b"hello bob\n");
    assert_eq!(b.my_role(), Some(Role::Reader));
    let err = b
        .prepare_put(None, "x.md", b"x".to_vec(), None, 0)
        .unwrap_err();
    assert_eq!(err.kind, Kind::Access, "{err:?}");
    assert!(err.message.contains("cryptography"));

    let (d, report) = a.remove_member("bob", 9).unwrap();
    assert_eq!(
        (
            report.epochs_readable,
            report.pages.clone(),
            report.new_epoch,
            report.scope.as_str()
        ),
        (1, vec!["Home.md".to_owned()], 2, "")
    );
    let p = commit_draft(&mut server, d);
    a.accept(p).unwrap();
    write(&mut server, &mut a, "After.md", "not for bob\n");
    let err = server.refresh(&mut b).unwrap_err();
    assert_eq!(err.kind, Kind::Access);
}

#[test]
fn history_walk_verifies_every_step_and_names_signers() {
    let alice = UserIdentity::make(&mut OsRng);
    let bob = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let page = write(&mut server, &mut ws, "Home.md", "one\n");
    add_member(
        &mut server,
        &mut ws,
        "bob",
        MemberKind::Person,
        Role::Writer,
        &bob,
        "",
    );
    let mut b = server.open(&bob, "bob", &SeenRecord::default()).unwrap();
    server.load_all(&mut b);
    server.load_page(&mut b, page);
    write(&mut server, &mut b, "Home.md", "two\n");

    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let head = a.head().clone();
    let mut walk = HistoryWalk::new(&head);
    let mut steps = Vec::new();
    while let Some(seq) = walk.needed() {
        let (s, m) = &server.states[seq as usize - 1];
        steps.push(walk.push(s, m).unwrap());
    }
    steps.push(walk.finish().unwrap());
    let seqs: Vec<u64> = steps.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [4, 3, 2, 1]);
    assert_eq!(steps[0].signer_name, "bob");
    assert!(steps[1].keyring_changed);
    a.attribute(&steps);
    assert_eq!(
        a.provenance(&page).map(|p| (p.seq, p.signer.as_str())),
        Some((4, "bob"))
    );

    // A rewritten old state is refused: the walk checks each link.
    let head = a.head().clone();
    let mut walk = HistoryWalk::new(&head);
    let (s3, m3) = &server.states[2];
    walk.push(s3, m3).unwrap();
    let (s1, m1) = &server.states[0];
    let err = walk.push(s1, m1).unwrap_err();
    assert_eq!(err.kind, Kind::Integrity, "{err:?}");
    // Another state signed by alice at seq 2 that the chain does not contain.
    let mut fake = FakeServer {
        keyrings: server.keyrings[..1].to_vec(),
        states: server.states[..1].to_vec(),
        blobs: BTreeMap::new(),
    };
    let mut fws = fake.open(&alice, "alice", &SeenRecord::default()).unwrap();
    write(&mut fake, &mut fws, "Rewritten.md", "history rewritten\n");
    let mut walk = HistoryWalk::new(&head);
    walk.push(s3, m3).unwrap();
    let (fs2, fm2) = &fake.states[1];
    let err = walk.push(fs2, fm2).unwrap_err();
    assert_eq!(err.kind, Kind::Integrity, "{err:?}");
}

#[test]
fn renames_keep_ids_and_deletes_remove() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let page = write(&mut server, &mut ws, "Home.md", "one\n");
    let p = ws.prepare_rename(page, "Start.md", 0).unwrap();
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();
    assert_eq!(ws.find("Start.md"), Some(page));
    assert!(
        ws.prepare_put(None, "start.MD", b"dup".to_vec(), None, 0)
            .is_err()
    );
    assert!(ws.prepare_rename(page, "a/.git/x.md", 0).is_err());
    assert!(
        ws.prepare_rename(page, "pic.png", 0).is_err(),
        "kind follows the path"
    );
    let p = ws.prepare_delete(page, 0).unwrap();
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();
    assert!(ws.find("Start.md").is_none());
}

#[test]
fn a_rename_can_update_the_links_to_the_page_in_one_commit() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let plan = write(
        &mut server,
        &mut ws,
        "Plan.md",
        "# Plan\n\nSee [[Plan#Goals]].\n",
    );
    let home = write(
        &mut server,
        &mut ws,
        "Home.md",
        "[[Plan|the plan]] and [details](Plan.md#goals)\n",
    );
    let other = write(&mut server, &mut ws, "Other.md", "nothing here\n");
    let pic = write(&mut server, &mut ws, "pic.png", "not really a png");
    let seq = server.seq();
    let note = VersionNote {
        message: "move the plan".into(),
        ..VersionNote::default()
    };
    let (p, update) = ws
        .prepare_rename_updating_links(plan, "Archive/Plan 2026.md", 5, note)
        .unwrap();
    assert_eq!(
        (update.pages.as_slice(), update.links, update.kept),
        ([home].as_slice(), 2, 0)
    );
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();
    assert_eq!(server.seq(), seq + 1, "one commit");
    assert_eq!(ws.find("Archive/Plan 2026.md"), Some(plan));
    let home_record = ws.record(&home).unwrap();
    assert_eq!(
        home_record.markdown(),
        Some("[[Plan 2026|the plan]] and [details](Archive/Plan%202026.md#goals)\n")
    );
    assert_eq!(home_record.note.message, "move the plan");
    // The page's own text and a page without links are untouched.
    assert_eq!(
        ws.record(&plan).unwrap().markdown(),
        Some("# Plan\n\nSee [[Plan#Goals]].\n")
    );
    assert_eq!(ws.record(&other).unwrap().written_at_ms, 1_700_000_000_000);

    // A reader who has not decrypted every page is told to load it, not given a partial update.
    let mut fresh = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    server.load_page(&mut fresh, plan);
    let err = fresh
        .prepare_rename_updating_links(plan, "Plan.md", 6, VersionNote::default())
        .unwrap_err();
    assert_eq!(err.kind, Kind::NotLoaded);
    server.load_all(&mut fresh);
    // Every markdown page; the attachment is not needed.
    let ids: Vec<PageId> = fresh.snapshot().manifest.pages.keys().copied().collect();
    for id in ids {
        if !fresh.is_index_page(&id) && id != pic {
            server.load_page(&mut fresh, id);
        }
    }
    assert!(!fresh.is_loaded(&pic));
    let (_, update) = fresh
        .prepare_rename_updating_links(plan, "Plan.md", 6, VersionNote::default())
        .unwrap();
    assert_eq!((update.links, update.pages.len()), (2, 1));
}

#[test]
fn folder_scoped_member_fetches_only_its_folder_and_cannot_write_outside() {
    let alice = UserIdentity::make(&mut OsRng);
    let bot = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut a, "Home.md", "private\n");
    let early = write(
        &mut server,
        &mut a,
        "research/early.md",
        "before the grant\n",
    );
    add_member(
        &mut server,
        &mut a,
        "bot",
        MemberKind::Agent,
        Role::Writer,
        &bot,
        "research/",
    );
    let id = write(&mut server, &mut a, "research/notes.md", "for the bot\n");

    let mut b = server.open(&bot, "bot", &SeenRecord::default()).unwrap();
    server.load_all(&mut b);
    assert!(b.failures().is_empty(), "{:?}", b.failures());
    assert_eq!(b.find("research/notes.md"), Some(id));
    assert_eq!(
        b.find("research/early.md"),
        Some(early),
        "moved into the folder's scope"
    );
    assert!(b.find("Home.md").is_none());
    assert_eq!(
        a.members()
            .iter()
            .find(|m| m.name == "bot")
            .and_then(|m| m.folder.clone()),
        Some("research/".to_owned())
    );
    // The honest client refuses to write outside the folder.
    let err = b
        .prepare_put(None, "Home2.md", b"x".to_vec(), None, 0)
        .unwrap_err();
    assert_eq!(err.kind, Kind::Access, "{err:?}");
    write(&mut server, &mut b, "research/bot.md", "the bot's own\n");
}

/// A folder-scoped writer whose client speaks the format directly writes records that claim
/// paths outside its folder, or onto an existing page: every reader isolates them, names the
/// signer, keeps the rest usable, and the owner removes them.
#[test]
fn a_scoped_writer_outside_its_folder_is_isolated_and_named() {
    let alice = UserIdentity::make(&mut OsRng);
    let mallory = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let home = write(&mut server, &mut a, "Home.md", "the real home\n");
    let existing = write(&mut server, &mut a, "research/x.md", "alice's research\n");
    add_member(
        &mut server,
        &mut a,
        "mallory",
        MemberKind::Agent,
        Role::Writer,
        &mallory,
        "research/",
    );

    let outside = PageId::random(&mut OsRng);
    hostile_put(
        &mut server,
        &mallory,
        outside,
        "research/a.md",
        1,
        b"Home.md",
        b"alice",
    );
    let design = PageId::random(&mut OsRng);
    hostile_put(
        &mut server,
        &mallory,
        design,
        "research/a.md",
        1,
        b"Design/Evil.md",
        b"alice",
    );
    let onto = PageId::random(&mut OsRng);
    hostile_put(
        &mut server,
        &mallory,
        onto,
        "research/a.md",
        1,
        b"research/X.md",
        b"alice",
    );

    let mut fresh = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    server.load_all(&mut fresh);
    assert!(fresh.failures().is_empty(), "{:?}", fresh.failures());
    let iso = fresh.isolated();
    assert_eq!(iso.len(), 3, "{iso:?}");
    for id in [outside, design] {
        assert!(
            iso[&id].problem.contains("outside the folder"),
            "{:?}",
            iso[&id]
        );
    }
    assert!(iso[&onto].problem.contains("clashes"), "{:?}", iso[&onto]);
    for id in [outside, design, onto] {
        let written = iso[&id].written.as_ref().expect("attributed");
        assert_eq!(
            written.signer, "mallory",
            "the signer, not the claimed author"
        );
        assert!(iso[&id].describe(&id).contains("written by mallory at seq"));
    }
    // The honest pages are untouched, once each.
    assert_eq!(fresh.find("Home.md"), Some(home));
    assert_eq!(fresh.find("research/x.md"), Some(existing));
    assert_eq!(
        fresh
            .catalog()
            .values()
            .filter(|p| p.path == "Home.md")
            .count(),
        1
    );
    // The owner removes the isolated pages; the wiki is clean again.
    for id in [outside, design, onto] {
        let p = fresh.prepare_delete(id, 1).unwrap();
        server.commit(&p).unwrap();
        fresh.accept(p).unwrap();
    }
    assert!(fresh.isolated().is_empty());
    let mut again = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    server.load_all(&mut again);
    assert!(again.isolated().is_empty() && again.failures().is_empty());
}

/// Records a writer's modified client could produce, each isolated for its own reason while
/// everything else keeps working (including writes by the owner).
#[test]
fn hostile_records_are_isolated_not_fatal() {
    let alice = UserIdentity::make(&mut OsRng);
    let mallory = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut a, "Home.md", "home\n");
    write(&mut server, &mut a, "f.md", "a page\n");
    add_member(
        &mut server,
        &mut a,
        "mallory",
        MemberKind::Person,
        Role::Writer,
        &mallory,
        "",
    );
    let long = format!("{}.md", "x".repeat(300));
    let cases: Vec<(Vec<u8>, u8, &str)> = vec![
        (b".zkwiki/git/state".to_vec(), 1, "reserved"),
        (b"../../outside.md".to_vec(), 1, "malformed"),
        (long.into_bytes(), 1, "255 bytes"),
        (b"f.md/g.md".to_vec(), 1, "clashes"),
        (b"notes/.git/config".to_vec(), 2, ".git"),
        (b"invoice\xe2\x80\xaedm.exe".to_vec(), 2, "invisible"),
        (b"Index.md".to_vec(), 3, "own records"),
        (b".zkwiki/settings".to_vec(), 4, "own records"),
    ];
    let mut ids = Vec::new();
    for (path, kind, _) in &cases {
        let id = PageId::random(&mut OsRng);
        hostile_put(
            &mut server,
            &mallory,
            id,
            "x.md",
            *kind,
            path,
            b"\x1b]0;TITLE\x07\x1b[2J",
        );
        ids.push(id);
    }
    // Settings that are no JSON, at the settings' own page id.
    let settings_id = a
        .keys()
        .current_epoch_secret()
        .unwrap()
        .derive_scope(1, "")
        .derive_settings_page_id();
    hostile_put(
        &mut server,
        &mallory,
        settings_id,
        "x.md",
        4,
        b".zkwiki/settings",
        b"mallory",
    );
    let mut fresh = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    server.load_all(&mut fresh);
    assert!(fresh.failures().is_empty(), "{:?}", fresh.failures());
    assert!(
        fresh.isolated()[&settings_id]
            .problem
            .contains("settings are unreadable")
    );
    assert_eq!(fresh.title(), None);
    let p = fresh
        .prepare_settings(
            &WikiSettings {
                title: "Fixed".into(),
                ..WikiSettings::default()
            },
            1,
        )
        .unwrap();
    server.commit(&p).unwrap();
    fresh.accept(p).unwrap();
    assert_eq!(fresh.title(), Some("Fixed"));
    for ((_, _, reason), id) in cases.iter().zip(&ids) {
        let iso = fresh
            .isolated()
            .get(id)
            .unwrap_or_else(|| panic!("{reason}: not isolated"));
        assert!(iso.problem.contains(reason), "{reason}: {}", iso.problem);
        assert_eq!(
            iso.written.as_ref().map(|w| w.signer.as_str()),
            Some("mallory")
        );
        assert!(!iso.describe(id).contains('\u{1b}'));
    }
    assert_eq!(fresh.catalog().len(), 2, "Home.md and f.md");
    // The owner still writes, and removes a hostile record.
    write(&mut server, &mut fresh, "Home.md", "still usable\n");
    let p = fresh.prepare_delete(ids[0], 1).unwrap();
    server.commit(&p).unwrap();
    fresh.accept(p).unwrap();
    assert!(!fresh.isolated().contains_key(&ids[0]));
    // A blob of another wiki under a manifest a member signed: isolated as a foreign key.
    let other = FakeServer::create(&mallory, "mallory");
    let mut ows = other
        .open(&mallory, "mallory", &SeenRecord::default())
        .unwrap();
    let mut other = other;
    let foreign = write(&mut other, &mut ows, "Foreign.md", "from elsewhere\n");
    let env = other.blobs[&ows.snapshot().manifest.pages[&foreign].hash].clone();
    let (hs, hm) = server.head();
    let snap = Snapshot::verify(&server.keyrings.clone(), hs, hm, &SeenRecord::default()).unwrap();
    let mut batch = snap.begin_write();
    batch.put_sealed(foreign, env).unwrap();
    let c = batch.finish(&mallory).unwrap();
    server
        .accept(c.state.as_bytes(), &c.manifest.encode(), c.blobs, None)
        .unwrap();
    let mut fresh = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    server.load_all(&mut fresh);
    let iso = &fresh.isolated()[&foreign];
    assert!(
        iso.problem.contains("key this wiki never had"),
        "{}",
        iso.problem
    );
}

/// The author field is a claim; who wrote a version is the member whose key signed it.
#[test]
fn a_forged_author_is_shown_as_a_claim() {
    let alice = UserIdentity::make(&mut OsRng);
    let mallory = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut a, "Home.md", "home\n");
    add_member(
        &mut server,
        &mut a,
        "mallory",
        MemberKind::Agent,
        Role::Writer,
        &mallory,
        "",
    );
    let seen = a.seen();
    let id = PageId::random(&mut OsRng);
    hostile_put(
        &mut server,
        &mallory,
        id,
        "Notes.md",
        1,
        b"Notes.md",
        b"alice",
    );
    let mut after = server.open(&alice, "alice", &seen).unwrap();
    server.load_all(&mut after);
    server.load_page(&mut after, id);
    assert_eq!(
        after.page(&id).unwrap().record.author,
        "alice",
        "the claim is kept"
    );
    let p = after
        .provenance(&id)
        .expect("known from the verified trail");
    assert_eq!(p.signer, "mallory");
}

/// A large wiki's index lags by up to `MAX_LAG` pages: small edits do not carry it, a fresh
/// session fetches the index and then just the pages it does not describe, and the write that
/// would exceed the lag stores it again.
#[test]
fn a_large_wikis_index_lags_a_little() {
    use core_crypto::index::{LAG_ABOVE_PAGES, MAX_LAG};
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let mut d = ws.draft(1).unwrap();
    for k in 0..LAG_ABOVE_PAGES + 10 {
        d.put_content(
            PageId::random(&mut OsRng),
            &format!("Bulk{k}.md"),
            format!("bulk {k}\n").into_bytes(),
        )
        .unwrap();
    }
    let p = d.finish(IndexWrite::WhenDue).unwrap();
    assert!(p.index_written, "no stored index yet: written");
    server.commit(&p).unwrap();
    ws.accept(p).unwrap();

    let mut carried = Vec::new();
    for n in 0..MAX_LAG + 5 {
        let path = format!("Note{n}.md");
        let p = ws
            .prepare_put(
                None,
                &path,
                format!("note {n} zq{n}x\n").into_bytes(),
                None,
                2,
            )
            .unwrap();
        let blobs = p.commit().blobs.len();
        assert_eq!(blobs, if p.index_written { 2 } else { 1 }, "write {n}");
        if p.index_written {
            carried.push(n);
        }
        server.commit(&p).unwrap();
        ws.accept(p).unwrap();
        if n == 3 {
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

#[test]
fn server_rule_refuses_what_the_real_server_refuses() {
    let alice = UserIdentity::make(&mut OsRng);
    let bob = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    write(&mut server, &mut a, "Home.md", "home\n");
    add_member(
        &mut server,
        &mut a,
        "bob",
        MemberKind::Person,
        Role::Reader,
        &bob,
        "",
    );
    // A reader's signed state: refused by the rule (as every client would).
    let (hs, hm) = server.head();
    let snap = Snapshot::verify(&server.keyrings.clone(), hs, hm, &SeenRecord::default()).unwrap();
    let keys = snap.keyring.unlock(&bob).unwrap();
    let mut batch = snap.begin_write();
    let rec = PageRecord {
        kind: PageKind::Markdown,
        path: "x.md".into(),
        author: "bob".into(),
        written_at_ms: 0,
        note: Default::default(),
        content: b"x".to_vec(),
    };
    batch
        .put(&mut OsRng, &keys, PageId::random(&mut OsRng), &rec)
        .unwrap();
    assert!(batch.finish(&bob).is_err(), "the core refuses to sign it");
    // A blob the manifest does not list is refused.
    let p = a.prepare_put(None, "y.md", b"y".to_vec(), None, 0).unwrap();
    let c = p.commit();
    let mut blobs = c.blobs.clone();
    blobs.push(b"ZKPGextra".to_vec());
    assert!(matches!(
        server.accept(c.state.as_bytes(), &c.manifest.encode(), blobs, None),
        Err(CommitRefusal::Invalid(_))
    ));
    server.commit(&p).unwrap();
}

/// A session asks for exactly the states between its head and a newer one; a walk that owns its
/// chain outlives the head it started from (a driver keeps it across fetches) and opens each
/// version against the entry its verified step signed.
#[test]
fn trails_for_a_session_and_an_owned_history_walk() {
    let alice = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut ws = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    let page = write(&mut server, &mut ws, "Home.md", "one\n");
    write(&mut server, &mut ws, "Home.md", "two\n");
    let head = ws.head().clone();
    assert_eq!(head.seq(), 3);
    assert_eq!(head.trail_to(3).unwrap(), None);
    assert_eq!(head.trail_to(4).unwrap(), None);
    assert_eq!(head.trail_to(7).unwrap(), Some(4..=6));
    assert_eq!(head.trail_to(2).unwrap_err().kind, Kind::Integrity);

    let mut walk = HistoryWalk::new(&head).into_owned();
    drop(head);
    let mut versions = Vec::new();
    loop {
        let (step, last) = match walk.needed() {
            Some(seq) => {
                let (s, m) = &server.states[seq as usize - 1];
                (walk.push(s, m).unwrap(), false)
            }
            None => (walk.finish().unwrap(), true),
        };
        let of_page = step.changed.iter().filter(|(id, _)| *id == page);
        versions.extend(of_page.map(|(_, e)| *e));
        if last {
            break;
        }
    }
    assert_eq!(versions.len(), 2);
    let texts: Vec<Vec<u8>> = versions
        .iter()
        .map(|e| {
            let envelope = &server.blobs[&e.hash];
            let (record, prefix) =
                crate::history::open_version(ws.keys(), &page, e, envelope).unwrap();
            assert_eq!(prefix, "");
            record.content
        })
        .collect();
    assert_eq!(texts, [b"two\n".to_vec(), b"one\n".to_vec()]);
    // An envelope other than the signed entry's is refused.
    let other = &server.blobs[&versions[1].hash];
    let err = crate::history::open_version(ws.keys(), &page, &versions[0], other).unwrap_err();
    assert_eq!(err.kind, Kind::Integrity);
}

/// The wiki's title lives inside the wiki: set once, every member's client reads the same name,
/// a change reaches the others on refresh, and only a whole-wiki writer can change it.
#[test]
fn the_title_is_one_record_every_member_reads() {
    let alice = UserIdentity::make(&mut OsRng);
    let bob = UserIdentity::make(&mut OsRng);
    let bot = UserIdentity::make(&mut OsRng);
    let mut server = FakeServer::create(&alice, "alice");
    let mut a = server
        .open(&alice, "alice", &SeenRecord::default())
        .unwrap();
    assert_eq!(a.title(), None);
    let settings = WikiSettings {
        title: "Lab notebook".into(),
        ..WikiSettings::default()
    };
    let p = a.prepare_settings(&settings, 1).unwrap();
    server.commit(&p).unwrap();
    a.accept(p).unwrap();
    assert_eq!(a.title(), Some("Lab notebook"));
    add_member(
        &mut server,
        &mut a,
        "bob",
        MemberKind::Person,
        Role::Reader,
        &bob,
        "",
    );
    add_member(
        &mut server,
        &mut a,
        "bot",
        MemberKind::Agent,
        Role::Writer,
        &bot,
        "research/",
    );

    // A reader sees the title; the settings are no page and are not searched.
    let mut b = server.open(&bob, "bob", &SeenRecord::default()).unwrap();
    server.load_all(&mut b);
    assert_eq!(b.title(), Some("Lab notebook"));
    assert!(b.failures().is_empty(), "{:?}", b.failures());
    assert!(b.find(core_crypto::index::SETTINGS_PATH).is_none());
    let err = b.prepare_settings(&settings, 2).unwrap_err();
    assert_eq!(err.kind, Kind::Access, "{err:?}");

    // A folder-scoped writer cannot read or change them.
    let mut c = server.open(&bot, "bot", &SeenRecord::default()).unwrap();
    server.load_all(&mut c);
    assert_eq!(c.title(), None);
    assert_eq!(
        c.prepare_settings(&settings, 2).unwrap_err().kind,
        Kind::Access
    );

    // A rename (after a revocation, in the new epoch) reaches the reader on refresh, and the
    // older epoch's record goes.
    let (d, _) = a.remove_member("bot", 3).unwrap();
    let p = commit_draft(&mut server, d);
    a.accept(p).unwrap();
    // Re-encryption's final flush moves them to the new epoch.
    let epoch_of = |ws: &Workspace| {
        let id = *ws.settings_pages().iter().next().unwrap();
        ws.snapshot().manifest.pages[&id].epoch
    };
    assert_eq!(epoch_of(&a), 1);
    let p = a.draft(3).unwrap().finish(IndexWrite::Flush).unwrap();
    server.commit(&p).unwrap();
    a.accept(p).unwrap();
    assert_eq!((epoch_of(&a), a.settings_pages().len()), (2, 1));
    assert_eq!(a.title(), Some("Lab notebook"));
    let renamed = WikiSettings {
        title: "Lab notebook (2027)".into(),
        description: "shared with bob".into(),
        ..WikiSettings::default()
    };
    let p = a.prepare_settings(&renamed, 4).unwrap();
    server.commit(&p).unwrap();
    a.accept(p).unwrap();
    assert_eq!(
        a.settings_pages().len(),
        1,
        "the old epoch's settings were removed"
    );
    server.refresh(&mut b).unwrap();
    server.load_all(&mut b);
    assert_eq!(b.title(), Some("Lab notebook (2027)"));
    assert_eq!(b.settings().unwrap().description, "shared with bob");

    // Titles that would not show as they are, or are too long, are refused.
    for bad in ["evil\u{1b}[2J", "a\u{202e}b", &"x".repeat(201)] {
        let s = WikiSettings {
            title: bad.into(),
            ..WikiSettings::default()
        };
        assert_eq!(a.prepare_settings(&s, 5).unwrap_err().kind, Kind::Input);
    }
}
