//! Criterion benchmarks of access changes on a 10,000-page wiki (the client's side of
//! `zkwiki agent revoke` and `zkwiki reencrypt`). Figures in `docs/benchmarks.md` ("Agents"):
//!
//! ```text
//! cargo bench -p core-crypto --bench revocation -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `revoke/10000_pages`: remove one agent from a keyring of 10 members, sign the new keyring
//!   (new epoch, age wraps to the remaining 9), and sign the state that commits it. The pages are
//!   not touched: the cost does not depend on their number beyond hashing the manifest.
//! - `reencrypt/3KiB_page`: re-sealing one 3 KiB page under the new epoch (decrypt, encrypt,
//!   manifest entry), the unit cost of `zkwiki reencrypt`.

#![allow(clippy::expect_used)]

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use core_crypto::envelope::{self, PageKind, PageRecord};
    use core_crypto::identity::UserIdentity;
    use core_crypto::ids::PageId;
    use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role};
    use core_crypto::snapshot::Snapshot;
    use core_crypto::state::ManifestEntry;
    use criterion::Criterion;
    use rand_core::OsRng;

    fn page(i: usize) -> PageRecord {
        PageRecord {
            kind: PageKind::Markdown,
            path: format!("notes/page-{i}.md"),
            author: "owner".into(),
            written_at_ms: 1_700_000_000_000,
            note: Default::default(),
            content: vec![b'x'; 3 * 1024],
        }
    }

    /// A wiki with 10 members and `pages` pages, as the owner sees it.
    fn wiki(pages: usize) -> (Snapshot, UserIdentity, Vec<u8>, PageId) {
        let owner = UserIdentity::make(&mut OsRng);
        let mut draft = KeyringDraft::genesis(&mut OsRng, &owner, "owner", MemberKind::Person)
            .expect("genesis");
        for i in 0..9 {
            draft
                .add_member(NewMember {
                    name: format!("agent-{i}"),
                    kind: MemberKind::Agent,
                    role: Role::Reader,
                    public: UserIdentity::make(&mut OsRng).public(),
                    prefix: String::new(),
                })
                .expect("member");
        }
        let keyring = draft.sign(&mut OsRng, &owner).expect("sign");
        let snap = Snapshot::genesis(keyring, &owner).expect("snapshot");
        let keys = snap.keyring.unlock(&owner).expect("unlock");
        let mut batch = snap.begin_write();
        let mut first = (Vec::new(), PageId([0; 16]));
        for i in 0..pages {
            let id = PageId::random(&mut OsRng);
            batch.put(&mut OsRng, &keys, id, &page(i)).expect("put");
            if i == 0 {
                first.1 = id;
            }
        }
        let commit = batch.finish(&owner).expect("finish");
        first.0 = commit.blobs[0].clone();
        let snap = commit.into_snapshot(&snap);
        (snap, owner, first.0, first.1)
    }

    fn revocation(c: &mut Criterion) {
        let (snap, owner, blob, id) = wiki(10_000);
        assert_eq!(snap.manifest.pages.len(), 10_000);
        let keys = snap.keyring.unlock(&owner).expect("unlock");
        c.bench_function("revoke/10000_pages", |b| {
            b.iter(|| {
                let mut draft = KeyringDraft::edit(&snap.keyring, &keys).expect("edit");
                draft.remove_member("agent-3").expect("remove");
                let next = draft.sign(&mut OsRng, &owner).expect("sign");
                let mut batch = snap.begin_write();
                batch.set_keyring(next).expect("set keyring");
                black_box(batch.finish(&owner).expect("finish"))
            })
        });
        c.bench_function("reencrypt/3KiB_page", |b| {
            b.iter(|| {
                let opened = snap.open_page(&keys, &id, &blob).expect("open");
                let key = keys.key_for_writing(&opened.path).expect("key");
                let sealed =
                    envelope::seal_page(&mut OsRng, &key, &snap.keyring.wiki, &id, &opened)
                        .expect("seal");
                black_box(ManifestEntry::for_envelope(&sealed).expect("entry"))
            })
        });
    }

    criterion::criterion_group!(benches, revocation);
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

/// Criterion does not run in WebAssembly.
#[cfg(target_arch = "wasm32")]
fn main() {}
