//! What a malicious server (or a malicious member) can try, and the exact error each attempt gets:
//! every single-byte change of an envelope, a state, a manifest, a keyring and a sealed identity;
//! blobs moved to another page, wiki or epoch; states signed by a reader, a removed member or an
//! unknown key; rollback and forks; keyring chains with a non-owner signature, an inserted member
//! or an old version; revocation; folder scopes. Native only (the byte-flip sweeps are long).

#![cfg(not(target_arch = "wasm32"))]
// Test helpers outside `#[test]` functions may panic too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use core_crypto::Error;
use core_crypto::envelope::{self, PageKind, PageRecord};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::kdf::KdfParams;
use core_crypto::keyring::{self, Keyring, KeyringDraft, MemberKind, NewMember, Role, Seen};
use core_crypto::labels;
use core_crypto::protector::{ProtectorKind, SealKey};
use core_crypto::snapshot::{SeenRecord, Snapshot};
use core_crypto::state::{Manifest, StateDraft, WikiState};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// Asserts that an expression fails with an error matching a pattern, printing what it got.
macro_rules! assert_err {
    ($e:expr, $p:pat $(,)?) => {{
        let r = $e;
        assert!(matches!(r, Err($p)), "expected {}, got {:?}", stringify!($p), r);
    }};
    ($e:expr, $p:pat, $($ctx:tt)+) => {{
        let r = $e;
        assert!(
            matches!(r, Err($p)),
            "expected {}, got {:?} ({})",
            stringify!($p),
            r,
            format!($($ctx)+)
        );
    }};
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

fn identity(n: u8) -> UserIdentity {
    UserIdentity::from_secrets(&[n; 32], &[n.wrapping_add(0x80); 32])
}

fn new_member(name: &str, role: Role, id: &UserIdentity, prefix: &str) -> NewMember {
    NewMember {
        name: name.into(),
        kind: MemberKind::Person,
        role,
        public: id.public(),
        prefix: prefix.into(),
    }
}

fn record(path: &str, text: &str) -> PageRecord {
    PageRecord {
        kind: PageKind::Markdown,
        path: path.into(),
        author: "alice".into(),
        written_at_ms: 1_764_320_400_000,
        note: Default::default(),
        content: text.as_bytes().to_vec(),
    }
}

/// A wiki with alice (owner), bob (writer), carol (reader of `research/`), dave (writer of
/// `research/`), and two pages: `Home.md` (whole wiki) and `research/notes.md`.
struct Fixture {
    alice: UserIdentity,
    bob: UserIdentity,
    carol: UserIdentity,
    dave: UserIdentity,
    /// Never a member.
    eve: UserIdentity,
    k1: Keyring,
    k2: Keyring,
    snap: Snapshot,
    home: PageId,
    home_blob: Vec<u8>,
    note: PageId,
    note_blob: Vec<u8>,
}

fn fixture() -> Fixture {
    let rng = &mut rng();
    let (alice, bob, carol, dave, eve) = (
        identity(1),
        identity(2),
        identity(3),
        identity(4),
        identity(5),
    );
    let k1 = KeyringDraft::genesis(rng, &alice, "alice", MemberKind::Person)
        .unwrap()
        .sign(rng, &alice)
        .unwrap();
    let snap0 = Snapshot::genesis(k1.clone(), &alice).unwrap();
    let keys = k1.unlock(&alice).unwrap();
    let mut draft = KeyringDraft::edit(&k1, &keys).unwrap();
    draft
        .add_member(new_member("bob", Role::Writer, &bob, ""))
        .unwrap();
    draft
        .add_member(new_member("carol", Role::Reader, &carol, "research/"))
        .unwrap();
    draft
        .add_member(new_member("dave", Role::Writer, &dave, "research/"))
        .unwrap();
    let k2 = draft.sign(rng, &alice).unwrap();
    let mut batch = snap0.begin_write();
    batch.set_keyring(k2.clone()).unwrap();
    let snap1 = batch.finish(&alice).unwrap().into_snapshot(&snap0);

    let keys = k2.unlock(&alice).unwrap();
    let (home, note) = (PageId([0x11; 16]), PageId([0x22; 16]));
    let seal = |rng: &mut ChaCha20Rng, page: PageId, r: &PageRecord| {
        let key = keys.key_for_writing(&r.path).unwrap();
        envelope::seal_page(rng, &key, &k2.wiki, &page, r).unwrap()
    };
    let home_blob = seal(rng, home, &record("Home.md", "# Home\n[[research/notes]]"));
    let note_blob = seal(rng, note, &record("research/notes.md", "notes"));
    let mut batch = snap1.begin_write();
    batch.put_sealed(home, home_blob.clone()).unwrap();
    batch.put_sealed(note, note_blob.clone()).unwrap();
    let snap = batch.finish(&alice).unwrap().into_snapshot(&snap1);
    Fixture {
        alice,
        bob,
        carol,
        dave,
        eve,
        k1,
        k2,
        snap,
        home,
        home_blob,
        note,
        note_blob,
    }
}

/// Every value a byte can be changed to: `b ^ d` for `d` in `1..=255`.
fn all_changes() -> impl Iterator<Item = u8> {
    1..=255u8
}

/// Single-bit flips and the full inversion (for the slower sweeps).
const BIT_CHANGES: [u8; 9] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff];

