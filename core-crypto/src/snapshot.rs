//! A verified view of a wiki, and the write batches built on it: the client logic the CLI, the
//! browser and the MCP server share. Pure: the caller fetches bytes (HTTP, a git clone) and hands
//! them in.
//!
//! Reading: [`Snapshot::verify`] checks the keyring chain from its genesis, the state against the
//! latest keyring, the manifest against the state, and both sequences against what this client saw
//! before ([`SeenRecord`]); [`Snapshot::open_page`] then checks each envelope against the signed
//! manifest before decrypting it. Writing: [`Snapshot::begin_write`] → [`WriteBatch::put`] /
//! [`WriteBatch::remove`] → [`WriteBatch::finish`] yields the blobs, manifest and signed state to
//! send, already checked against the same rules the server and other clients apply.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRngCore;

use crate::envelope::{self, EnvelopeHeader, PageRecord};
use crate::identity::UserIdentity;
use crate::ids::{Digest32, PageId};
use crate::keyring::{self, Keyring, Seen, WikiKeys};
use crate::state::{Manifest, ManifestEntry, StateDraft, WikiState};
use crate::{Error, Result};

/// What a client remembers per wiki between sessions, to detect rollback and forks.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SeenRecord {
    /// Latest keyring version seen.
    pub keyring: Option<Seen>,
    /// Latest state seen.
    pub state: Option<Seen>,
}

/// A keyring chain, state and manifest that passed every check.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The latest keyring version.
    pub keyring: Keyring,
    /// The current state.
    pub state: WikiState,
    /// The manifest the state signs.
    pub manifest: Manifest,
}

impl Snapshot {
    /// Verifies a whole fetched wiki head. `keyring_versions` is the full chain, genesis first.
    pub fn verify<B: AsRef<[u8]>>(
        keyring_versions: &[B],
        state: &[u8],
        manifest: &[u8],
        seen: &SeenRecord,
    ) -> Result<Self> {
        let keyring = keyring::verify_chain(keyring_versions.iter().map(AsRef::as_ref))?;
        keyring.check_fresh(seen.keyring)?;
        // The whole chain is here, so the version this client saw must be in it, unchanged:
        // otherwise the server now shows a different keyring history (a fork).
        if let Some(s) = seen.keyring {
            let at_seen = usize::try_from(s.seq.saturating_sub(1))
                .ok()
                .and_then(|i| keyring_versions.get(i));
            if at_seen.is_some_and(|v| Digest32::of(v.as_ref()) != s.hash) {
                return Err(Error::Fork {
                    what: "keyring",
                    seq: s.seq,
                });
            }
        }
        let state = WikiState::decode(state)?;
        let manifest = Manifest::decode(manifest)?;
        state.verify(&keyring, &manifest, seen.state)?;
        Ok(Self {
            keyring,
            state,
            manifest,
        })
    }

    /// Builds a snapshot of a wiki just created (genesis keyring, first state, empty manifest).
    pub fn genesis(keyring: Keyring, creator: &UserIdentity) -> Result<Self> {
        keyring.verify_genesis()?;
        let manifest = Manifest::default();
        let state = StateDraft::first(&keyring).sign(creator);
        state.verify(&keyring, &manifest, None)?;
        Ok(Self {
            keyring,
            state,
            manifest,
        })
    }

    /// What to remember after accepting this snapshot.
    pub fn seen_record(&self) -> SeenRecord {
        SeenRecord {
            keyring: Some(Seen {
                seq: self.keyring.seq,
                hash: self.keyring.hash(),
            }),
            state: Some(self.state.seen()),
        }
    }

    /// Checks an envelope against the signed manifest, then decrypts it.
    pub fn open_page(&self, keys: &WikiKeys, page: &PageId, envelope: &[u8]) -> Result<PageRecord> {
        open_listed(&self.manifest, keys, page, envelope).map(|(record, _)| record)
    }

    /// Starts a write on top of this snapshot.
    pub fn begin_write(&self) -> WriteBatch<'_> {
        WriteBatch {
            base: self,
            manifest: self.manifest.clone(),
            blobs: Vec::new(),
            keyring: None,
        }
    }
}

/// The one way to decrypt a page: the envelope must be exactly the one `manifest` (a signed
/// manifest, current or historical) lists for `page`, and `keys` must hold its epoch and scope.
/// Returns the record and the folder prefix of the key that opened it (`""` for the whole
/// wiki), which a reader checks the record's path against.
pub fn open_listed<'k>(
    manifest: &Manifest,
    keys: &'k WikiKeys,
    page: &PageId,
    envelope: &[u8],
) -> Result<(PageRecord, &'k str)> {
    let entry = manifest
        .pages
        .get(page)
        .ok_or(Error::Mismatch("page is not in the signed manifest"))?;
    let header = entry.check_envelope(envelope)?;
    open_checked(keys, page, &header, envelope)
}

