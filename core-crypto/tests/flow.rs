//! End-to-end flow through the public API: create a wiki, write, read, invite, revoke.

use core_crypto::Error;
use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::snapshot::Snapshot;
use rand_core::OsRng;

fn record(path: &str, text: &str) -> PageRecord {
    PageRecord {
        kind: PageKind::Markdown,
        path: path.into(),
        author: "alice".into(),
        written_at_ms: 1_700_000_000_000,
        note: Default::default(),
        content: text.as_bytes().to_vec(),
    }
}

#[test]
fn create_write_read_invite_revoke() {
    let rng = &mut OsRng;
    let alice = UserIdentity::make(rng);
    let bob = UserIdentity::make(rng);
    let genesis = KeyringDraft::genesis(rng, &alice, "alice", MemberKind::Person)
        .unwrap()
        .sign(rng, &alice)
        .unwrap();
    let snap = Snapshot::genesis(genesis.clone(), &alice).unwrap();
    let keys = snap.keyring.unlock(&alice).unwrap();

    // Alice writes a page.
    let page = PageId::random(rng);
    let mut batch = snap.begin_write();
    batch
        .put(rng, &keys, page, &record("Home.md", "# Hi [[Other]]"))
        .unwrap();
    let commit = batch.finish(&alice).unwrap();
    assert_eq!(commit.blobs.len(), 1);
    let blob = commit.blobs[0].clone();
    let snap2 = commit.into_snapshot(&snap);

    // A fresh client verifies from bytes and reads.
    let chain = [genesis.as_bytes().to_vec()];
    let verified = Snapshot::verify(
        &chain,
        snap2.state.as_bytes(),
        &snap2.manifest.encode(),
        &snap.seen_record(),
    )
    .unwrap();
    let got = verified.open_page(&keys, &page, &blob).unwrap();
    assert_eq!(got.content, b"# Hi [[Other]]");

    // Rollback: the client saw snap2, the server offers snap.
    let rollback = Snapshot::verify(
        &chain,
        snap.state.as_bytes(),
        &snap.manifest.encode(),
        &verified.seen_record(),
    );
    assert!(
        matches!(rollback, Err(Error::Rollback { .. })),
        "{rollback:?}"
    );

    // Invite bob as reader; he reads; his signed state is refused.
    let mut draft = KeyringDraft::edit(&verified.keyring, &keys).unwrap();
    draft
        .add_member(NewMember {
            name: "bob".into(),
            kind: MemberKind::Person,
            role: Role::Reader,
            public: bob.public(),
            prefix: String::new(),
        })
        .unwrap();
    let k2 = draft.sign(rng, &alice).unwrap();
    let mut batch = verified.begin_write();
    batch.set_keyring(k2.clone()).unwrap();
    let snap3 = batch.finish(&alice).unwrap().into_snapshot(&verified);
    let bob_keys = snap3.keyring.unlock(&bob).unwrap();
    assert_eq!(
        snap3.open_page(&bob_keys, &page, &blob).unwrap().path,
        "Home.md"
    );
    let mut forged = snap3.begin_write();
    let id = PageId::random(rng);
    forged
        .put(rng, &bob_keys, id, &record("x.md", "x"))
        .unwrap();
    assert!(matches!(
        forged.finish(&bob),
        Err(Error::Unauthorized { .. })
    ));

    // Revoke bob: new epoch; a page written afterwards does not open for him.
    let alice_keys = snap3.keyring.unlock(&alice).unwrap();
    let mut draft = KeyringDraft::edit(&snap3.keyring, &alice_keys).unwrap();
    draft.remove_member("bob").unwrap();
    let k3 = draft.sign(rng, &alice).unwrap();
    assert_eq!(k3.epoch, 2);
    let mut batch = snap3.begin_write();
    batch.set_keyring(k3.clone()).unwrap();
    let snap4 = batch.finish(&alice).unwrap().into_snapshot(&snap3);
    let alice_keys = snap4.keyring.unlock(&alice).unwrap();
    let secret_page = PageId::random(rng);
    let mut batch = snap4.begin_write();
    batch
        .put(rng, &alice_keys, secret_page, &record("after.md", "secret"))
        .unwrap();
    let c = batch.finish(&alice).unwrap();
    let after_blob = c.blobs[0].clone();
    let snap5 = c.into_snapshot(&snap4);
    // Alice still reads the epoch-1 page through the epoch link, and the new one.
    assert_eq!(
        snap5.open_page(&alice_keys, &page, &blob).unwrap().path,
        "Home.md"
    );
    assert_eq!(
        snap5
            .open_page(&alice_keys, &secret_page, &after_blob)
            .unwrap()
            .content,
        b"secret"
    );
    assert!(matches!(
        snap5.keyring.unlock(&bob),
        Err(Error::NoAccess(_))
    ));
    // Even with his old keys (epoch 1) he cannot open the epoch-2 page.
    assert!(matches!(
        snap5.open_page(&bob_keys, &secret_page, &after_blob),
        Err(Error::NoAccess(_))
    ));
    // The full chain verifies from genesis.
    let chain = [genesis.as_bytes(), k2.as_bytes(), k3.as_bytes()];
    core_crypto::keyring::verify_chain(chain).unwrap();
}