fn changed(bytes: &[u8], pos: usize, delta: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[pos] ^= delta;
    out
}

// ------------------------------------------------------------------------------------------------
// Exhaustive single-byte changes
// ------------------------------------------------------------------------------------------------

#[test]
fn every_byte_change_of_an_envelope_is_rejected_with_the_right_error() {
    let f = fixture();
    let keys = f.snap.keyring.unlock(&f.alice).unwrap();
    let header = envelope::read_header(&f.home_blob).unwrap();
    let key = keys.key_for(&header).unwrap();
    let wiki = f.snap.keyring.wiki;
    assert_eq!(
        envelope::open_page(key, &wiki, &f.home, &f.home_blob)
            .unwrap()
            .path,
        "Home.md"
    );
    let len = f.home_blob.len();
    let mut tried = 0;
    for pos in 0..len {
        for delta in all_changes() {
            let bad = changed(&f.home_blob, pos, delta);
            let r = envelope::open_page(key, &wiki, &f.home, &bad);
            match pos {
                0..=3 => assert_err!(r, Error::Malformed { .. }, "magic, pos {pos}"),
                4 => assert_err!(r, Error::UnsupportedVersion { .. }),
                5..=24 => assert_err!(r, Error::NoAccess(_), "epoch/scope, pos {pos}"),
                25..=80 => assert_err!(
                    r,
                    Error::WrongKey { what: "page" },
                    "nonce/commitment, pos {pos}"
                ),
                _ => assert_err!(
                    r,
                    Error::Tampered { what: "page" },
                    "ciphertext/tag, pos {pos}"
                ),
            }
            // Through the client logic the signed manifest catches it first.
            assert_err!(f.snap.open_page(&keys, &f.home, &bad), Error::Mismatch(_));
            tried += 1;
        }
    }
    assert_eq!(tried, len * 255);
    // Truncation and extension.
    for cut in 0..len {
        let r = envelope::open_page(key, &wiki, &f.home, &f.home_blob[..cut]);
        assert!(r.is_err(), "truncated to {cut}");
        if cut >= envelope::HEADER_LEN + 72 {
            assert_err!(r, Error::Tampered { .. });
        } else if cut >= 5 {
            assert_err!(r, Error::Malformed { .. });
        }
    }
    let mut longer = f.home_blob.clone();
    longer.push(0);
    assert_err!(
        envelope::open_page(key, &wiki, &f.home, &longer),
        Error::Tampered { .. }
    );
}

#[test]
fn every_byte_change_of_a_state_is_rejected() {
    let f = fixture();
    let bytes = f.snap.state.as_bytes().to_vec();
    assert_eq!(bytes.len(), core_crypto::state::STATE_LEN);
    WikiState::decode(&bytes).unwrap();
    for pos in 0..bytes.len() {
        for delta in all_changes() {
            let r = WikiState::decode(&changed(&bytes, pos, delta));
            match pos {
                0..=3 => assert_err!(r, Error::Malformed { .. }),
                4 => assert_err!(r, Error::UnsupportedVersion { .. }),
                _ => assert_err!(
                    r,
                    Error::BadSignature { what: "wiki state" },
                    "pos {pos} delta {delta}"
                ),
            }
        }
    }
    for cut in 0..bytes.len() {
        assert!(WikiState::decode(&bytes[..cut]).is_err());
    }
}

#[test]
fn every_byte_change_of_a_manifest_is_rejected() {
    let f = fixture();
    let bytes = f.snap.manifest.encode();
    assert_eq!(bytes.len(), 9 + 2 * 72);
    f.snap
        .state
        .verify(&f.snap.keyring, &Manifest::decode(&bytes).unwrap(), None)
        .unwrap();
    let (mut decode_errors, mut digest_mismatches) = (0, 0);
    for pos in 0..bytes.len() {
        for delta in all_changes() {
            let bad = changed(&bytes, pos, delta);
            match Manifest::decode(&bad) {
                Err(e) => {
                    match pos {
                        4 => assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e:?}"),
                        // Magic, count, or page ids no longer strictly sorted.
                        0..=3 | 5..=8 | 9..=24 | 81..=96 => {
                            assert!(matches!(e, Error::Malformed { .. }), "pos {pos}: {e:?}")
                        }
                        _ => panic!("pos {pos}: unexpected decode error {e:?}"),
                    }
                    decode_errors += 1;
                }
                Ok(m) => {
                    // A well-formed but different manifest: the signed digest catches it.
                    assert_err!(
                        f.snap.state.verify(&f.snap.keyring, &m, None),
                        Error::Mismatch("manifest differs from the one the state signs")
                    );
                    digest_mismatches += 1;
                }
            }
        }
    }
    assert_eq!(decode_errors + digest_mismatches, bytes.len() * 255);
    assert!(
        digest_mismatches > 100 * 255,
        "most changes parse and must be caught by the digest"
    );
}

/// Offsets of the variable fields of a keyring version, parsed from the format in
/// `docs/format.md` (independently of the crate's decoder).
struct KeyringLayout {
    /// `(start, end)` of each member record.
    members: Vec<(usize, usize)>,
    /// Offset of the member count (u16).
    count_at: usize,
    /// Where the signer's key starts.
    signer_at: usize,
}

