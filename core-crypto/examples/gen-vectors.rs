//! Writes core-crypto's own test vectors to `core-crypto/tests/vectors/*.json`.
//!
//! ```text
//! cargo run -p core-crypto --example gen-vectors                 # reuse the committed keyring
//! cargo run -p core-crypto --example gen-vectors -- --new-keyring
//! ```
//!
//! Every input is fixed (constant bytes, `ChaCha20Rng::from_seed`, the `*_with_nonce` functions),
//! so running it again rewrites identical files, except for the keyring: its age wraps use age's
//! own randomness, so by default the committed keyring versions are reused and only
//! `--new-keyring` makes new ones (which then changes `keyring.json` and `state.json`). The
//! schema and the generation code live in `tests/vectors/gen.rs`, which `tests/vectors.rs` also
//! uses to check that regeneration reproduces the committed files.

#[path = "../tests/vectors/gen.rs"]
mod generator;
#[path = "../tests/vectors/gen_witness.rs"]
mod witness_generator;

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let new_keyring = std::env::args().skip(1).any(|a| a == "--new-keyring");
    let keyring_path = dir.join("keyring.json");
    let existing: Option<generator::KeyringFile> = if new_keyring || !keyring_path.exists() {
        None
    } else {
        Some(serde_json::from_str(&std::fs::read_to_string(
            &keyring_path,
        )?)?)
    };
    if existing.is_some() {
        println!("reusing the keyring versions in {}", keyring_path.display());
    } else {
        println!("making a new keyring chain (age wraps are not reproducible)");
    }
    let vectors = generator::generate(existing.as_ref());
    // The witness vectors build on the keyring and state vectors; their version 2 keyring is
    // reused like the others unless --new-keyring.
    let witness_path = dir.join("witness.json");
    let existing_witness: Option<witness_generator::WitnessFile> =
        if new_keyring || !witness_path.exists() {
            None
        } else {
            Some(serde_json::from_str(&std::fs::read_to_string(
                &witness_path,
            )?)?)
        };
    let witness = witness_generator::generate(
        &vectors.keyring,
        &vectors.state,
        existing_witness
            .as_ref()
            .map(witness_generator::keyring_bytes)
            .as_deref(),
    );
    std::fs::create_dir_all(&dir)?;
    let mut files = vectors.files();
    files.push(("witness.json", witness_generator::to_json(&witness)));
    for (name, contents) in files {
        let path = dir.join(name);
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == contents);
        std::fs::write(&path, contents)?;
        println!(
            "{} {}",
            if unchanged { "unchanged" } else { "wrote    " },
            path.display()
        );
    }
    Ok(())
}
