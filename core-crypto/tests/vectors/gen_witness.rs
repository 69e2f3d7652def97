// The witness vectors (`witness.json`): the schema and the generator, shared by
// `examples/gen-vectors.rs` and `tests/witness_vectors.rs`. Both include `gen.rs` as `generator`
// beside this file, whose keyring and state vectors these build on: a version 2 keyring that
// follows `keyring.json`'s last version and lists two witnesses, checkpoints of `state.json`'s
// states, co-signatures (Ed25519 is deterministic, so they regenerate byte for byte), rejected
// co-signatures, and safety numbers. Like every keyring, the version 2 keyring's age wraps cannot
// be regenerated, so its committed bytes are reused.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use core_crypto::ids::{Digest32, WikiId};
use core_crypto::keyring::{Keyring, KeyringDraft};
use core_crypto::witness::{
    Checkpoint, Cosignature, Witness, WitnessKey, WitnessPolicy, WitnessSet, key_fingerprint,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::generator::{KeyringFile, StateFile, error_name, hex, scenario_identities, unhex};

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct WitnessFile {
    pub description: String,
    pub witness_keys: Vec<WitnessKeyCase>,
    pub keyring: WitnessKeyring,
    pub checkpoints: Vec<CheckpointCase>,
    pub cosignatures: Vec<CosignatureCase>,
    pub cosignature_rejects: Vec<RejectCase>,
    pub safety_numbers: Vec<SafetyCase>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct WitnessKeyCase {
    /// The Ed25519 seed.
    pub seed: String,
    pub public: String,
    pub fingerprint: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct WitnessKeyring {
    pub comment: String,
    pub bytes: String,
    pub hash: String,
    pub version: u8,
    pub seq: u64,
    pub prev: String,
    pub epoch: u32,
    pub policy: String,
    pub witnesses: Vec<WitnessCase>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct WitnessCase {
    pub key: String,
    pub url: String,
    pub fingerprint: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CheckpointCase {
    pub comment: String,
    pub wiki: String,
    pub seq: u64,
    pub state: String,
    pub keyring_seq: u64,
    pub encoded: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CosignatureCase {
    pub comment: String,
    /// Index into `witness_keys`.
    pub witness: usize,
    /// Index into `checkpoints`.
    pub checkpoint: usize,
    pub nonce: String,
    pub time_ms: u64,
    pub bytes: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct RejectCase {
    pub comment: String,
    pub bytes: String,
    pub error: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct SafetyCase {
    pub comment: String,
    /// `head` (of a state hash) or `keyring` (of a keyring hash).
    pub kind: String,
    pub wiki: String,
    pub hash: String,
    pub number: String,
}

/// The two witnesses' keys.
pub fn witness_keys() -> Vec<WitnessKey> {
    vec![
        WitnessKey::from_seed(&[0x57; 32]),
        WitnessKey::from_seed(&[0x58; 32]),
    ]
}

fn witness_set() -> WitnessSet {
    let keys = witness_keys();
    WitnessSet {
        policy: WitnessPolicy::Stop,
        witnesses: vec![
            Witness {
                key: keys[0].public(),
                url: "https://witness.example.org".into(),
            },
            Witness {
                key: keys[1].public(),
                url: "http://127.0.0.1:8090/zkwiki".into(),
            },
        ],
    }
}

/// The seed of the RNG the version 2 keyring draws from (its scope nonce; age does not use it).
pub const WITNESS_KEYRING_SEED: u8 = 0x57;

/// alice signs the version after `last`, listing the two witnesses (policy stop).
pub fn make_witness_keyring(last: &Keyring) -> Keyring {
    let alice = &scenario_identities()[0].1;
    let mut rng = ChaCha20Rng::from_seed([WITNESS_KEYRING_SEED; 32]);
    let keys = last.unlock(alice).expect("alice unlocks");
    let mut draft = KeyringDraft::edit(last, &keys).expect("edit");
    draft.set_witnesses(witness_set()).expect("witnesses");
    draft.sign(&mut rng, alice).expect("sign")
}

fn keyring_case(k: &Keyring) -> WitnessKeyring {
    WitnessKeyring {
        comment: "keyring.json's last version followed by one that lists two witnesses (policy \
                  stop): format version 2, same epoch, signed by alice"
            .into(),
        bytes: hex(k.as_bytes()),
        hash: k.hash().to_hex(),
        version: k.as_bytes()[4],
        seq: k.seq,
        prev: k.prev.to_hex(),
        epoch: k.epoch,
        policy: k.witnesses.policy.name().into(),
        witnesses: k
            .witnesses
            .witnesses
            .iter()
            .map(|w| WitnessCase {
                key: hex(&w.key),
                url: w.url.clone(),
                fingerprint: w.fingerprint(),
            })
            .collect(),
    }
}

fn checkpoint_case(comment: &str, c: &Checkpoint) -> CheckpointCase {
    CheckpointCase {
        comment: comment.into(),
        wiki: c.wiki.to_hex(),
        seq: c.seq,
        state: c.state.to_hex(),
        keyring_seq: c.keyring_seq,
        encoded: hex(&c.encode()),
    }
}

/// Generates `witness.json` on top of the keyring and state vectors; `existing` is the committed
/// version 2 keyring (reused: its age wraps cannot be regenerated), `None` makes a new one.
pub fn generate(keyring: &KeyringFile, states: &StateFile, existing: Option<&[u8]>) -> WitnessFile {
    let last_bytes = unhex(&keyring.versions.last().expect("versions").bytes);
    let last = Keyring::decode(&last_bytes).expect("stored keyring decodes");
    let v2 = match existing {
        Some(bytes) => Keyring::decode(bytes).expect("stored witness keyring decodes"),
        None => make_witness_keyring(&last),
    };
    let keys = witness_keys();
    let witness_keys = keys
        .iter()
        .map(|k| WitnessKeyCase {
            seed: hex(k.to_seed().as_ref()),
            public: hex(&k.public()),
            fingerprint: key_fingerprint(&k.public()),
        })
        .collect();
    let wiki = last.wiki;
    let keyring_seq_of = |hash: &str| {
        keyring
            .versions
            .iter()
            .find(|v| v.hash == hash)
            .map_or(0, |v| v.seq)
    };
    let mut checkpoints = vec![checkpoint_case(
        "nothing held for this wiki (seq 0)",
        &Checkpoint::empty(wiki),
    )];
    for case in &states.cases {
        if case.verify != "ok" {
            continue;
        }
        let c = Checkpoint {
            wiki: WikiId::from_hex(&case.wiki).expect("wiki"),
            seq: case.seq,
            state: Digest32::from_hex(&case.hash).expect("hash"),
            keyring_seq: keyring_seq_of(&case.keyring),
        };
        checkpoints.push(checkpoint_case(
            &format!("state.json's state {} ({})", case.seq, case.comment),
            &c,
        ));
    }
    let decoded: Vec<Checkpoint> = checkpoints
        .iter()
        .map(|c| Checkpoint::decode(&unhex(&c.encoded)).expect("checkpoint"))
        .collect();
    let plan: [(&str, usize, usize, [u8; 32], u64); 3] = [
        (
            "witness 0 says it holds nothing, for a client's nonce",
            0,
            0,
            [0xa1; 32],
            1_764_320_400_000,
        ),
        (
            "witness 0 co-signs the latest state for a client's nonce",
            0,
            decoded.len() - 1,
            [0xa2; 32],
            1_764_320_401_000,
        ),
        (
            "witness 1 co-signs it without a nonce (the answer to a submission that sent none)",
            1,
            decoded.len() - 1,
            [0; 32],
            1_764_320_402_000,
        ),
    ];
    let mut cosignatures = Vec::new();
    let mut signed = Vec::new();
    for (comment, w, c, nonce, time_ms) in plan {
        let s = keys[w].cosign(&decoded[c], &nonce, time_ms);
        cosignatures.push(CosignatureCase {
            comment: comment.into(),
            witness: w,
            checkpoint: c,
            nonce: hex(&nonce),
            time_ms,
            bytes: hex(s.as_bytes()),
        });
        signed.push(s);
    }
    let good = signed[1].as_bytes().to_vec();
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x01;
        b
    };
    let mut inconsistent = Checkpoint::empty(wiki);
    inconsistent.state = Digest32([1; 32]);
    let bad_empty = keys[0].cosign(&inconsistent, &[0; 32], 0);
    let reject = |comment: &str, bytes: Vec<u8>| RejectCase {
        comment: comment.into(),
        error: error_name(&Cosignature::decode(&bytes).expect_err("rejected")).into(),
        bytes: hex(&bytes),
    };
    let cosignature_rejects = vec![
        reject("a bit of the sequence flipped", flip(5 + 5 + 16 + 7)),
        reject("a bit of the signature flipped", flip(good.len() - 1)),
        reject("the witness key replaced by the other witness's", {
            let mut b = good.clone();
            let at = good.len() - 96;
            b[at..at + 32].copy_from_slice(&keys[1].public());
            b
        }),
        reject("version 2", {
            let mut b = good.clone();
            b[4] = 2;
            b
        }),
        reject("truncated", good[..good.len() - 1].to_vec()),
        reject(
            "an empty checkpoint with a state hash (signed, yet malformed)",
            bad_empty.as_bytes().to_vec(),
        ),
    ];
    let mut safety_numbers = Vec::new();
    for c in decoded.iter().skip(1) {
        safety_numbers.push(SafetyCase {
            comment: format!("the head at state {}", c.seq),
            kind: "head".into(),
            wiki: c.wiki.to_hex(),
            hash: c.state.to_hex(),
            number: core_crypto::safety::head(&c.wiki, &c.state),
        });
    }
    for v in keyring
        .versions
        .iter()
        .map(|v| (v.seq, v.hash.clone()))
        .chain([(v2.seq, v2.hash().to_hex())])
    {
        let hash = Digest32::from_hex(&v.1).expect("hash");
        safety_numbers.push(SafetyCase {
            comment: format!("keyring version {}", v.0),
            kind: "keyring".into(),
            wiki: wiki.to_hex(),
            hash: hash.to_hex(),
            number: core_crypto::safety::keyring(&wiki, &hash),
        });
    }
    WitnessFile {
        description: "Witnesses: a version 2 keyring that lists two witnesses (it follows \
            keyring.json's last version; its age wraps come from age's own randomness, so the \
            bytes are reused, not regenerated), the witnesses' Ed25519 keys (seeds) and \
            fingerprints, checkpoints of state.json's states, co-signatures (Ed25519 over \
            SIGN_COSIGNATURE ‖ the bytes before the signature), rejected co-signatures with \
            their error, and safety numbers of heads and keyring versions."
            .into(),
        witness_keys,
        keyring: keyring_case(&v2),
        checkpoints,
        cosignatures,
        cosignature_rejects,
        safety_numbers,
    }
}

/// The witness file as JSON (pretty, with a final newline, like every vector file).
pub fn to_json(file: &WitnessFile) -> String {
    let mut s = serde_json::to_string_pretty(file).expect("serializes");
    s.push('\n');
    s
}

/// The committed version 2 keyring's bytes, from a witness file.
pub fn keyring_bytes(file: &WitnessFile) -> Vec<u8> {
    unhex(&file.keyring.bytes)
}