/// [`open_listed`] for an envelope already checked against its manifest entry
/// ([`ManifestEntry::check_envelope`](crate::state::ManifestEntry::check_envelope) gave
/// `header`), so a large page is not hashed twice.
pub fn open_checked<'k>(
    keys: &'k WikiKeys,
    page: &PageId,
    header: &EnvelopeHeader,
    envelope: &[u8],
) -> Result<(PageRecord, &'k str)> {
    let (key, prefix) = keys.scope_for(header)?;
    let record = envelope::open_page(key, &keys.wiki(), page, envelope)?;
    Ok((record, prefix))
}

/// Changes being prepared on top of a [`Snapshot`].
#[derive(Debug)]
pub struct WriteBatch<'a> {
    base: &'a Snapshot,
    manifest: Manifest,
    blobs: Vec<(PageId, Vec<u8>)>,
    keyring: Option<Keyring>,
}

/// A signed write, ready to send as one commit.
#[derive(Clone, Debug)]
pub struct PreparedCommit {
    /// The new signed state.
    pub state: WikiState,
    /// The manifest it signs.
    pub manifest: Manifest,
    /// The new envelopes, one per new or changed page.
    pub blobs: Vec<Vec<u8>>,
    /// A new keyring version, when the write changes membership.
    pub keyring: Option<Keyring>,
}

impl PreparedCommit {
    /// The snapshot the wiki will have once this commit is accepted.
    pub fn into_snapshot(self, base: &Snapshot) -> Snapshot {
        Snapshot {
            keyring: self.keyring.unwrap_or_else(|| base.keyring.clone()),
            state: self.state,
            manifest: self.manifest,
        }
    }
}

impl WriteBatch<'_> {
    /// Encrypts and stages a new version of a page (new or existing id) under the current epoch.
    pub fn put(
        &mut self,
        rng: &mut impl CryptoRngCore,
        keys: &WikiKeys,
        page: PageId,
        record: &PageRecord,
    ) -> Result<Digest32> {
        let key = keys.key_for_writing(&record.path)?;
        let sealed = envelope::seal_page(rng, &key, &self.base.keyring.wiki, &page, record)?;
        let entry = ManifestEntry::for_envelope(&sealed)?;
        self.blobs.retain(|(id, _)| *id != page);
        self.blobs.push((page, sealed));
        self.manifest.pages.insert(page, entry);
        Ok(entry.hash)
    }

    /// Encrypts and stages one of zkwiki's own records under `key`: a search index (the scope
    /// key of the scope it covers) or the wiki's settings (the whole-wiki scope key). They live
    /// in a scope by their derived page id, not by their path.
    pub fn put_index(
        &mut self,
        rng: &mut impl CryptoRngCore,
        key: &crate::scope::ScopeKey,
        page: PageId,
        record: &PageRecord,
    ) -> Result<Digest32> {
        let expected = match record.kind {
            crate::envelope::PageKind::Index => key.derive_index_page_id(),
            crate::envelope::PageKind::Settings => key.derive_settings_page_id(),
            _ => return Err(Error::Invalid("not one of zkwiki's own records")),
        };
        if expected != page {
            return Err(Error::Invalid("not this scope's record of that kind"));
        }
        let sealed = envelope::seal_page(rng, key, &self.base.keyring.wiki, &page, record)?;
        let entry = ManifestEntry::for_envelope(&sealed)?;
        self.blobs.retain(|(id, _)| *id != page);
        self.blobs.push((page, sealed));
        self.manifest.pages.insert(page, entry);
        Ok(entry.hash)
    }

    /// Stages an already-sealed envelope (re-sending a blob, or an import).
    pub fn put_sealed(&mut self, page: PageId, envelope_bytes: Vec<u8>) -> Result<()> {
        let entry = ManifestEntry::for_envelope(&envelope_bytes)?;
        self.blobs.retain(|(id, _)| *id != page);
        self.blobs.push((page, envelope_bytes));
        self.manifest.pages.insert(page, entry);
        Ok(())
    }

    /// Stages the removal of a page.
    pub fn remove(&mut self, page: &PageId) -> Result<()> {
        self.blobs.retain(|(id, _)| id != page);
        self.manifest
            .pages
            .remove(page)
            .map(|_| ())
            .ok_or(Error::Invalid("no such page"))
    }

    /// Stages a new keyring version (signed by an owner) to commit with this write.
    pub fn set_keyring(&mut self, next: Keyring) -> Result<()> {
        self.base.keyring.verify_next(&next)?;
        self.keyring = Some(next);
        Ok(())
    }

    /// Whether anything is staged.
    pub fn is_empty(&self) -> bool {
        self.keyring.is_none() && self.manifest == self.base.manifest
    }

    /// Signs the new state and checks the whole transition as other clients will.
    pub fn finish(self, signer: &UserIdentity) -> Result<PreparedCommit> {
        let keyring = self.keyring.as_ref().unwrap_or(&self.base.keyring);
        let state = StateDraft::next(&self.base.state, keyring, &self.manifest).sign(signer);
        self.base
            .state
            .verify_transition(&self.base.manifest, &state, &self.manifest, keyring)?;
        let blobs = self
            .blobs
            .into_iter()
            .filter(|(id, _)| self.manifest.pages.contains_key(id))
            .map(|(_, b)| b)
            .collect();
        Ok(PreparedCommit {
            state,
            manifest: self.manifest,
            blobs,
            keyring: self.keyring,
        })
    }
}