#[test]
fn a_rewritten_keyring_history_is_a_fork() {
    let rng = &mut OsRng;
    let alice = UserIdentity::make(rng);
    let genesis = KeyringDraft::genesis(rng, &alice, "alice", MemberKind::Person)
        .unwrap()
        .sign(rng, &alice)
        .unwrap();
    let snap = Snapshot::genesis(genesis.clone(), &alice).unwrap();
    let keys = snap.keyring.unlock(&alice).unwrap();
    // Two different second versions of the keyring: the client saw one, the server shows the other
    // followed by a third.
    let branch = |name: &str| {
        let mut d = KeyringDraft::edit(&genesis, &keys).unwrap();
        d.add_member(NewMember {
            name: name.into(),
            kind: MemberKind::Agent,
            role: Role::Reader,
            public: UserIdentity::make(&mut OsRng).public(),
            prefix: String::new(),
        })
        .unwrap();
        d.sign(&mut OsRng, &alice).unwrap()
    };
    let seen_v2 = branch("one");
    let other_v2 = branch("two");
    let other_keys = other_v2.unlock(&alice).unwrap();
    let mut d = KeyringDraft::edit(&other_v2, &other_keys).unwrap();
    d.rotate();
    let other_v3 = d.sign(rng, &alice).unwrap();
    // A fourth version, so the check of "the next version names the one seen" does not apply.
    let mut d = KeyringDraft::edit(&other_v3, &other_v3.unlock(&alice).unwrap()).unwrap();
    d.rotate();
    let other_v4 = d.sign(rng, &alice).unwrap();
    let mut batch = snap.begin_write();
    batch.set_keyring(other_v2.clone()).unwrap();
    let s2 = batch.finish(&alice).unwrap().into_snapshot(&snap);
    let mut batch = s2.begin_write();
    batch.set_keyring(other_v3.clone()).unwrap();
    let s3 = batch.finish(&alice).unwrap().into_snapshot(&s2);
    let mut batch = s3.begin_write();
    batch.set_keyring(other_v4.clone()).unwrap();
    let s4 = batch.finish(&alice).unwrap().into_snapshot(&s3);
    let seen = core_crypto::snapshot::SeenRecord {
        keyring: Some(core_crypto::keyring::Seen {
            seq: 2,
            hash: seen_v2.hash(),
        }),
        state: None,
    };
    let chain = [
        genesis.as_bytes(),
        other_v2.as_bytes(),
        other_v3.as_bytes(),
        other_v4.as_bytes(),
    ];
    let got = Snapshot::verify(&chain, s4.state.as_bytes(), &s4.manifest.encode(), &seen);
    assert!(
        matches!(
            got,
            Err(Error::Fork {
                what: "keyring",
                seq: 2
            })
        ),
        "{got:?}"
    );
}