fn keyring_layout(bytes: &[u8]) -> KeyringLayout {
    let count_at = 5 + 16 + 16 + 8 + 32 + 4;
    let count = u16::from_be_bytes([bytes[count_at], bytes[count_at + 1]]) as usize;
    let mut at = count_at + 2;
    let mut members = Vec::new();
    for _ in 0..count {
        let start = at;
        at += 1 + bytes[at] as usize; // name
        at += 1 + 1 + 32 + 32 + 16; // kind, role, keys, scope
        let wrap_len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + wrap_len;
        members.push((start, at));
    }
    KeyringLayout {
        members,
        count_at,
        signer_at: bytes.len() - 96,
    }
}

#[test]
fn every_byte_change_of_a_keyring_is_rejected() {
    let f = fixture();
    let bytes = f.k2.as_bytes().to_vec();
    let layout = keyring_layout(&bytes);
    assert_eq!(layout.members.len(), 4);
    let (mut malformed, mut bad_signature) = (0, 0);
    for pos in 0..bytes.len() {
        for delta in BIT_CHANGES {
            let bad = changed(&bytes, pos, delta);
            let r = Keyring::decode(&bad);
            match pos {
                0..=3 => assert_err!(r, Error::Malformed { .. }),
                4 => assert_err!(r, Error::UnsupportedVersion { .. }),
                p if p >= layout.signer_at => assert_err!(r, Error::BadSignature { .. }),
                _ => match r {
                    Err(Error::BadSignature { what: "keyring" }) => bad_signature += 1,
                    Err(Error::Malformed {
                        what: "keyring", ..
                    }) => malformed += 1,
                    other => panic!("pos {pos} delta {delta}: {other:?}"),
                },
            }
            // And the chain built on it is refused.
            assert!(keyring::verify_chain([f.k1.as_bytes(), &bad]).is_err());
        }
    }
    assert!(bad_signature > malformed, "{bad_signature} / {malformed}");
}

