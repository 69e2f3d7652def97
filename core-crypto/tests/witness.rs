//! Witnesses in the core: the keyring's witness set (version 2, readable beside version 1 in one
//! chain), and the one rule of what a witness accepts, tried with every submission a hostile
//! server or member could make: forks at the held sequence and after it, a rewritten keyring,
//! states signed by a reader or a stranger, a keyring that does not list the witness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use core_crypto::Error;
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::keyring::{self, Keyring, KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::snapshot::Snapshot;
use core_crypto::state::{ManifestEntry, StateDraft, WikiState};
use core_crypto::witness::{
    Held, Verdict, Witness, WitnessKey, WitnessPolicy, WitnessSet, judge_submission,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([9; 32])
}

fn identity(n: u8) -> UserIdentity {
    UserIdentity::from_secrets(&[n; 32], &[n.wrapping_add(0x80); 32])
}

fn set(policy: WitnessPolicy, keys: &[&WitnessKey]) -> WitnessSet {
    WitnessSet {
        policy,
        witnesses: keys
            .iter()
            .enumerate()
            .map(|(i, k)| Witness {
                key: k.public(),
                url: format!("https://w{i}.example"),
            })
            .collect(),
    }
}

/// alice (owner) with witness `w` from the genesis, bob (writer), carol (reader); a chain of
/// states 1..=5 (seq 2 adds bob and carol).
struct Fixture {
    alice: UserIdentity,
    bob: UserIdentity,
    carol: UserIdentity,
    w: WitnessKey,
    chain: Vec<Keyring>,
    states: Vec<WikiState>,
    /// The snapshot at the last state.
    snap: Snapshot,
}

fn extend(snap: &Snapshot, signer: &UserIdentity, n: u8) -> Snapshot {
    let mut manifest = snap.manifest.clone();
    manifest.pages.insert(
        PageId([n; 16]),
        ManifestEntry {
            epoch: snap.keyring.epoch,
            scope: core_crypto::ids::ScopeId::WHOLE_WIKI,
            size: 100,
            hash: core_crypto::ids::Digest32([n; 32]),
        },
    );
    let state = StateDraft::next(&snap.state, &snap.keyring, &manifest).sign(signer);
    Snapshot {
        keyring: snap.keyring.clone(),
        state,
        manifest,
    }
}

fn fixture() -> Fixture {
    let rng = &mut rng();
    let (alice, bob, carol) = (identity(1), identity(2), identity(3));
    let w = WitnessKey::from_seed(&[0x77; 32]);
    let mut genesis = KeyringDraft::genesis(rng, &alice, "alice", MemberKind::Person).unwrap();
    genesis
        .set_witnesses(set(WitnessPolicy::Stop, &[&w]))
        .unwrap();
    let k1 = genesis.sign(rng, &alice).unwrap();
    assert_eq!(k1.as_bytes()[4], 2, "a keyring with witnesses is version 2");
    let snap = Snapshot::genesis(k1.clone(), &alice).unwrap();
    let mut states = vec![snap.state.clone()];
    let keys = k1.unlock(&alice).unwrap();
    let mut draft = KeyringDraft::edit(&k1, &keys).unwrap();
    for (name, role, id) in [("bob", Role::Writer, &bob), ("carol", Role::Reader, &carol)] {
        draft
            .add_member(NewMember {
                name: name.into(),
                kind: MemberKind::Person,
                role,
                public: id.public(),
                prefix: String::new(),
            })
            .unwrap();
    }
    let k2 = draft.sign(rng, &alice).unwrap();
    let mut batch = snap.begin_write();
    batch.set_keyring(k2.clone()).unwrap();
    let mut snap = batch.finish(&alice).unwrap().into_snapshot(&snap);
    states.push(snap.state.clone());
    for n in 3..=5u8 {
        snap = extend(&snap, if n % 2 == 0 { &bob } else { &alice }, n);
        states.push(snap.state.clone());
    }
    Fixture {
        alice,
        bob,
        carol,
        w,
        chain: vec![k1, k2],
        states,
        snap,
    }
}

fn chain_bytes(chain: &[Keyring]) -> Vec<Vec<u8>> {
    chain.iter().map(|k| k.as_bytes().to_vec()).collect()
}

fn bytes(states: &[WikiState]) -> Vec<Vec<u8>> {
    states.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn held(f: &Fixture, seq: u64) -> Held {
    let state = f.states[seq as usize - 1].clone();
    let keyring_seq = f
        .chain
        .iter()
        .find(|k| k.hash() == state.keyring)
        .unwrap()
        .seq;
    Held { state, keyring_seq }
}

fn judge(f: &Fixture, h: Option<&Held>, states: &[WikiState]) -> core_crypto::Result<Verdict> {
    judge_submission(
        &f.chain[0].wiki,
        &f.w.public(),
        h,
        &chain_bytes(&f.chain),
        &bytes(states),
    )
}

#[test]
fn version_1_and_2_keyrings_verify_in_one_chain() {
    let rng = &mut rng();
    let alice = identity(1);
    let w = WitnessKey::from_seed(&[5; 32]);
    let k1 = KeyringDraft::genesis(rng, &alice, "alice", MemberKind::Person)
        .unwrap()
        .sign(rng, &alice)
        .unwrap();
    assert_eq!(k1.as_bytes()[4], 1, "no witnesses: still version 1");
    assert!(k1.witnesses.is_empty());
    let keys = k1.unlock(&alice).unwrap();
    let mut d = KeyringDraft::edit(&k1, &keys).unwrap();
    d.set_witnesses(set(WitnessPolicy::Warn, &[&w])).unwrap();
    let k2 = d.sign(rng, &alice).unwrap();
    assert_eq!(k2.as_bytes()[4], 2);
    assert_eq!(k2.epoch, 1, "adding a witness starts no epoch");
    let decoded = Keyring::decode(k2.as_bytes()).unwrap();
    assert_eq!(decoded.witnesses, set(WitnessPolicy::Warn, &[&w]));
    // The epoch links and scopes opened under v1 still open under v2 (their AD says version 1).
    let keys2 = k2.unlock(&alice).unwrap();
    let mut d = KeyringDraft::edit(&k2, &keys2).unwrap();
    d.rotate();
    d.set_witnesses(WitnessSet::default()).unwrap();
    let k3 = d.sign(rng, &alice).unwrap();
    assert_eq!(k3.as_bytes()[4], 1, "witnesses removed: version 1 again");
    let latest = keyring::verify_chain([k1.as_bytes(), k2.as_bytes(), k3.as_bytes()]).unwrap();
    assert_eq!(latest.seq, 3);
    let k3_keys = latest.unlock(&alice).unwrap();
    assert_eq!(k3_keys.epoch(), 2);
    // Version 3 is not a format this build reads.
    let mut v3 = k2.as_bytes().to_vec();
    v3[4] = 3;
    assert!(matches!(
        Keyring::decode(&v3),
        Err(Error::UnsupportedVersion {
            what: "keyring",
            version: 3
        })
    ));
    // A set with a bad URL or the same key twice is refused before signing.
    let mut bad = set(WitnessPolicy::Warn, &[&w, &w]);
    let mut d = KeyringDraft::edit(&k1, &keys).unwrap();
    assert!(d.set_witnesses(bad.clone()).is_err());
    bad.witnesses.pop();
    bad.witnesses[0].url = "ftp://w".into();
    assert!(d.set_witnesses(bad).is_err());
}

#[test]
fn a_witness_moves_forward_along_one_chain_only() {
    let f = fixture();
    let s = &f.states;
    // Nothing held: the newest state sent is accepted as it is.
    let v = judge(&f, None, &s[4..5]).unwrap();
    assert_eq!(v, Verdict::Accept(held(&f, 5)));
    // Holding 2: 3..=5 extends it; 4..=5 does not reach back to it; 1..=2 is stale.
    let h2 = held(&f, 2);
    assert_eq!(
        judge(&f, Some(&h2), &s[2..5]).unwrap(),
        Verdict::Accept(held(&f, 5))
    );
    assert_eq!(
        judge(&f, Some(&h2), &s[3..5]).unwrap(),
        Verdict::NeedStates { from: 3 }
    );
    assert_eq!(
        judge(&f, Some(&held(&f, 4)), &s[0..2]).unwrap(),
        Verdict::Stale
    );
    // The held state itself, again: accepted (idempotent).
    assert_eq!(
        judge(&f, Some(&h2), &s[1..2]).unwrap(),
        Verdict::Accept(h2.clone())
    );
}

#[test]
fn a_fork_is_refused_with_the_state_that_shows_it() {
    let f = fixture();
    let s = &f.states;
    // A second branch from state 3: 4' and 5' (what a writer shown state 3 would write).
    let base = Snapshot {
        keyring: f.chain[1].clone(),
        state: s[2].clone(),
        manifest: {
            // Rebuild state 3's manifest: pages 3.
            let mut m = core_crypto::state::Manifest::default();
            m.pages.insert(
                PageId([3; 16]),
                ManifestEntry {
                    epoch: 1,
                    scope: core_crypto::ids::ScopeId::WHOLE_WIKI,
                    size: 100,
                    hash: core_crypto::ids::Digest32([3; 32]),
                },
            );
            m
        },
    };
    assert_eq!(base.manifest.digest(), s[2].manifest);
    let fork4 = extend(&base, &f.bob, 40);
    let fork5 = extend(&fork4, &f.alice, 50);
    let h5 = held(&f, 5);
    // Another state at the held sequence.
    match judge(&f, Some(&h5), &[fork4.state.clone(), fork5.state.clone()]).unwrap() {
        Verdict::Fork { conflicting } => assert_eq!(conflicting, fork5.state),
        other => panic!("{other:?}"),
    }
    // A successor that names another predecessor.
    let h4 = held(&f, 4);
    let fork6 = extend(&fork5, &f.alice, 60);
    match judge(&f, Some(&h4), &[fork5.state.clone(), fork6.state.clone()]).unwrap() {
        Verdict::Fork { conflicting } => assert_eq!(conflicting, fork5.state),
        other => panic!("{other:?}"),
    }
    // A keyring history rewritten under the held state: a fork too.
    let rng = &mut rng();
    let keys = f.chain[0].unlock(&f.alice).unwrap();
    let other_k2 = KeyringDraft::edit(&f.chain[0], &keys)
        .unwrap()
        .tap_rotate()
        .sign(rng, &f.alice)
        .unwrap();
    let genesis_snap = Snapshot {
        keyring: f.chain[0].clone(),
        state: s[0].clone(),
        manifest: core_crypto::state::Manifest::default(),
    };
    let mut batch = genesis_snap.begin_write();
    batch.set_keyring(other_k2.clone()).unwrap();
    let other2 = batch.finish(&f.alice).unwrap();
    let r = judge_submission(
        &f.chain[0].wiki,
        &f.w.public(),
        Some(&held(&f, 2)),
        &chain_bytes(&[f.chain[0].clone(), other_k2]),
        &bytes(&[other2.state]),
    )
    .unwrap();
    assert!(matches!(r, Verdict::Fork { .. }), "{r:?}");
}

trait TapRotate {
    fn tap_rotate(self) -> Self;
}

impl TapRotate for KeyringDraft {
    fn tap_rotate(mut self) -> Self {
        self.rotate();
        self
    }
}

#[test]
fn submissions_no_honest_client_makes_are_errors() {
    let f = fixture();
    let s = &f.states;
    let wiki = f.chain[0].wiki;
    let chain = chain_bytes(&f.chain);
    // A witness the keyring does not list.
    let stranger = WitnessKey::from_seed(&[0x55; 32]);
    assert!(matches!(
        judge_submission(&wiki, &stranger.public(), None, &chain, &bytes(&s[4..5])),
        Err(Error::Unauthorized {
            what: "checkpoint",
            ..
        })
    ));
    // A state signed by the reader, or by someone who is no member.
    for signer in [&f.carol, &identity(9)] {
        let bad = extend(&f.snap, signer, 90);
        assert!(matches!(
            judge(&f, None, &[bad.state]),
            Err(Error::Unauthorized {
                what: "wiki state",
                ..
            })
        ));
    }
    // States that are not consecutive and linked; a state naming a keyring version the chain
    // sent lacks; none; too many.
    assert!(judge(&f, None, &[s[2].clone(), s[4].clone()]).is_err());
    assert!(matches!(
        judge_submission(&wiki, &f.w.public(), None, &chain[..1], &bytes(&s[4..5])),
        Err(Error::Mismatch(_))
    ));
    // A batch that stops before the head (a witness catching up) is fine: it names version 1.
    assert_eq!(
        judge(&f, None, &s[0..1]).unwrap(),
        Verdict::Accept(held(&f, 1))
    );
    assert!(judge(&f, None, &[]).is_err());
    let many = vec![s[4].clone(); 257];
    assert!(judge(&f, None, &many).is_err());
    // Another wiki's keyring.
    let other = judge_submission(
        &core_crypto::ids::WikiId([0; 16]),
        &f.w.public(),
        None,
        &chain,
        &bytes(&s[4..5]),
    );
    assert!(matches!(other, Err(Error::Mismatch(_))));
    // A keyring chain that does not start at a genesis.
    assert!(judge_submission(&wiki, &f.w.public(), None, &chain[1..], &bytes(&s[4..5])).is_err());
}
