//! `zkwiki decrypt` and the verification behind every command, without a server: a wiki
//! repository is written here exactly as the server lays it out (`docs/api.md`), then tampered
//! with as a malicious operator would, and `decrypt` must name each problem and write nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Env, Operator, git, list_files};
use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::snapshot::{PreparedCommit, Snapshot};
use rand_core::OsRng;

/// A wiki repository written by the test in the server's layout.
struct LocalWiki {
    dir: std::path::PathBuf,
    snapshot: Snapshot,
    keyrings: Vec<Vec<u8>>,
    pages: std::collections::BTreeMap<PageId, Vec<u8>>,
}

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

impl LocalWiki {
    fn create(dir: &Path, owner: &UserIdentity) -> Self {
        let rng = &mut OsRng;
        let genesis = KeyringDraft::genesis(rng, owner, "alice", MemberKind::Person)
            .unwrap()
            .sign(rng, owner)
            .unwrap();
        let snapshot = Snapshot::genesis(genesis.clone(), owner).unwrap();
        git(
            dir.parent().unwrap(),
            &[
                "init",
                "--quiet",
                "--bare",
                "-b",
                "main",
                dir.to_str().unwrap(),
            ],
        );
        let w = Self {
            dir: dir.to_path_buf(),
            snapshot,
            keyrings: vec![genesis.as_bytes().to_vec()],
            pages: Default::default(),
        };
        w.write_commit(1);
        w
    }

    fn op(&self) -> Operator {
        Operator::new(self.dir.clone())
    }

    fn write_commit(&self, seq: u64) {
        let op = self.op();
        let mut files = Vec::new();
        for (i, k) in self.keyrings.iter().enumerate() {
            files.push((format!("keyring/{:010}", i + 1), op.write_blob(k)));
        }
        files.push((
            "state".into(),
            op.write_blob(self.snapshot.state.as_bytes()),
        ));
        files.push((
            "manifest".into(),
            op.write_blob(&self.snapshot.manifest.encode()),
        ));
        for (id, blob) in &self.pages {
            files.push((format!("pages/{id}"), op.write_blob(blob)));
        }
        if seq == 1 {
            // The server's first commit has no parent; an empty root stands in for it here.
            let empty = common::git_in(&self.dir, &["mktree"], b"")
                .trim()
                .to_owned();
            let root = git(&self.dir, &["commit-tree", &empty, "-m", "root"])
                .trim()
                .to_owned();
            git(&self.dir, &["update-ref", "refs/heads/main", &root]);
        }
        op.commit_tree(&files);
    }