#[test]
fn every_byte_change_of_a_sealed_identity_is_rejected() {
    let id = identity(9);
    let kdf = KdfParams {
        m_kib: KdfParams::FLOOR.m_kib,
        t: 2,
        p: 1,
        salt: [3; 16],
    };
    let key = SealKey::from_bytes([0x33; 32]);
    for (kind, params) in [
        (ProtectorKind::Passphrase, Some(&kdf)),
        (ProtectorKind::Recovery, None),
    ] {
        let sealed = id
            .seal_with_nonce(&[0x44; 24], &key, kind, "alice", params)
            .unwrap();
        assert!(UserIdentity::unseal(&sealed, &key, "alice", params).is_ok());
        for pos in 0..sealed.len() {
            for delta in all_changes() {
                let bad = changed(&sealed, pos, delta);
                let r = UserIdentity::unseal(&bad, &key, "alice", params);
                match pos {
                    0..=3 => assert_err!(r, Error::Malformed { .. }),
                    4 => assert_err!(r, Error::UnsupportedVersion { .. }),
                    5 => match (kind as u8 ^ delta, kind) {
                        // A kind that does not match the protector opening it: altered header.
                        (2 | 3, ProtectorKind::Passphrase) => {
                            assert_err!(r, Error::Tampered { what: "identity" })
                        }
                        (1, _) => assert_err!(r, Error::Tampered { what: "identity" }),
                        // Recovery → KMS: the associated data changes.
                        (3, ProtectorKind::Recovery) => assert_err!(r, Error::Tampered { .. }),
                        _ => assert_err!(r, Error::Malformed { .. }),
                    },
                    6..=61 => assert_err!(r, Error::WrongKey { what: "identity" }),
                    _ => assert_err!(r, Error::Tampered { what: "identity" }),
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Swapped blobs
// ------------------------------------------------------------------------------------------------

#[test]
fn a_blob_moved_to_another_page_or_wiki_is_rejected() {
    let f = fixture();
    let keys = f.snap.keyring.unlock(&f.alice).unwrap();
    let key = keys
        .key_for(&envelope::read_header(&f.home_blob).unwrap())
        .unwrap();
    let wiki = f.snap.keyring.wiki;
    // Same key, other page id or other wiki id: the associated data differs.
    assert_err!(
        envelope::open_page(key, &wiki, &f.note, &f.home_blob),
        Error::Tampered { what: "page" }
    );
    assert_err!(
        envelope::open_page(key, &WikiId([0xee; 16]), &f.home, &f.home_blob),
        Error::Tampered { what: "page" }
    );
    // Through the signed manifest: served under another page id, the hash does not match.
    assert_err!(
        f.snap.open_page(&keys, &f.note, &f.home_blob),
        Error::Mismatch(_)
    );
    assert_err!(
        f.snap.open_page(&keys, &PageId([0x99; 16]), &f.home_blob),
        Error::Mismatch("page is not in the signed manifest")
    );
    // The other wiki's members cannot use their keys on it either (another seed: the same seed
    // would give that wiki the same epoch secret).
    let rng = &mut ChaCha20Rng::from_seed([8; 32]);
    let other = KeyringDraft::genesis(rng, &f.eve, "eve", MemberKind::Person)
        .unwrap()
        .sign(rng, &f.eve)
        .unwrap();
    let eve_keys = other.unlock(&f.eve).unwrap();
    assert_err!(
        eve_keys.key_for(&envelope::read_header(&f.home_blob).unwrap()),
        Error::NoAccess(_)
    );
}

#[test]
fn an_old_version_or_a_dropped_page_is_rejected() {
    let f = fixture();
    let rng = &mut rng();
    let keys = f.snap.keyring.unlock(&f.alice).unwrap();
    let mut batch = f.snap.begin_write();
    batch
        .put(rng, &keys, f.home, &record("Home.md", "# Home v2"))
        .unwrap();
    let next = batch.finish(&f.alice).unwrap().into_snapshot(&f.snap);
    // The old blob is still a valid envelope for that page...
    let key = keys
        .key_for(&envelope::read_header(&f.home_blob).unwrap())
        .unwrap();
    assert!(envelope::open_page(key, &f.snap.keyring.wiki, &f.home, &f.home_blob).is_ok());
    // ...but not the version the current state signs.
    assert_err!(
        next.open_page(&keys, &f.home, &f.home_blob),
        Error::Mismatch(_)
    );
    // A manifest with a page silently dropped does not match the signed digest.
    let mut dropped = next.manifest.clone();
    dropped.pages.remove(&f.note);
    assert_err!(
        next.state.verify(&next.keyring, &dropped, None),
        Error::Mismatch("manifest differs from the one the state signs")
    );
}

#[test]
fn a_blob_moved_to_another_epoch_is_rejected() {
    let f = fixture();
    let rng = &mut rng();
    // Rotate to epoch 2 (remove bob) and write a page there.
    let keys = f.snap.keyring.unlock(&f.alice).unwrap();
    let mut draft = KeyringDraft::edit(&f.snap.keyring, &keys).unwrap();
    draft.remove_member("bob").unwrap();
    let k3 = draft.sign(rng, &f.alice).unwrap();
    assert_eq!(k3.epoch, 2);
    let keys = k3.unlock(&f.alice).unwrap();
    let e2 = keys.key_for_writing("Home.md").unwrap();
    let e1 = keys
        .key_for(&envelope::read_header(&f.home_blob).unwrap())
        .unwrap();
    assert_eq!((e1.epoch(), e2.epoch()), (1, 2));
    let wiki = k3.wiki;
    // An epoch-1 blob offered with the epoch-2 key: its header names another key.
    assert_err!(
        envelope::open_page(&e2, &wiki, &f.home, &f.home_blob),
        Error::NoAccess(_)
    );
    // The header rewritten to claim epoch 2 (epoch and scope id): the commitment fails.
    let mut relabeled = f.home_blob.clone();
    relabeled[5..9].copy_from_slice(&2u32.to_be_bytes());
    relabeled[9..25].copy_from_slice(e2.id().as_bytes());
    let header = envelope::read_header(&relabeled).unwrap();
    let picked = keys.key_for(&header).unwrap();
    assert_eq!(picked.epoch(), 2);
    assert_err!(
        envelope::open_page(picked, &wiki, &f.home, &relabeled),
        Error::WrongKey { what: "page" }
    );
    // Only the epoch rewritten: no key has that (epoch, scope) pair.
    let mut epoch_only = f.home_blob.clone();
    epoch_only[5..9].copy_from_slice(&2u32.to_be_bytes());
    assert_err!(
        keys.key_for(&envelope::read_header(&epoch_only).unwrap()),
        Error::NoAccess(_)
    );
    // An epoch-2 blob with its header rewritten to epoch 1: wrong key again.
    let fresh = envelope::seal_page(rng, &e2, &wiki, &f.home, &record("Home.md", "v2")).unwrap();
    let mut back = fresh.clone();
    back[5..25].copy_from_slice(&f.home_blob[5..25]);
    assert_err!(
        envelope::open_page(e1, &wiki, &f.home, &back),
        Error::WrongKey { what: "page" }
    );
}

// ------------------------------------------------------------------------------------------------
// Who may sign a state; rollback and fork
// ------------------------------------------------------------------------------------------------

fn next_state(f: &Fixture, keyring: &Keyring, manifest: &Manifest) -> StateDraft {
    StateDraft::next(&f.snap.state, keyring, manifest)
}

#[test]
fn states_signed_by_a_reader_a_removed_member_or_an_unknown_key_are_unauthorized() {
    let f = fixture();
    let draft = next_state(&f, &f.snap.keyring, &f.snap.manifest);
    let accepted = draft.sign(&f.bob);
    accepted
        .verify(&f.snap.keyring, &f.snap.manifest, Some(f.snap.state.seen()))
        .unwrap();
    f.snap
        .state
        .verify_transition(
            &f.snap.manifest,
            &accepted,
            &f.snap.manifest,
            &f.snap.keyring,
        )
        .unwrap();
    for (who, signer) in [("reader carol", &f.carol), ("unknown eve", &f.eve)] {
        let state = WikiState::decode(draft.sign(signer).as_bytes()).unwrap();
        assert_err!(
            state.verify(&f.snap.keyring, &f.snap.manifest, None),
            Error::Unauthorized {
                what: "wiki state",
                ..
            },
            "{who}"
        );
        assert_err!(
            f.snap.state.verify_transition(
                &f.snap.manifest,
                &state,
                &f.snap.manifest,
                &f.snap.keyring
            ),
            Error::Unauthorized { .. },
            "{who}"
        );
    }
    // A reader can decrypt but its write is refused before it leaves the client.
    let rng = &mut rng();
    let carol_keys = f.snap.keyring.unlock(&f.carol).unwrap();
    let mut batch = f.snap.begin_write();
    batch
        .put(
            rng,
            &carol_keys,
            PageId([0x33; 16]),
            &record("research/x.md", "x"),
        )
        .unwrap();
    assert_err!(batch.finish(&f.carol), Error::Unauthorized { .. });

    // Bob removed: his states under the new keyring are refused.
    let keys = f.snap.keyring.unlock(&f.alice).unwrap();
    let mut kd = KeyringDraft::edit(&f.snap.keyring, &keys).unwrap();
    kd.remove_member("bob").unwrap();
    let k3 = kd.sign(rng, &f.alice).unwrap();
    let by_bob = next_state(&f, &k3, &f.snap.manifest).sign(&f.bob);
    assert_err!(
        by_bob.verify(&k3, &f.snap.manifest, None),
        Error::Unauthorized {
            what: "wiki state",
            reason: "not a member of the keyring"
        }
    );
    // A state bob signs under the old keyring is not current once k3 is known.
    let old = next_state(&f, &f.snap.keyring, &f.snap.manifest).sign(&f.bob);
    assert_err!(old.verify(&k3, &f.snap.manifest, None), Error::Mismatch(_));
}

#[test]
fn lower_sequence_is_rollback_and_same_sequence_other_hash_is_fork() {
    let f = fixture();
    let seen = f.snap.state.seen();
    assert_eq!(seen.seq, 3);
    // Rollback: an older state.
    let older = WikiState::decode(
        StateDraft {
            seq: 2,
            ..*f.snap.state
        }
        .sign(&f.alice)
        .as_bytes(),
    )
    .unwrap();
    assert_err!(
        older.verify(&f.snap.keyring, &f.snap.manifest, Some(seen)),
        Error::Rollback {
            what: "wiki state",
            seen: 3,
            offered: 2
        }
    );
    // Fork: same sequence, different content.
    let forked = StateDraft {
        manifest: Manifest::default().digest(),
        ..*f.snap.state
    }
    .sign(&f.alice);
    assert_eq!(forked.seq, 3);
    assert_err!(
        forked.verify(&f.snap.keyring, &Manifest::default(), Some(seen)),
        Error::Fork {
            what: "wiki state",
            seq: 3
        }
    );
    // The same state again is fine, a newer one too.
    f.snap
        .state
        .verify(&f.snap.keyring, &f.snap.manifest, Some(seen))
        .unwrap();
    // Through Snapshot::verify.
    let chain = [f.k1.as_bytes().to_vec(), f.k2.as_bytes().to_vec()];
    let record = f.snap.seen_record();
    assert_err!(
        Snapshot::verify(&chain, older.as_bytes(), &f.snap.manifest.encode(), &record),
        Error::Rollback { .. }
    );
    assert_err!(
        Snapshot::verify(
            &chain,
            forked.as_bytes(),
            &Manifest::default().encode(),
            &record
        ),
        Error::Fork { .. }
    );
    Snapshot::verify(
        &chain,
        f.snap.state.as_bytes(),
        &f.snap.manifest.encode(),
        &record,
    )
    .unwrap();
    // A state of another wiki.
    let foreign = StateDraft {
        wiki: WikiId([0xab; 16]),
        ..*f.snap.state
    }
    .sign(&f.alice);
    assert_err!(
        foreign.verify(&f.snap.keyring, &f.snap.manifest, None),
        Error::Mismatch("state belongs to another wiki")
    );
}

// ------------------------------------------------------------------------------------------------
// Keyring chain attacks
// ------------------------------------------------------------------------------------------------

/// Replaces the signer and signature of a keyring version with `signer`'s (what a server or a
/// non-owner holding a key could produce).
fn resign(bytes: &[u8], signer: &UserIdentity) -> Vec<u8> {
    let mut out = bytes[..bytes.len() - 96].to_vec();
    out.extend_from_slice(&signer.public().ed25519);
    let sig = signer.sign(labels::SIGN_KEYRING, &out);
    out.extend_from_slice(&sig);
    out
}

/// Inserts a member record (a whole-wiki owner entry for `who`, with an age file to it) after
/// the existing members, keeping everything else, including the old signature.
fn insert_member(bytes: &[u8], who: &UserIdentity, name: &str) -> Vec<u8> {
    let layout = keyring_layout(bytes);
    let end = layout.members.last().unwrap().1;
    let count = u16::from_be_bytes([bytes[layout.count_at], bytes[layout.count_at + 1]]);
    let mut rec = vec![name.len() as u8];
    rec.extend_from_slice(name.as_bytes());
    rec.push(1); // person
    rec.push(1); // owner
    rec.extend_from_slice(&who.public().x25519);
    rec.extend_from_slice(&who.public().ed25519);
    rec.extend_from_slice(&[0; 16]);
    // Any age file will do: the server has no epoch secret to wrap.
    let wrap = keyring_layout(bytes).members[0];
    let first = &bytes[wrap.0..wrap.1];
    let wrap_bytes = &first[1 + first[0] as usize + 82 + 4..];
    rec.extend_from_slice(&(wrap_bytes.len() as u32).to_be_bytes());
    rec.extend_from_slice(wrap_bytes);
    let mut out = bytes[..layout.count_at].to_vec();
    out.extend_from_slice(&(count + 1).to_be_bytes());
    out.extend_from_slice(&bytes[layout.count_at + 2..end]);
    out.extend_from_slice(&rec);
    out.extend_from_slice(&bytes[end..]);
    out
}

#[test]
fn a_keyring_signed_by_a_non_owner_is_unauthorized() {
    let f = fixture();
    let rng = &mut rng();
    // Bob (writer) cannot sign through the API...
    let keys = f.k2.unlock(&f.bob).unwrap();
    let mut draft = KeyringDraft::edit(&f.k2, &keys).unwrap();
    draft
        .add_member(new_member("eve", Role::Owner, &f.eve, ""))
        .unwrap();
    assert_err!(
        draft.sign(rng, &f.bob),
        Error::Unauthorized {
            what: "keyring",
            ..
        }
    );
    // ...and a version he signs by hand verifies as a signature but not as a successor.
    let keys = f.k2.unlock(&f.alice).unwrap();
    let mut draft = KeyringDraft::edit(&f.k2, &keys).unwrap();
    draft
        .add_member(new_member("eve", Role::Owner, &f.eve, ""))
        .unwrap();
    let k3 = draft.sign(rng, &f.alice).unwrap();
    f.k2.verify_next(&k3).unwrap();
    for (who, signer) in [
        ("writer bob", &f.bob),
        ("reader carol", &f.carol),
        ("unknown eve", &f.eve),
    ] {
        let forged = Keyring::decode(&resign(k3.as_bytes(), signer)).unwrap();
        assert_err!(
            f.k2.verify_next(&forged),
            Error::Unauthorized {
                what: "keyring",
                ..
            },
            "{who}"
        );
        assert_err!(
            keyring::verify_chain([f.k1.as_bytes(), f.k2.as_bytes(), forged.as_bytes()]),
            Error::Unauthorized { .. },
            "{who}"
        );
    }
    // A genesis signed by someone the wiki id does not commit to.
    let fake_genesis = Keyring::decode(&resign(f.k1.as_bytes(), &f.eve)).unwrap();
    assert_err!(
        fake_genesis.verify_genesis(),
        Error::Unauthorized {
            what: "keyring genesis",
            ..
        }
    );
}

#[test]
fn a_member_inserted_without_an_owner_signature_is_rejected() {
    let f = fixture();
    let spliced = insert_member(f.k2.as_bytes(), &f.eve, "mallory");
    assert_eq!(keyring_layout(&spliced).members.len(), 5);
    // The owner's signature no longer covers the document.
    assert_err!(
        Keyring::decode(&spliced),
        Error::BadSignature { what: "keyring" }
    );
    // Re-signed by the inserted key itself: a valid signature, but not by an owner of the
    // previous version.
    let k = Keyring::decode(&resign(&spliced, &f.eve)).unwrap();
    assert!(k.member("mallory").is_some());
    assert_eq!((k.seq, k.prev), (f.k2.seq, f.k2.prev));
    assert_err!(
        f.k1.verify_next(&k),
        Error::Unauthorized {
            what: "keyring",
            ..
        }
    );
    // Inserted into the genesis and re-signed by the intruder: the wiki id commits to alice.
    let genesis = resign(&insert_member(f.k1.as_bytes(), &f.eve, "mallory"), &f.eve);
    assert_err!(
        Keyring::decode(&genesis).unwrap().verify_genesis(),
        Error::Unauthorized {
            what: "keyring genesis",
            ..
        }
    );
    // The intruder also gets nothing to decrypt: the wrap it copied is not addressed to it.
    assert_err!(k.unlock(&f.eve), Error::WrongKey { .. });
}

#[test]
fn an_older_or_forked_keyring_is_rollback_or_fork() {
    let f = fixture();
    let rng = &mut rng();
    let keys = f.k2.unlock(&f.alice).unwrap();
    let mut draft = KeyringDraft::edit(&f.k2, &keys).unwrap();
    draft.remove_member("bob").unwrap();
    let k3 = draft.sign(rng, &f.alice).unwrap();
    let seen = Seen {
        seq: k3.seq,
        hash: k3.hash(),
    };
    // The server serves the chain only up to version 2.
    let served = keyring::verify_chain([f.k1.as_bytes(), f.k2.as_bytes()]).unwrap();
    assert_err!(
        served.check_fresh(Some(seen)),
        Error::Rollback {
            what: "keyring",
            seen: 3,
            offered: 2
        }
    );
    let record = SeenRecord {
        keyring: Some(seen),
        state: None,
    };
    assert_err!(
        Snapshot::verify(
            &[f.k1.as_bytes(), f.k2.as_bytes()],
            f.snap.state.as_bytes(),
            &f.snap.manifest.encode(),
            &record
        ),
        Error::Rollback {
            what: "keyring",
            ..
        }
    );
    // A different version 3 (alice signed two drafts; the server shows each to different
    // clients).
    let mut other = KeyringDraft::edit(&f.k2, &keys).unwrap();
    other.rotate();
    let k3b = other.sign(rng, &f.alice).unwrap();
    f.k2.verify_next(&k3b).unwrap();
    assert_err!(
        k3b.check_fresh(Some(seen)),
        Error::Fork {
            what: "keyring",
            seq: 3
        }
    );
    // Versions dropped or reordered in the chain.
    assert_err!(
        keyring::verify_chain([f.k1.as_bytes(), k3.as_bytes()]),
        Error::Mismatch(_)
    );
    assert_err!(
        keyring::verify_chain([f.k2.as_bytes(), f.k1.as_bytes()]),
        Error::Mismatch(_)
    );
}

// ------------------------------------------------------------------------------------------------
// Revocation and folder scopes
// ------------------------------------------------------------------------------------------------

#[test]
fn a_removed_member_cannot_unlock_the_new_epoch_nor_open_its_pages() {
    let f = fixture();
    let rng = &mut rng();
    let bob_old = f.snap.keyring.unlock(&f.bob).unwrap();
    assert_eq!(bob_old.epoch(), 1);
    let keys = f.snap.keyring.unlock(&f.alice).unwrap();
    let mut draft = KeyringDraft::edit(&f.snap.keyring, &keys).unwrap();
    draft.remove_member("bob").unwrap();
    assert!(draft.rotates());
    let k3 = draft.sign(rng, &f.alice).unwrap();
    assert_eq!(k3.epoch, f.snap.keyring.epoch + 1);
    f.snap.keyring.verify_next(&k3).unwrap();
    let mut batch = f.snap.begin_write();
    batch.set_keyring(k3.clone()).unwrap();
    let snap = batch.finish(&f.alice).unwrap().into_snapshot(&f.snap);
    // Bob is no longer in the keyring.
    assert_err!(snap.keyring.unlock(&f.bob), Error::NoAccess("this wiki"));
    // A page written after the removal.
    let keys = snap.keyring.unlock(&f.alice).unwrap();
    let page = PageId([0x77; 16]);
    let mut batch = snap.begin_write();
    batch
        .put(
            rng,
            &keys,
            page,
            &record("after.md", "written after bob left"),
        )
        .unwrap();
    let commit = batch.finish(&f.alice).unwrap();
    let blob = commit.blobs[0].clone();
    let snap = commit.into_snapshot(&snap);
    assert_eq!(envelope::read_header(&blob).unwrap().epoch, 2);
    // With the keys he kept from epoch 1, nothing opens it.
    assert_err!(snap.open_page(&bob_old, &page, &blob), Error::NoAccess(_));
    let old_key = bob_old.key_for_writing("after.md").unwrap();
    assert_err!(
        envelope::open_page(&old_key, &snap.keyring.wiki, &page, &blob),
        Error::NoAccess(_)
    );
    // Even deriving "epoch 2" keys from his epoch-1 secret gives the wrong key.
    let guessed = bob_old.current_epoch_secret().unwrap().derive_scope(2, "");
    let mut relabeled = blob.clone();
    relabeled[9..25].copy_from_slice(guessed.id().as_bytes());
    assert_err!(
        envelope::open_page(&guessed, &snap.keyring.wiki, &page, &relabeled),
        Error::WrongKey { what: "page" }
    );
    // Old pages stay readable for current members through the epoch link.
    assert_eq!(
        snap.open_page(&keys, &f.home, &f.home_blob).unwrap().path,
        "Home.md"
    );
    // And an attempt by bob to write is refused.
    let mut batch = snap.begin_write();
    batch
        .put_sealed(PageId([0x78; 16]), f.home_blob.clone())
        .unwrap();
    assert_err!(
        batch.finish(&f.bob),
        Error::Unauthorized {
            what: "wiki state",
            reason: "not a member of the keyring"
        }
    );
}

#[test]
fn a_folder_scoped_member_opens_its_folder_only() {
    let f = fixture();
    let carol = f.snap.keyring.unlock(&f.carol).unwrap();
    assert_eq!(carol.prefix(), Some("research/"));
    assert_eq!(
        f.snap
            .open_page(&carol, &f.note, &f.note_blob)
            .unwrap()
            .path,
        "research/notes.md"
    );
    assert_err!(
        f.snap.open_page(&carol, &f.home, &f.home_blob),
        Error::NoAccess(_)
    );
    assert_err!(carol.key_for_writing("Home.md"), Error::NoAccess(_));
    assert_err!(carol.key_for_writing("researchers.md"), Error::NoAccess(_));
    assert!(carol.key_for_writing("research/new.md").is_ok());
    assert_err!(carol.current_epoch_secret(), Error::NoAccess(_));
    // A scoped key cannot edit the keyring.
    assert_err!(
        KeyringDraft::edit(&f.snap.keyring, &carol),
        Error::NoAccess(_)
    );
}

#[test]
fn a_scoped_writer_touching_another_scope_is_unauthorized() {
    let f = fixture();
    let rng = &mut rng();
    let dave = f.snap.keyring.unlock(&f.dave).unwrap();
    // Inside its folder: accepted.
    let mut batch = f.snap.begin_write();
    batch
        .put(
            rng,
            &dave,
            PageId([0x44; 16]),
            &record("research/d.md", "d"),
        )
        .unwrap();
    batch.finish(&f.dave).unwrap();
    // Re-adding a whole-wiki blob under a new id: a change outside its scope.
    let mut batch = f.snap.begin_write();
    batch
        .put_sealed(PageId([0x45; 16]), f.home_blob.clone())
        .unwrap();
    assert_err!(
        batch.finish(&f.dave),
        Error::Unauthorized {
            what: "wiki state",
            reason: "a folder-scoped writer changed a page outside its folder"
        }
    );
    // Deleting a whole-wiki page.
    let mut batch = f.snap.begin_write();
    batch.remove(&f.home).unwrap();
    assert_err!(
        batch.finish(&f.dave),
        Error::Unauthorized {
            what: "wiki state",
            reason: "a folder-scoped writer deleted a page outside its folder"
        }
    );
    // The same transitions signed by dave but checked by another client.
    let mut next = f.snap.manifest.clone();
    next.pages.remove(&f.home);
    let state = StateDraft::next(&f.snap.state, &f.snap.keyring, &next).sign(&f.dave);
    assert_err!(
        f.snap
            .state
            .verify_transition(&f.snap.manifest, &state, &next, &f.snap.keyring),
        Error::Unauthorized { .. }
    );
    // Deleting a page of its own folder is fine.
    let mut next = f.snap.manifest.clone();
    next.pages.remove(&f.note);
    let state = StateDraft::next(&f.snap.state, &f.snap.keyring, &next).sign(&f.dave);
    f.snap
        .state
        .verify_transition(&f.snap.manifest, &state, &next, &f.snap.keyring)
        .unwrap();
    // A transition that skips a sequence or does not link back.
    let skip = StateDraft {
        seq: f.snap.state.seq + 2,
        ..StateDraft::next(&f.snap.state, &f.snap.keyring, &next)
    }
    .sign(&f.alice);
    assert_err!(
        f.snap
            .state
            .verify_transition(&f.snap.manifest, &skip, &next, &f.snap.keyring),
        Error::Mismatch(_)
    );
    let unlinked = StateDraft {
        prev: Digest32([1; 32]),
        ..StateDraft::next(&f.snap.state, &f.snap.keyring, &next)
    }
    .sign(&f.alice);
    assert_err!(
        f.snap
            .state
            .verify_transition(&f.snap.manifest, &unlinked, &next, &f.snap.keyring),
        Error::Mismatch(_)
    );
}

// ------------------------------------------------------------------------------------------------
// Forks the client can see without fetching history: the immediate successor of what it saw
// ------------------------------------------------------------------------------------------------

#[test]
fn a_successor_state_that_does_not_extend_the_one_seen_is_a_fork() {
    let f = fixture();
    let seen = f.snap.state.seen();
    // The server accepted two different writes at seq 3 and showed this client `f.snap.state`;
    // now it offers a seq-4 state built on the other branch.
    let other_branch = StateDraft {
        manifest: Manifest::default().digest(),
        ..*f.snap.state
    }
    .sign(&f.bob);
    let next = StateDraft::next(&other_branch, &f.snap.keyring, &f.snap.manifest).sign(&f.alice);
    assert_eq!(next.seq, seen.seq + 1);
    assert_err!(
        next.verify(&f.snap.keyring, &f.snap.manifest, Some(seen)),
        Error::Fork {
            what: "wiki state",
            seq: 3
        }
    );
    // The real successor is accepted.
    let good = StateDraft::next(&f.snap.state, &f.snap.keyring, &f.snap.manifest).sign(&f.alice);
    good.verify(&f.snap.keyring, &f.snap.manifest, Some(seen))
        .unwrap();
}

#[test]
fn a_successor_keyring_that_does_not_extend_the_one_seen_is_a_fork() {
    let f = fixture();
    let rng = &mut rng();
    let keys = f.k2.unlock(&f.alice).unwrap();
    // Two different version 3s.
    let mut a = KeyringDraft::edit(&f.k2, &keys).unwrap();
    a.set_role("bob", Role::Reader).unwrap();
    let k3a = a.sign(rng, &f.alice).unwrap();
    let mut b = KeyringDraft::edit(&f.k2, &keys).unwrap();
    b.rotate();
    let k3b = b.sign(rng, &f.alice).unwrap();
    // The client saw 3a; the server now offers 4 built on 3b.
    let seen = Seen {
        seq: k3a.seq,
        hash: k3a.hash(),
    };
    let keys_b = k3b.unlock(&f.alice).unwrap();
    let mut c = KeyringDraft::edit(&k3b, &keys_b).unwrap();
    c.set_role("carol", Role::Reader).unwrap();
    let k4 = c.sign(rng, &f.alice).unwrap();
    keyring::verify_chain([
        f.k1.as_bytes(),
        f.k2.as_bytes(),
        k3b.as_bytes(),
        k4.as_bytes(),
    ])
    .unwrap();
    assert_err!(
        k4.check_fresh(Some(seen)),
        Error::Fork {
            what: "keyring",
            seq: 3
        }
    );
    // Built on the version seen: accepted.
    let keys_a = k3a.unlock(&f.alice).unwrap();
    let k4a = KeyringDraft::edit(&k3a, &keys_a)
        .unwrap()
        .sign(rng, &f.alice)
        .unwrap();
    k4a.check_fresh(Some(seen)).unwrap();
}
