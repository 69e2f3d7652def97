//! Interoperability with the reference age implementation (Debian's `age`, the Go one): a keyring
//! entry is a standard age file that `age -d -i identity.txt entry.age` opens to the wiki's epoch
//! secret, and an age file made by `age -r age1…` opens through the crate. Native only. The `age`
//! binary must be installed (`cargo xtask test` installs it); without it these tests fail.

#![cfg(not(target_arch = "wasm32"))]
// Test helpers outside `#[test]` functions may panic too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use core_crypto::identity::UserIdentity;
use core_crypto::keyring::{Keyring, KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::labels;
use core_crypto::scope::EpochSecret;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

const AGE: &str = "age";

/// Runs `age` with `args`, feeding `stdin`; returns stdout. Fails the test (never skips) when the
/// binary is missing.
fn run_age(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = match Command::new(AGE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run the `age` binary ({e}). These interoperability tests need Debian's `age` \
             (the reference Go implementation): run `cargo xtask test`, which installs it, or \
             `apt-get install -y age`."
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write to age");
    let out = child.wait_with_output().expect("age runs");
    assert!(
        out.status.success(),
        "age {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "zkwiki-age-cli-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write");
        path_str(&path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_owned()
}

fn identity_file(id: &UserIdentity) -> Vec<u8> {
    format!(
        "# zkwiki test identity\n# public key: {}\n{}\n",
        id.public().age_recipient_string().unwrap(),
        id.age_identity_string().unwrap().as_str()
    )
    .into_bytes()
}

struct Setup {
    alice: UserIdentity,
    bob: UserIdentity,
    carol: UserIdentity,
    keyring: Keyring,
}

/// alice (owner), bob (reader, agent, whole wiki), carol (reader of `research/`).
fn setup() -> Setup {
    let rng = &mut ChaCha20Rng::from_seed([0xa9; 32]);
    let alice = UserIdentity::make(rng);
    let bob = UserIdentity::make(rng);
    let carol = UserIdentity::make(rng);
    let genesis = KeyringDraft::genesis(rng, &alice, "alice", MemberKind::Person)
        .unwrap()
        .sign(rng, &alice)
        .unwrap();
    let keys = genesis.unlock(&alice).unwrap();
    let mut draft = KeyringDraft::edit(&genesis, &keys).unwrap();
    for (name, id, prefix) in [("bob", &bob, ""), ("carol", &carol, "research/")] {
        draft
            .add_member(NewMember {
                name: name.into(),
                kind: MemberKind::Agent,
                role: Role::Reader,
                public: id.public(),
                prefix: prefix.into(),
            })
            .unwrap();
    }
    let keyring = draft.sign(rng, &alice).unwrap();
    genesis.verify_next(&keyring).unwrap();
    Setup {
        alice,
        bob,
        carol,
        keyring,
    }
}

#[test]
fn age_binary_opens_a_keyring_entry_to_the_epoch_secret() {
    let s = setup();
    let dir = TempDir::new("decrypt");
    for (name, id) in [("alice", &s.alice), ("bob", &s.bob)] {
        let member = s.keyring.member(name).unwrap();
        let entry = dir.write(&format!("{name}.age"), &member.wrap);
        let identity = dir.write(&format!("{name}.txt"), &identity_file(id));
        let out = run_age(&["-d", "-i", &identity, &entry], b"");
        let keys = s.keyring.unlock(id).unwrap();
        let secret = keys.current_epoch_secret().unwrap();
        assert_eq!(
            out.len(),
            32,
            "{name}: a whole-wiki entry holds the 32-byte epoch secret"
        );
        assert_eq!(&out[..], &secret.expose()[..], "{name}");
    }
    // One member's identity does not open another's entry.
    let entry = dir.write("x.age", &s.keyring.member("alice").unwrap().wrap);
    let identity = dir.write("bob-again.txt", &identity_file(&s.bob));
    let status = Command::new(AGE)
        .args(["-d", "-i", &identity, &entry])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("age runs");
    assert!(!status.success());
}

#[test]
fn age_binary_opens_a_folder_scoped_entry_to_its_scope_keys() {
    let s = setup();
    let dir = TempDir::new("scoped");
    let entry = dir.write("carol.age", &s.keyring.member("carol").unwrap().wrap);
    let identity = dir.write("carol.txt", &identity_file(&s.carol));
    let out = run_age(&["-d", "-i", &identity, &entry], b"");
    // "ZKS1" ‖ u16 len ‖ prefix ‖ epoch count (u32) ‖ per epoch: epoch (u32) ‖ scope secret (32).
    let prefix = b"research/";
    let mut expected = b"ZKS1".to_vec();
    expected.extend_from_slice(&(prefix.len() as u16).to_be_bytes());
    expected.extend_from_slice(prefix);
    expected.extend_from_slice(&1u32.to_be_bytes());
    expected.extend_from_slice(&1u32.to_be_bytes());
    let epoch_secret = s
        .keyring
        .unlock(&s.alice)
        .unwrap()
        .current_epoch_secret()
        .unwrap()
        .clone();
    let scope = epoch_secret.derive_scope(1, "research/");
    expected.extend_from_slice(scope.expose());
    assert_eq!(out, expected);
    assert_eq!(s.keyring.member("carol").unwrap().scope, scope.id());
}

/// Replaces `name`'s age file in a keyring version (the member records are parsed from the
/// format in `docs/format.md`) and re-signs it as `owner`.
fn replace_wrap(keyring: &Keyring, name: &str, wrap: &[u8], owner: &UserIdentity) -> Vec<u8> {
    let bytes = keyring.as_bytes();
    let count_at = 5 + 16 + 16 + 8 + 32 + 4;
    let count = u16::from_be_bytes([bytes[count_at], bytes[count_at + 1]]) as usize;
    let mut out = bytes[..count_at + 2].to_vec();
    let mut at = count_at + 2;
    for _ in 0..count {
        let name_len = bytes[at] as usize;
        let this = &bytes[at + 1..at + 1 + name_len];
        let fixed_end = at + 1 + name_len + 82;
        out.extend_from_slice(&bytes[at..fixed_end]);
        let wrap_len =
            u32::from_be_bytes(bytes[fixed_end..fixed_end + 4].try_into().unwrap()) as usize;
        let old = &bytes[fixed_end + 4..fixed_end + 4 + wrap_len];
        let new = if this == name.as_bytes() { wrap } else { old };
        out.extend_from_slice(&(new.len() as u32).to_be_bytes());
        out.extend_from_slice(new);
        at = fixed_end + 4 + wrap_len;
    }
    out.extend_from_slice(&bytes[at..bytes.len() - 96]);
    out.extend_from_slice(&owner.public().ed25519);
    let sig = owner.sign(labels::SIGN_KEYRING, &out);
    out.extend_from_slice(&sig);
    out
}

#[test]
fn the_crate_opens_an_age_file_made_by_the_age_binary() {
    let s = setup();
    let secret: EpochSecret = s
        .keyring
        .unlock(&s.alice)
        .unwrap()
        .current_epoch_secret()
        .unwrap()
        .clone();
    let recipient = s.bob.public().age_recipient_string().unwrap();
    // Encrypted by the Go implementation to bob's recipient string.
    let wrapped = run_age(&["-r", &recipient], secret.expose());
    assert!(wrapped.starts_with(b"age-encryption.org/v1\n"));
    // The age crate, with the identity the core derives, opens it.
    let age_id = s.bob.age_identity().unwrap();
    let decryptor = age::Decryptor::new_buffered(&wrapped[..]).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(&age_id as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(&out[..], &secret.expose()[..]);
    // And the keyring code opens it as bob's entry (the owner re-signs the version with it).
    let resigned = Keyring::decode(&replace_wrap(&s.keyring, "bob", &wrapped, &s.alice)).unwrap();
    assert_eq!(resigned.member("bob").unwrap().wrap, wrapped);
    let keys = resigned.unlock(&s.bob).unwrap();
    assert_eq!(keys.current_epoch_secret().unwrap(), &secret);
    // A file for another recipient is refused as a wrong key, not accepted.
    let for_alice = run_age(
        &["-r", &s.alice.public().age_recipient_string().unwrap()],
        secret.expose(),
    );
    let resigned = Keyring::decode(&replace_wrap(&s.keyring, "bob", &for_alice, &s.alice)).unwrap();
    assert!(matches!(
        resigned.unlock(&s.bob),
        Err(core_crypto::Error::WrongKey { .. })
    ));
}

#[test]
fn age_key_files_round_trip_through_the_binary() {
    // `age-keygen -y` is not always installed; `age -r` with our recipient and `age -d -i` with
    // our identity agree with each other.
    let s = setup();
    let dir = TempDir::new("keys");
    let identity = dir.write("alice.txt", &identity_file(&s.alice));
    let recipient = s.alice.public().age_recipient_string().unwrap();
    let ct = run_age(&["-r", &recipient], b"zkwiki interop");
    let ct_path = dir.write("m.age", &ct);
    assert_eq!(
        run_age(&["-d", "-i", &identity, &ct_path], b""),
        b"zkwiki interop"
    );
}