    fn apply(
        &mut self,
        owner: &UserIdentity,
        build: impl FnOnce(&mut core_crypto::snapshot::WriteBatch<'_>, &core_crypto::keyring::WikiKeys),
    ) {
        let keys = self.snapshot.keyring.unlock(owner).unwrap();
        let mut batch = self.snapshot.begin_write();
        build(&mut batch, &keys);
        let prepared: PreparedCommit = batch.finish(owner).unwrap();
        for blob in &prepared.blobs {
            let entry = core_crypto::state::ManifestEntry::for_envelope(blob).unwrap();
            let id = prepared
                .manifest
                .pages
                .iter()
                .find(|(_, e)| **e == entry)
                .map(|(id, _)| *id)
                .unwrap();
            self.pages.insert(id, blob.clone());
        }
        self.pages
            .retain(|id, _| prepared.manifest.pages.contains_key(id));
        if let Some(k) = &prepared.keyring {
            self.keyrings.push(k.as_bytes().to_vec());
        }
        let seq = prepared.state.seq;
        self.snapshot = prepared.into_snapshot(&self.snapshot);
        self.write_commit(seq);
    }
}

fn key_file(env: &Env, id: &UserIdentity) -> String {
    use data_encoding::BASE64;
    let path = env.path("alice.key");
    let json = serde_json::json!({
        "zkwiki_key_file": 1,
        "user": "alice",
        "secret": BASE64.encode(id.to_secret_bytes().as_ref()),
        "fingerprint": id.public().fingerprint(),
        "age_identity": id.age_identity_string().unwrap().to_string(),
    });
    std::fs::write(&path, json.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

fn two_page_wiki(env: &Env, owner: &UserIdentity) -> LocalWiki {
    let mut w = LocalWiki::create(&env.tmp.path().join("wiki.git"), owner);
    w.apply(owner, |b, k| {
        b.put(
            &mut OsRng,
            k,
            PageId([1; 16]),
            &record("Home.md", "# Home\n[[Notes/Plan]]\n"),
        )
        .unwrap();
        b.put(
            &mut OsRng,
            k,
            PageId([2; 16]),
            &record("Notes/Plan.md", "---\ntitle: Plan\n---\nsteps\n"),
        )
        .unwrap();
    });
    w
}

#[test]
fn decrypt_verifies_and_writes_every_page() {
    let env = Env::new(None);
    let owner = UserIdentity::make(&mut OsRng);
    let w = two_page_wiki(&env, &owner);
    let key = key_file(&env, &owner);
    let out = env.path("plain");
    env.ok(&[
        "--key-file",
        &key,
        "decrypt",
        w.dir.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(list_files(&out), vec!["Home.md", "Notes/Plan.md"]);
    assert_eq!(
        std::fs::read_to_string(out.join("Notes/Plan.md")).unwrap(),
        "---\ntitle: Plan\n---\nsteps\n"
    );
    // A second decrypt into a non-empty folder is refused.
    let err = env.fails(
        &[
            "--key-file",
            &key,
            "decrypt",
            w.dir.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("not empty"), "{err}");
}

/// Runs decrypt on a tampered repo: must fail with exit 4, name the problem, and leave no output.
fn assert_decrypt_refuses(env: &Env, key: &str, repo: &Path, expect: &str) {
    let out = env.path("refused");
    let err = env.fails(
        &[
            "--key-file",
            key,
            "decrypt",
            repo.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        4,
    );
    assert!(err.contains(expect), "expected {expect:?} in:\n{err}");
    eprintln!("{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!out.exists(), "no output folder may be written");
    let leftovers: Vec<_> = std::fs::read_dir(env.work())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("zkwiki-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary folders left behind");
}

#[test]
fn decrypt_names_each_attack_and_writes_nothing() {
    let env = Env::new(None);
    let owner = UserIdentity::make(&mut OsRng);
    let w = two_page_wiki(&env, &owner);
    let key = key_file(&env, &owner);
    let op = w.op();
    let good = op.head();
    let tree = op.tree(&good);
    let oid = |p: &str| tree.iter().find(|(path, _)| path == p).unwrap().1.clone();
    let p1 = format!("pages/{}", PageId([1; 16]));
    let p2 = format!("pages/{}", PageId([2; 16]));
    let with = |changes: &[(&str, Option<String>)]| {
        let mut files = tree.clone();
        for (path, new) in changes {
            files.retain(|(p, _)| p != path);
            if let Some(o) = new {
                files.push(((*path).to_owned(), o.clone()));
            }
        }
        op.reset(&good);
        op.commit_tree(&files);
    };

    // A flipped byte in a page blob.
    let mut bytes = op.blob(&oid(&p1));
    let n = bytes.len() - 5;
    bytes[n] ^= 1;
    with(&[(&p1, Some(op.write_blob(&bytes)))]);
    assert_decrypt_refuses(&env, &key, &w.dir, "differs from the signed manifest");

    // Two blobs swapped.
    with(&[(&p1, Some(oid(&p2))), (&p2, Some(oid(&p1)))]);
    assert_decrypt_refuses(&env, &key, &w.dir, "differs from the signed manifest");

    // A page dropped from the tree.
    with(&[(&p2, None)]);
    assert_decrypt_refuses(&env, &key, &w.dir, "missing from the repository");

    // A page dropped from the manifest too (the state signs the manifest).
    let mut m = core_crypto::state::Manifest::decode(&op.blob(&oid("manifest"))).unwrap();
    m.pages.remove(&PageId([2; 16]));
    with(&[(&p2, None), ("manifest", Some(op.write_blob(&m.encode())))]);
    assert_decrypt_refuses(&env, &key, &w.dir, "manifest differs");

    // A flipped byte in the keyring.
    let mut k = op.blob(&oid("keyring/0000000001"));
    k[40] ^= 1;
    with(&[("keyring/0000000001", Some(op.write_blob(&k)))]);
    assert_decrypt_refuses(&env, &key, &w.dir, "keyring");

    // A stray file.
    with(&[("README", Some(op.write_blob(b"hello")))]);
    assert_decrypt_refuses(&env, &key, &w.dir, "unexpected file");

    // Back to good: decrypt works again.
    op.reset(&good);
    let out = env.path("ok");
    env.ok(&[
        "--key-file",
        &key,
        "decrypt",
        w.dir.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
}

#[test]
fn decrypt_detects_rollback_and_unsigned_members() {
    let env = Env::new(None);
    let owner = UserIdentity::make(&mut OsRng);
    let mut w = two_page_wiki(&env, &owner);
    let key = key_file(&env, &owner);
    let op = w.op();
    let old = op.head();
    w.apply(&owner, |b, k| {
        b.put(&mut OsRng, k, PageId([3; 16]), &record("New.md", "new"))
            .unwrap();
    });
    let new = op.head();
    env.ok(&[
        "--key-file",
        &key,
        "decrypt",
        w.dir.to_str().unwrap(),
        env.path("a").to_str().unwrap(),
    ]);
    // The operator serves the older commit after this machine saw the newer one.
    op.reset(&old);
    assert_decrypt_refuses(&env, &key, &w.dir, "rollback");
    // An explicit old backup is accepted with --allow-older.
    env.ok(&[
        "--key-file",
        &key,
        "decrypt",
        "--allow-older",
        w.dir.to_str().unwrap(),
        env.path("b").to_str().unwrap(),
    ]);
    op.reset(&new);

    // The operator slips in a keyring version adding its own key, signed by itself.
    let mallory = UserIdentity::make(&mut OsRng);
    let keys = w.snapshot.keyring.unlock(&owner).unwrap();
    let mut draft = KeyringDraft::edit(&w.snapshot.keyring, &keys).unwrap();
    draft
        .add_member(NewMember {
            name: "mallory".into(),
            kind: MemberKind::Person,
            role: Role::Owner,
            public: mallory.public(),
            prefix: String::new(),
        })
        .unwrap();
    // Signing as mallory is refused by the core, so forge by signing as the owner and then
    // replacing the signer: the simplest forgery is a keyring signed by a non-owner.
    assert!(draft.sign(&mut OsRng, &mallory).is_err());
    let tree = op.tree(&new);
    let mut files = tree.clone();
    let genesis_by_mallory =
        KeyringDraft::genesis(&mut OsRng, &mallory, "mallory", MemberKind::Person)
            .unwrap()
            .sign(&mut OsRng, &mallory)
            .unwrap();
    files.push((
        "keyring/0000000002".into(),
        op.write_blob(genesis_by_mallory.as_bytes()),
    ));
    op.commit_tree(&files);
    assert_decrypt_refuses(&env, &key, &w.dir, "keyring");
}
