//! The `identities` branch of every wiki repository: each member's sealed identities (exactly
//! what the server hands that member at login), so a clone plus the passphrase or the recovery
//! key opens the wiki offline, forever (`docs/format.md`, "Sealed identities in a clone").
//!
//! Derived from the accounts of the keyring's members (agents have no account and no file):
//! rewritten when a wiki is created, when its keyring changes, when a member replaces a
//! protector, and at start-up. Nothing here opens without the member's own secret; what it
//! lets a fellow member do (try to guess a passphrase offline, against Argon2id) is in the
//! threat model.

use client::keyfile::{KmsSealed, MemberIdentity, SealedBy, member_file};
use client::wire::b64;
use core_crypto::ids::WikiId;
use core_crypto::keyring::Keyring;

use crate::Inner;
use crate::db::Db;
use crate::error::AppResult;

/// The member identity files for a keyring's members that have accounts here.
pub fn files_for(db: &Db, keyring: &Keyring) -> AppResult<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for m in &keyring.members {
        let Some(user) = db.user_by_key(&m.public.ed25519)? else {
            continue;
        };
        if user.name != m.name || user.x25519 != m.public.x25519 {
            // The keyring names this key under another name (or another X25519 key): the file's
            // name and the sealed identity's bound name must agree, so leave it out.
            continue;
        }
        // A protector's sealed identity and, for a passphrase, its KDF parameters.
        let sealed = |kind: &str| {
            db.protector(&user.name, kind)
                .map(|p| p.map(|p| (p.sealed, p.kdf)))
        };
        let file = MemberIdentity {
            zkwiki_member_identity: client::keyfile::MEMBER_IDENTITY_VERSION,
            user: user.name.clone(),
            x25519: b64(&user.x25519),
            ed25519: b64(&user.ed25519),
            passphrase: sealed("passphrase")?.map(|(s, kdf)| SealedBy {
                kdf: kdf.map(|k| b64(&k)),
                sealed_identity: b64(&s),
            }),
            recovery: sealed("recovery")?.map(|(s, _)| SealedBy {
                kdf: None,
                sealed_identity: b64(&s),
            }),
            kms: sealed("kms")?.and_then(|(s, kdf)| {
                kdf.map(|k| KmsSealed {
                    wrapped_key: b64(&k),
                    sealed_identity: b64(&s),
                })
            }),
        };
        out.push((member_file(&user.name), file.to_json()));
    }
    Ok(out)
}

impl Inner {
    /// Rewrites a wiki's identities branch from its current keyring (errors are logged: the
    /// branch is derived data, rebuilt at the next change or start-up).
    pub(crate) fn write_identities(&self, wiki: WikiId) {
        let result = self.store.wiki(wiki).and_then(|w| {
            let files = || {
                let head = w.head()?;
                files_for(&self.db, &head.keyring)
            };
            w.write_identities(&self.store, &files)
        });
        if let Err(e) = result {
            tracing::error!(wiki = %wiki, error = %e, "identities branch not updated");
        }
    }
}
