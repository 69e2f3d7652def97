//! Round trips of every format. A few fixed ones run natively and in WebAssembly; the property
//! tests (proptest, native only) cover arbitrary inputs, and check that every decoder rejects
//! arbitrary bytes with an error instead of panicking.

// Test helpers outside `#[test]` functions may panic too.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use core_crypto::Error;
use core_crypto::envelope::{self, PageKind, PageRecord};
use core_crypto::ids::{PageId, WikiId};
use core_crypto::scope::EpochSecret;
use core_crypto::{labels, sealed};

fn record(kind: PageKind, path: &str, content: &[u8]) -> PageRecord {
    PageRecord {
        kind,
        path: path.into(),
        author: "alice".into(),
        written_at_ms: 1_764_320_400_000,
        note: Default::default(),
        content: content.to_vec(),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn sealed_box_round_trip_with_random_nonces() {
    let mut rng = rand_core::OsRng;
    let key = [0x42; 32];
    for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 4096, 100_000] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let a = sealed::seal(&mut rng, &key, labels::SEAL_PAGE, b"ad", &plaintext);
        let b = sealed::seal(&mut rng, &key, labels::SEAL_PAGE, b"ad", &plaintext);
        assert_ne!(a, b, "fresh nonces");
        assert_eq!(a.len(), plaintext.len() + sealed::OVERHEAD);
        for s in [&a, &b] {
            let opened = sealed::open(&key, labels::SEAL_PAGE, b"ad", s, "t").unwrap();
            assert_eq!(&opened[..], &plaintext[..]);
        }
        assert_eq!(
            sealed::open(&[0x43; 32], labels::SEAL_PAGE, b"ad", &a, "t"),
            Err(Error::WrongKey { what: "t" })
        );
        assert_eq!(
            sealed::open(&key, labels::SEAL_PAGE, b"other", &a, "t"),
            Err(Error::Tampered { what: "t" })
        );
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn envelope_round_trip_of_each_kind_and_size() {
    let mut rng = rand_core::OsRng;
    let key = EpochSecret::from_bytes([9; 32]).derive_scope(1, "");
    let (wiki, page) = (WikiId([1; 16]), PageId([2; 16]));
    let big: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    for r in [
        record(
            PageKind::Markdown,
            "Home.md",
            b"---\ntitle: x\n---\n# Home\n",
        ),
        record(PageKind::Markdown, "empty.md", b""),
        record(PageKind::Attachment, "files/blob.bin", &big),
        record(PageKind::Index, "index", &[0xff; 1000]),
        record(PageKind::Markdown, "Ünïcode/页面 ✓.md", "Σ 🔐".as_bytes()),
    ] {
        let sealed = envelope::seal_page(&mut rng, &key, &wiki, &page, &r).unwrap();
        let header = envelope::read_header(&sealed).unwrap();
        assert_eq!((header.epoch, header.scope), (1, key.id()));
        assert_eq!(envelope::open_page(&key, &wiki, &page, &sealed).unwrap(), r);
        assert_eq!(
            envelope::open_page(&key, &wiki, &PageId([3; 16]), &sealed),
            Err(Error::Tampered { what: "page" })
        );
    }
    // Paths that are not wiki paths are refused before sealing.
    for bad in ["", "/abs.md", "a/../b.md", "a//b.md", "a\\b.md"] {
        let r = record(PageKind::Markdown, bad, b"x");
        assert!(matches!(
            envelope::seal_page(&mut rng, &key, &wiki, &page, &r),
            Err(Error::InvalidPath(_))
        ));
    }
    let too_big = record(
        PageKind::Attachment,
        "big.bin",
        &vec![0; envelope::MAX_CONTENT_LEN + 1],
    );
    assert!(matches!(
        envelope::seal_page(&mut rng, &key, &wiki, &page, &too_big),
        Err(Error::TooLarge { .. })
    ));
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use core_crypto::Error;
    use core_crypto::envelope::{self, MAX_TZ_OFFSET_MINUTES, PageKind, PageRecord, VersionNote};
    use core_crypto::identity::UserIdentity;
    use core_crypto::ids::{Digest32, PageId, ScopeId, WikiId};
    use core_crypto::kdf::KdfParams;
    use core_crypto::keyring::{Keyring, KeyringDraft, MemberKind, NewMember, Role};
    use core_crypto::padding::padme;
    use core_crypto::protector::{ProtectorKind, RecoveryKey, SealKey};
    use core_crypto::scope::EpochSecret;
    use core_crypto::sealed;
    use core_crypto::state::{Manifest, ManifestEntry, StateDraft, WikiState};
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 _.äöü页面✓-]{1,12}".prop_filter("not . or ..", |s| s != "." && s != "..")
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"))
    }

    fn kind() -> impl Strategy<Value = PageKind> {
        prop_oneof![
            Just(PageKind::Markdown),
            Just(PageKind::Attachment),
            Just(PageKind::Index),
            Just(PageKind::Settings)
        ]
    }

    fn page_record() -> impl Strategy<Value = PageRecord> {
        (
            kind(),
            path(),
            "[a-z0-9._-]{0,64}",
            any::<i64>(),
            note(),
            prop::collection::vec(any::<u8>(), 0..3000),
        )
            .prop_map(
                |(kind, path, author, written_at_ms, note, content)| PageRecord {
                    kind,
                    path,
                    author,
                    written_at_ms,
                    note,
                    content,
                },
            )
    }

    /// Empty (a version-1 record) or any mix of message, e-mail and time zone (version 2).
    fn note() -> impl Strategy<Value = VersionNote> {
        prop_oneof![
            Just(VersionNote::default()),
            (
                ".{0,300}",
                "[a-z0-9.@+-]{0,254}",
                prop::option::of(-MAX_TZ_OFFSET_MINUTES..=MAX_TZ_OFFSET_MINUTES),
            )
                .prop_map(|(message, author_email, tz_offset_minutes)| VersionNote {
                    message,
                    author_email,
                    tz_offset_minutes,
                }),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9._-]{0,63}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sealed_box(key: [u8; 32], nonce: [u8; 24], label in prop::collection::vec(any::<u8>(), 0..40),
                      ad in prop::collection::vec(any::<u8>(), 0..100),
                      plaintext in prop::collection::vec(any::<u8>(), 0..2000),
                      other_key: [u8; 32]) {
            let s = sealed::seal_with_nonce(&key, &nonce, &label, &ad, &plaintext);
            prop_assert_eq!(s.len(), plaintext.len() + sealed::OVERHEAD);
            let opened = sealed::open(&key, &label, &ad, &s, "t").unwrap();
            prop_assert_eq!(&opened[..], &plaintext[..]);
            if other_key != key {
                prop_assert_eq!(sealed::open(&other_key, &label, &ad, &s, "t"), Err(Error::WrongKey { what: "t" }));
            }
        }

        #[test]
        fn envelope(r in page_record(), secret: [u8; 32], epoch in 1u32..100, nonce: [u8; 24],
                    wiki: [u8; 16], page: [u8; 16]) {
            let key = EpochSecret::from_bytes(secret).derive_scope(epoch, "");
            let (wiki, page) = (WikiId(wiki), PageId(page));
            let sealed = envelope::seal_page_with_nonce(&nonce, &key, &wiki, &page, &r).unwrap();
            let note_len = if r.note.is_empty() {
                0
            } else {
                6 + r.note.author_email.len() + r.note.message.len()
            };
            let record_len = 17 + r.path.len() + r.author.len() + note_len + r.content.len();
            prop_assert_eq!(sealed.len(), envelope::HEADER_LEN + sealed::OVERHEAD + padme(record_len as u64) as usize);
            prop_assert_eq!(envelope::open_page(&key, &wiki, &page, &sealed).unwrap(), r);
        }

        #[test]
        fn kdf_params(m in KdfParams::FLOOR.m_kib..=KdfParams::CEILING.m_kib,
                      t in KdfParams::FLOOR.t..=KdfParams::CEILING.t,
                      p in KdfParams::FLOOR.p..=KdfParams::CEILING.p, salt: [u8; 16]) {
            let params = KdfParams { m_kib: m, t, p, salt };
            prop_assert_eq!(KdfParams::decode(&params.encode()), Ok(params));
        }

        #[test]
        fn kdf_params_outside_the_bounds_are_weak(m: u32, t: u32, p: u32, salt: [u8; 16]) {
            let (f, c) = (KdfParams::FLOOR, KdfParams::CEILING);
            let params = KdfParams { m_kib: m, t, p, salt };
            let inside = (f.m_kib..=c.m_kib).contains(&m) && (f.t..=c.t).contains(&t) && (f.p..=c.p).contains(&p);
            match KdfParams::decode(&params.encode()) {
                Ok(back) => { prop_assert!(inside); prop_assert_eq!(back, params); }
                Err(e) => { prop_assert!(!inside); prop_assert!(matches!(e, Error::WeakKdf(_))); }
            }
        }

        #[test]
        fn manifest(entries in prop::collection::btree_map(any::<[u8; 16]>(),
                        (1u32..10, any::<[u8; 16]>(), any::<u32>(), any::<[u8; 32]>()), 0..50)) {
            let mut m = Manifest::default();
            for (id, (epoch, scope, size, hash)) in entries {
                m.pages.insert(PageId(id), ManifestEntry { epoch, scope: ScopeId(scope), size, hash: Digest32(hash) });
            }
            let bytes = m.encode();
            prop_assert_eq!(bytes.len(), 9 + 72 * m.pages.len());
            prop_assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
            prop_assert_eq!(m.digest(), Digest32::of(&bytes));
        }

        #[test]
        fn state(seed: [u8; 32], wiki: [u8; 16], seq in 1u64.., epoch in 1u32.., keyring: [u8; 32],
                 manifest: [u8; 32], prev: [u8; 32]) {
            let signer = UserIdentity::make(&mut ChaCha20Rng::from_seed(seed));
            let draft = StateDraft { wiki: WikiId(wiki), seq, epoch, keyring: Digest32(keyring),
                                     manifest: Digest32(manifest), prev: Digest32(prev) };
            let state = draft.sign(&signer);
            let back = WikiState::decode(state.as_bytes()).unwrap();
            prop_assert_eq!(*back, draft);
            prop_assert_eq!(back.signer, signer.public().ed25519);
            prop_assert_eq!(back.hash(), Digest32::of(state.as_bytes()));
        }

        #[test]
        fn sealed_identity(x: [u8; 32], ed: [u8; 32], key: [u8; 32], nonce: [u8; 24], user in name(),
                           kind in prop_oneof![Just(ProtectorKind::Recovery), Just(ProtectorKind::Kms), Just(ProtectorKind::Passphrase)],
                           salt: [u8; 16]) {
            let id = UserIdentity::from_secrets(&x, &ed);
            let kdf = KdfParams { m_kib: KdfParams::FLOOR.m_kib, t: 2, p: 1, salt };
            let kdf = (kind == ProtectorKind::Passphrase).then_some(&kdf);
            let key = SealKey::from_bytes(key);
            let sealed = id.seal_with_nonce(&nonce, &key, kind, &user, kdf).unwrap();
            prop_assert_eq!(UserIdentity::sealed_kind(&sealed), Ok(kind));
            let back = UserIdentity::unseal(&sealed, &key, &user, kdf).unwrap();
            prop_assert_eq!(back.public(), id.public());
            prop_assert_eq!(&back.to_secret_bytes()[..], &id.to_secret_bytes()[..]);
        }

        #[test]
        fn recovery_key(bytes: [u8; 32]) {
            let rk = RecoveryKey::from_bytes(bytes);
            let text = rk.to_display();
            prop_assert_eq!(RecoveryKey::parse(&text), Ok(rk.clone()));
            prop_assert_eq!(RecoveryKey::parse(&text.to_lowercase()), Ok(rk));
        }

        #[test]
        fn padme_bounds(len in 0u64..(1 << 40)) {
            let p = padme(len);
            prop_assert!(p >= len);
            prop_assert!(p - len <= len / 8 + 1, "{} -> {}", len, p);
            prop_assert_eq!(padme(p), p);
        }

        // Decoders get arbitrary bytes: an error, never a panic, never an acceptance of garbage.
        #[test]
        fn decoders_reject_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            prop_assert!(Keyring::decode(&bytes).is_err());
            prop_assert!(WikiState::decode(&bytes).is_err());
            let _ = Manifest::decode(&bytes);
            let _ = KdfParams::decode(&bytes);
            let key = EpochSecret::from_bytes([1; 32]).derive_scope(1, "");
            prop_assert!(envelope::open_page(&key, &WikiId([0; 16]), &PageId([0; 16]), &bytes).is_err());
            prop_assert!(UserIdentity::unseal(&bytes, &SealKey::from_bytes([0; 32]), "a", None).is_err());
            prop_assert!(sealed::open(&[0; 32], b"l", b"", &bytes, "t").is_err());
        }

        // The same with a valid-looking prefix, so parsing goes deeper.
        #[test]
        fn decoders_reject_arbitrary_bodies(body in prop::collection::vec(any::<u8>(), 0..400), which in 0usize..4) {
            let magic: &[u8] = [&b"ZKKR\x01"[..], b"ZKST\x01", b"ZKMF\x01", b"ZKPG\x01"][which];
            let bytes = [magic, &body].concat();
            prop_assert!(Keyring::decode(&bytes).is_err());
            prop_assert!(WikiState::decode(&bytes).is_err());
            let _ = Manifest::decode(&bytes);
            let key = EpochSecret::from_bytes([1; 32]).derive_scope(1, "");
            prop_assert!(envelope::open_page(&key, &WikiId([0; 16]), &PageId([0; 16]), &bytes).is_err());
        }

        #[test]
        fn recovery_parse_never_panics(text in "\\PC{0,80}") {
            let _ = RecoveryKey::parse(&text);
        }
    }

    fn member_strategy() -> impl Strategy<Value = Vec<(Role, u8)>> {
        // (role, folder index: 0 = whole wiki, 1..=2 = a folder)
        prop::collection::vec(
            (
                prop_oneof![Just(Role::Owner), Just(Role::Writer), Just(Role::Reader)],
                0u8..3,
            ),
            0..5,
        )
    }

    proptest! {
        // Keyrings wrap with age (X25519 per member): fewer cases.
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn keyring(seed: [u8; 32], members in member_strategy(), remove_first in any::<bool>()) {
            let rng = &mut ChaCha20Rng::from_seed(seed);
            let owner = UserIdentity::make(rng);
            let genesis = KeyringDraft::genesis(rng, &owner, "owner", MemberKind::Person).unwrap().sign(rng, &owner).unwrap();
            genesis.verify_genesis().unwrap();
            let keys = genesis.unlock(&owner).unwrap();
            let mut draft = KeyringDraft::edit(&genesis, &keys).unwrap();
            let folders = ["", "research/", "team/private/"];
            let mut ids = Vec::new();
            for (i, (role, folder)) in members.iter().enumerate() {
                let id = UserIdentity::make(rng);
                draft.add_member(NewMember {
                    name: format!("m{i}"),
                    kind: if i % 2 == 0 { MemberKind::Person } else { MemberKind::Agent },
                    role: *role,
                    public: id.public(),
                    prefix: folders[*folder as usize].into(),
                }).unwrap();
                ids.push((id, *folder));
            }
            let mut k2 = draft.sign(rng, &owner).unwrap();
            genesis.verify_next(&k2).unwrap();
            prop_assert_eq!(Keyring::decode(k2.as_bytes()).unwrap().hash(), k2.hash());
            if remove_first && !ids.is_empty() {
                let keys = k2.unlock(&owner).unwrap();
                let mut draft = KeyringDraft::edit(&k2, &keys).unwrap();
                draft.remove_member("m0").unwrap();
                let k3 = draft.sign(rng, &owner).unwrap();
                k2.verify_next(&k3).unwrap();
                prop_assert_eq!(k3.epoch, 2);
                prop_assert!(matches!(k3.unlock(&ids[0].0), Err(Error::NoAccess(_))));
                ids.remove(0);
                k2 = k3;
            }
            let owner_keys = k2.unlock(&owner).unwrap();
            for (id, folder) in &ids {
                let keys = k2.unlock(id).unwrap();
                prop_assert_eq!(keys.epoch(), k2.epoch);
                let prefix = folders[*folder as usize];
                if prefix.is_empty() {
                    prop_assert_eq!(keys.prefix(), None);
                    prop_assert_eq!(keys.current_epoch_secret().unwrap(), owner_keys.current_epoch_secret().unwrap());
                } else {
                    prop_assert_eq!(keys.prefix(), Some(prefix));
                    let path = format!("{prefix}page.md");
                    prop_assert_eq!(keys.key_for_writing(&path).unwrap(), owner_keys.key_for_writing(&path).unwrap());
                    prop_assert!(matches!(keys.key_for_writing("elsewhere.md"), Err(Error::NoAccess(_))));
                }
            }
        }
    }
}
