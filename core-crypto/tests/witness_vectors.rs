//! The witness vectors (`tests/vectors/witness.json`), checked both ways: the stored bytes parse
//! and verify to the fields the file states (a version 2 keyring after `keyring.json`'s chain,
//! checkpoints, co-signatures, rejected co-signatures, safety numbers), and regenerating with the
//! committed keyring reproduces the file exactly.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "vectors/gen.rs"]
mod generator;
#[path = "vectors/gen_witness.rs"]
mod witness_generator;

use core_crypto::ids::{Digest32, WikiId};
use core_crypto::keyring::{self, Keyring};
use core_crypto::witness::{Checkpoint, Cosignature, WitnessKey, key_fingerprint};
use generator::{KeyringFile, StateFile, error_name, hex, unhex, unhex_n};
use witness_generator::WitnessFile;

const KEYRING: &str = include_str!("vectors/keyring.json");
const STATE: &str = include_str!("vectors/state.json");
const WITNESS: &str = include_str!("vectors/witness.json");

fn load<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).expect("vector file parses")
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_version_2_keyring_follows_the_chain_and_lists_the_witnesses() {
    let kr: KeyringFile = load(KEYRING);
    let w: WitnessFile = load(WITNESS);
    let mut chain: Vec<Vec<u8>> = kr.versions.iter().map(|v| unhex(&v.bytes)).collect();
    chain.push(unhex(&w.keyring.bytes));
    let latest = keyring::verify_chain(chain.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(latest.hash().to_hex(), w.keyring.hash);
    assert_eq!(latest.as_bytes()[4], w.keyring.version);
    assert_eq!(w.keyring.version, 2);
    assert_eq!((latest.seq, latest.epoch), (w.keyring.seq, w.keyring.epoch));
    assert_eq!(latest.prev.to_hex(), w.keyring.prev);
    assert_eq!(latest.witnesses.policy.name(), w.keyring.policy);
    assert_eq!(latest.witnesses.witnesses.len(), w.keyring.witnesses.len());
    for (got, want) in latest.witnesses.witnesses.iter().zip(&w.keyring.witnesses) {
        assert_eq!(hex(&got.key), want.key);
        assert_eq!(got.url, want.url);
        assert_eq!(got.fingerprint(), want.fingerprint);
    }
    // The epoch links carried from version 1 still open: alice holds epoch 2's secret.
    let alice = generator::scenario_identities().remove(0).1;
    let keys = latest.unlock(&alice).unwrap();
    assert_eq!(
        hex(keys.current_epoch_secret().unwrap().expose()),
        kr.epoch_secrets[1]
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn checkpoints_cosignatures_and_safety_numbers() {
    let w: WitnessFile = load(WITNESS);
    for k in &w.witness_keys {
        let key = WitnessKey::from_seed(&unhex_n(&k.seed));
        assert_eq!(hex(&key.public()), k.public);
        assert_eq!(key_fingerprint(&key.public()), k.fingerprint);
    }
    let mut checkpoints = Vec::new();
    for c in &w.checkpoints {
        let d = Checkpoint::decode(&unhex(&c.encoded)).unwrap();
        assert_eq!(d.wiki.to_hex(), c.wiki);
        assert_eq!((d.seq, d.keyring_seq), (c.seq, c.keyring_seq));
        assert_eq!(d.state.to_hex(), c.state);
        let built = Checkpoint {
            wiki: WikiId::from_hex(&c.wiki).unwrap(),
            seq: c.seq,
            state: Digest32::from_hex(&c.state).unwrap(),
            keyring_seq: c.keyring_seq,
        };
        assert_eq!(hex(&built.encode()), c.encoded, "{}", c.comment);
        checkpoints.push(d);
    }
    for c in &w.cosignatures {
        let bytes = unhex(&c.bytes);
        let d = Cosignature::decode(&bytes).unwrap();
        let key = WitnessKey::from_seed(&unhex_n(&w.witness_keys[c.witness].seed));
        assert_eq!(d.witness, key.public());
        assert_eq!(d.checkpoint, checkpoints[c.checkpoint]);
        assert_eq!((hex(&d.nonce), d.time_ms), (c.nonce.clone(), c.time_ms));
        // Ed25519 is deterministic: signing again gives the same bytes.
        let again = key.cosign(&checkpoints[c.checkpoint], &unhex_n(&c.nonce), c.time_ms);
        assert_eq!(again.as_bytes(), &bytes[..], "{}", c.comment);
    }
    for r in &w.cosignature_rejects {
        let e = Cosignature::decode(&unhex(&r.bytes)).expect_err(&r.comment);
        assert_eq!(error_name(&e), r.error, "{}", r.comment);
    }
    for s in &w.safety_numbers {
        let wiki = WikiId::from_hex(&s.wiki).unwrap();
        let hash = Digest32::from_hex(&s.hash).unwrap();
        let got = match s.kind.as_str() {
            "head" => core_crypto::safety::head(&wiki, &hash),
            _ => core_crypto::safety::keyring(&wiki, &hash),
        };
        assert_eq!(got, s.number, "{}", s.comment);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn regeneration_reproduces_the_committed_witness_file() {
    let kr: KeyringFile = load(KEYRING);
    let st: StateFile = load(STATE);
    let w: WitnessFile = load(WITNESS);
    let again = witness_generator::generate(&kr, &st, Some(&witness_generator::keyring_bytes(&w)));
    assert!(
        witness_generator::to_json(&again) == WITNESS,
        "witness.json differs from what gen-vectors produces; run \
         `cargo run -p core-crypto --example gen-vectors` and review the diff"
    );
    // A fresh version 2 keyring differs only in its age wraps.
    let last = Keyring::decode(&unhex(&kr.versions.last().unwrap().bytes)).unwrap();
    let fresh = witness_generator::make_witness_keyring(&last);
    let stored = Keyring::decode(&witness_generator::keyring_bytes(&w)).unwrap();
    assert_eq!(fresh.witnesses, stored.witnesses);
    assert_eq!(
        (fresh.seq, fresh.epoch, fresh.prev),
        (stored.seq, stored.epoch, stored.prev)
    );
    assert_ne!(fresh.as_bytes(), stored.as_bytes());
}