/// A commit request that passed [`check_commit`]: what to store.
#[derive(Clone, Debug)]
pub struct AcceptedCommit {
    /// The new state.
    pub state: WikiState,
    /// Its manifest.
    pub manifest: Manifest,
    /// The new keyring version, if any.
    pub keyring: Option<Keyring>,
    /// The envelope of each new or changed page.
    pub blobs: Vec<(PageId, Digest32, Vec<u8>)>,
    /// Pages the commit removes.
    pub removed: Vec<PageId>,
}

/// Why [`check_commit`] refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitRefusal {
    /// The state does not extend the head (someone else committed first): fetch and retry.
    Conflict,
    /// The request breaks a rule.
    Invalid(Error),
}

impl From<Error> for CommitRefusal {
    fn from(e: Error) -> Self {
        Self::Invalid(e)
    }
}

/// The one acceptance rule for a commit on top of a head (the server applies it as a first line;
/// clients check every transition again when reading). `next` is the decoded new state (its
/// signature verified). The state extends the head (else
/// [`CommitRefusal::Conflict`]); a keyring, if sent, is a valid successor signed by an owner;
/// the transition verifies (`WikiState::verify_transition`); every new or changed manifest
/// entry has exactly one blob whose hash, size and header match, and no blob is extra.
pub fn check_commit(
    head_keyring: &Keyring,
    head_state: &WikiState,
    head_manifest: &Manifest,
    next: WikiState,
    manifest: &[u8],
    blobs: Vec<Vec<u8>>,
    keyring: Option<&[u8]>,
) -> core::result::Result<AcceptedCommit, CommitRefusal> {
    if next.wiki != head_state.wiki {
        return Err(Error::Mismatch("the state belongs to another wiki").into());
    }
    if next.seq != head_state.seq + 1 || next.prev != head_state.hash() {
        return Err(CommitRefusal::Conflict);
    }
    let new_keyring = match keyring {
        Some(bytes) => {
            let k = Keyring::decode(bytes)?;
            head_keyring.verify_next(&k)?;
            Some(k)
        }
        None => None,
    };
    let keyring = new_keyring.as_ref().unwrap_or(head_keyring);
    let next_manifest = Manifest::decode(manifest)?;
    head_state.verify_transition(head_manifest, &next, &next_manifest, keyring)?;
    let mut by_hash: BTreeMap<Digest32, Vec<u8>> = BTreeMap::new();
    for blob in blobs {
        if by_hash.insert(Digest32::of(&blob), blob).is_some() {
            return Err(Error::Invalid("the same blob was sent twice").into());
        }
    }
    let mut changed = Vec::new();
    let mut used = BTreeSet::new();
    for (id, entry) in &next_manifest.pages {
        if head_manifest.pages.get(id) == Some(entry) {
            continue;
        }
        let blob = by_hash.get(&entry.hash).ok_or(Error::Mismatch(
            "a page is new or changed in the manifest but no blob has its hash",
        ))?;
        entry.check_envelope(blob)?;
        used.insert(entry.hash);
        changed.push((*id, entry.hash));
    }
    if used.len() != by_hash.len() {
        return Err(Error::Invalid("a blob matches no new or changed manifest entry").into());
    }
    let removed = head_manifest
        .pages
        .keys()
        .filter(|id| !next_manifest.pages.contains_key(id))
        .copied()
        .collect();
    let blobs = changed
        .into_iter()
        .filter_map(|(id, hash)| by_hash.get(&hash).map(|b| (id, hash, b.clone())))
        .collect();
    Ok(AcceptedCommit {
        state: next,
        manifest: next_manifest,
        keyring: new_keyring,
        blobs,
        removed,
    })
}
