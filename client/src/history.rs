//! The one history walker: from a verified head back towards the wiki's first state, each older
//! state is accepted only as the verified predecessor of the one after it. What a client shows
//! of history (`zkwiki log`, `git log -p` through `zkwiki textconv`, `decrypt --history`, the
//! browser's history view, the MCP `page_history` tool) comes from here, so a server that
//! rewrote history is caught by every client the same way.
//!
//! The walk is pull-based: [`HistoryWalk::needed`] names the next older state to fetch (from
//! git or HTTP), [`HistoryWalk::push`] verifies it. Only the oldest verified point is kept.

use std::borrow::Cow;

use core_crypto::envelope::PageRecord;
use core_crypto::ids::PageId;
use core_crypto::keyring::{Keyring, WikiKeys};
use core_crypto::state::{Manifest, ManifestEntry, WikiState};

use crate::error::{Error, Result};
use crate::head::{Step, VerifiedHead, keyring_of, step_of, verify_step};

/// One verified state of history and its manifest.
#[derive(Clone, Debug)]
pub struct Point {
    /// The signed state.
    pub state: WikiState,
    /// The manifest it signs.
    pub manifest: Manifest,
}

impl Point {
    /// The sequence.
    pub fn seq(&self) -> u64 {
        self.state.seq
    }

    /// Decrypts a page as it was at this point: the envelope must be the one this point's
    /// signed manifest lists. Returns the record and the folder prefix of its key.
    pub fn open<'k>(
        &self,
        keys: &'k WikiKeys,
        page: &PageId,
        envelope: &[u8],
    ) -> Result<(PageRecord, &'k str)> {
        core_crypto::snapshot::open_listed(&self.manifest, keys, page, envelope)
            .map_err(|e| Error::from(e).on_page(*page))
    }
}

/// A verified walk backwards from a head.
#[derive(Debug)]
pub struct HistoryWalk<'h> {
    chain: Cow<'h, [Keyring]>,
    oldest: Point,
    at_genesis: bool,
}

impl<'h> HistoryWalk<'h> {
    /// Starts at a verified head.
    pub fn new(head: &'h VerifiedHead) -> Self {
        let snap = head.snapshot();
        Self {
            chain: Cow::Borrowed(head.chain()),
            oldest: Point {
                state: snap.state.clone(),
                manifest: snap.manifest.clone(),
            },
            at_genesis: false,
        }
    }

    /// The same walk holding its own copy of the keyring chain, so a driver can keep it across
    /// asynchronous fetches (the browser) while the head it started from moves on.
    pub fn into_owned(self) -> HistoryWalk<'static> {
        HistoryWalk {
            chain: Cow::Owned(self.chain.into_owned()),
            oldest: self.oldest,
            at_genesis: self.at_genesis,
        }
    }

    /// The oldest point verified so far (the head at first).
    pub fn oldest(&self) -> &Point {
        &self.oldest
    }

    /// The sequence of the next older state to fetch, or `None` once the first state was
    /// reached (call [`Self::finish`] there).
    pub fn needed(&self) -> Option<u64> {
        (self.oldest.state.seq > 1).then(|| self.oldest.state.seq - 1)
    }

    /// Verifies the state before the oldest point and steps back to it. Returns the step the
    /// (previously) oldest state made.
    pub fn push(&mut self, state: &[u8], manifest: &[u8]) -> Result<Step> {
        let older = Point {
            state: WikiState::decode(state)?,
            manifest: Manifest::decode(manifest)?,
        };
        let Some(wanted) = self.needed() else {
            return Err(Error::integrity(
                "history: a state older than the wiki's first one",
            ));
        };
        if older.state.seq != wanted {
            return Err(Error::integrity(format!(
                "history: the state before {} should be state {wanted}, but it is state {} (the history was rewritten)",
                self.oldest.state.seq, older.state.seq
            )));
        }
        let step = verify_step(
            &self.chain,
            &older.state,
            &older.manifest,
            &self.oldest.state,
            &self.oldest.manifest,
        )
        .map_err(|e| e.context("history"))?;
        self.oldest = older;
        Ok(step)
    }

    /// At the first state (sequence 1): checks it is a valid first state under the genesis
    /// keyring and returns the step that created it (everything in it is new).
    pub fn finish(&mut self) -> Result<Step> {
        if self.needed().is_some() || self.at_genesis {
            return Err(Error::integrity("history: not at the wiki's first state"));
        }
        let state = &self.oldest.state;
        let (index, keyring) = keyring_of(&self.chain, state)?;
        if index != 0 {
            return Err(Error::integrity(
                "history: the first state is not written under the genesis keyring",
            ));
        }
        state
            .verify(keyring, &self.oldest.manifest, None)
            .map_err(|e| Error::from(e).context("history: first state"))?;
        self.at_genesis = true;
        Ok(step_of(
            &Manifest::default(),
            state,
            &self.oldest.manifest,
            keyring,
            true,
        ))
    }

    /// The keyring version a point's state names.
    pub fn keyring_of(&self, point: &Point) -> Result<&Keyring> {
        keyring_of(&self.chain, &point.state).map(|(_, k)| k)
    }

    /// The member name of the key that signed a point.
    pub fn signer_name(&self, point: &Point) -> Option<String> {
        self.keyring_of(point)
            .ok()?
            .member_by_signing_key(&point.state.signer)
            .map(|m| m.name.clone())
    }
}

/// Decrypts a page version a verified [`Step`] introduced (its `changed` entry): the envelope
/// must be exactly that signed entry. Returns the record and its key's folder prefix.
pub fn open_version<'k>(
    keys: &'k WikiKeys,
    page: &PageId,
    entry: &ManifestEntry,
    envelope: &[u8],
) -> Result<(PageRecord, &'k str)> {
    let mut one = Manifest::default();
    one.pages.insert(*page, *entry);
    core_crypto::snapshot::open_listed(&one, keys, page, envelope)
        .map_err(|e| Error::from(e).on_page(*page))
}

/// Who introduced a page version: the verified step in which the page got this manifest entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The state's sequence.
    pub seq: u64,
    /// The member name of its signer.
    pub signer: String,
    /// The signer's Ed25519 key.
    pub signer_key: [u8; 32],
}

impl Provenance {
    /// From a step that changed the page.
    pub fn of(step: &Step) -> Self {
        Self {
            seq: step.seq,
            signer: step.signer_name.clone(),
            signer_key: step.signer,
        }
    }
}

/// Whether `step` is the one that gave `page` the entry `entry`.
pub fn introduces(step: &Step, page: &PageId, entry: &ManifestEntry) -> bool {
    step.changed.iter().any(|(id, e)| id == page && e == entry)
}
