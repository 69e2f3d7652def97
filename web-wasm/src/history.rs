//! Binding: the verified history of one page, for the history view.
//!
//! The versions come from the client core's one history walker ([`HistoryWalk`]): from the
//! session's verified head back, each older state is accepted only as the verified predecessor
//! of the one after it, so a server that rewrote history is refused here as in every other
//! client. JavaScript asks [`PageHistory::wanted`] which states to fetch (`/states?from=&to=`),
//! hands the answer to [`PageHistory::load`], and repeats; each version names the member whose
//! key signed it, and opening one ([`crate::session::WikiSession::open_version`]) checks the
//! envelope against the manifest entry that member signed.

use client::head::VerifiedHead;
use client::history::HistoryWalk;
use client::{Error, Result, display};
use core_crypto::ids::PageId;
use core_crypto::keyring::WikiKeys;
use core_crypto::state::ManifestEntry;
use wasm_bindgen::prelude::*;

use crate::js::{JsResult, js};
use crate::json::{self, Obj};
use crate::session::{batch_ending_at, parse_states, shown};

/// One version of a page: the verified step that made it.
#[derive(Debug, Clone)]
struct Version {
    seq: u64,
    page: PageId,
    /// The member whose key signed the state (escaped for display).
    signer: String,
    /// The signed manifest entry; `None` where the step removed the page.
    entry: Option<ManifestEntry>,
}

/// A page's history being walked back from a verified head; or, without a page, the wiki's:
/// every page version of every step (the changelog), zkwiki's own records left out.
#[wasm_bindgen]
pub struct PageHistory {
    page: Option<PageId>,
    /// Pages not to list in a changelog (the search index and settings records).
    skip: Vec<PageId>,
    walk: HistoryWalk<'static>,
    versions: Vec<Version>,
    limit: usize,
    /// The walk reached the state before the page existed (or the wiki's first state).
    complete: bool,
}

impl PageHistory {
    /// Starts at `head`, collecting up to `limit` versions of `page` before it stops to be
    /// asked for more.
    pub fn start(head: &VerifiedHead, page: PageId, limit: usize) -> Result<Self> {
        Self::walk(head, Some(page), Vec::new(), limit)
    }

    /// The wiki's recent changes from `head` back: up to `limit` page versions (more may
    /// come from the last step), leaving out the pages in `skip`.
    pub fn changes(head: &VerifiedHead, skip: Vec<PageId>, limit: usize) -> Result<Self> {
        Self::walk(head, None, skip, limit)
    }

    fn walk(
        head: &VerifiedHead,
        page: Option<PageId>,
        skip: Vec<PageId>,
        limit: usize,
    ) -> Result<Self> {
        let mut h = Self {
            page,
            skip,
            walk: HistoryWalk::new(head).into_owned(),
            versions: Vec::new(),
            limit: limit.max(1),
            complete: false,
        };
        h.finish_if_at_genesis()?;
        Ok(h)
    }

    fn record(&mut self, step: &client::head::Step) {
        let signer = shown(&step.signer_name);
        let changed = step.changed.iter().map(|(id, e)| (*id, Some(*e)));
        for (page, entry) in changed.chain(step.removed.iter().map(|id| (*id, None))) {
            let wanted = match self.page {
                Some(p) => page == p,
                None => !self.skip.contains(&page),
            };
            if wanted {
                self.versions.push(Version {
                    seq: step.seq,
                    page,
                    signer: signer.clone(),
                    entry,
                });
            }
        }
    }

    /// At the wiki's first state: the step that made it ends the walk.
    fn finish_if_at_genesis(&mut self) -> Result<()> {
        if !self.complete && self.walk.needed().is_none() {
            let step = self.walk.finish()?;
            self.record(&step);
            self.complete = true;
        }
        Ok(())
    }

    fn stopped(&self) -> bool {
        self.complete || self.versions.len() >= self.limit
    }

    /// Verifies fetched states (oldest first, as `/states` answers), walking back.
    pub fn push_states(&mut self, states: &[client::head::TrailPoint]) -> Result<()> {
        let mut pushed = 0;
        for (state, manifest) in states.iter().rev() {
            if self.stopped() || self.walk.needed().is_none() {
                break;
            }
            let step = self.walk.push(state, manifest)?;
            pushed += 1;
            self.record(&step);
            if let Some(page) = self.page
                && !self.walk.oldest().manifest.pages.contains_key(&page)
            {
                // The page did not exist before: its first version is found.
                self.complete = true;
            }
        }
        if pushed == 0 && !self.stopped() {
            return Err(Error::protocol("the states asked for are missing"));
        }
        self.finish_if_at_genesis()
    }

    /// Decrypts the version of `page` (the history's own page when `None`) made in step `seq`:
    /// the envelope must be the one that verified step signed.
    pub fn open(
        &self,
        keys: &WikiKeys,
        seq: u64,
        page: Option<PageId>,
        envelope: &[u8],
    ) -> Result<String> {
        let v = self
            .versions
            .iter()
            .find(|v| v.seq == seq && page.is_none_or(|p| p == v.page))
            .ok_or_else(|| {
                Error::not_found(format!("no version {seq} of this page was verified"))
            })?;
        let entry = v
            .entry
            .ok_or_else(|| Error::not_found(format!("the page was removed in version {seq}")))?;
        let (record, _) = client::history::open_version(keys, &v.page, &entry, envelope)?;
        let claim = (shown(&record.author) != v.signer).then(|| shown(&record.author));
        let kind = record.kind.name();
        Ok(Obj::new()
            .num("seq", seq)
            .str("signer", &v.signer)
            .str("path", &record.path)
            .str("shown_path", &shown(&record.path))
            .str("author", &shown(&record.author))
            .opt_str("claim", claim.as_deref())
            .num("written_at", record.written_at_ms)
            .str("kind", kind)
            .str(
                "message",
                &display::escape_multiline(record.note.message.trim()),
            )
            .str("email", &shown(&record.note.author_email))
            .str("text", record.markdown().unwrap_or_default())
            .finish())
    }
}

#[wasm_bindgen]
impl PageHistory {
    /// The states to fetch next (`/states?from=&to=`): `{"from", "to"}`, or `null` when the
    /// page's first version was found or `limit` versions were (see [`PageHistory::more`]).
    pub fn wanted(&self) -> String {
        match self.walk.needed().filter(|_| !self.stopped()) {
            Some(to) => {
                let r = batch_ending_at(to);
                Obj::new()
                    .num("from", r.start())
                    .num("to", r.end())
                    .finish()
            }
            None => "null".to_owned(),
        }
    }

    /// Verifies a `/states` answer for [`PageHistory::wanted`]'s range, newest first, each state
    /// the verified predecessor of the one after it. Throws IntegrityError when one is not (the
    /// versions verified so far stay).
    pub fn load(&mut self, states_json: &str) -> JsResult<()> {
        js(parse_states(states_json).and_then(|states| self.push_states(&states)))
    }

    /// Asks for `n` more versions after the walk stopped at its limit.
    pub fn more(&mut self, n: u32) {
        self.limit = self.versions.len() + n.max(1) as usize;
    }

    /// The versions verified so far, newest first: `{versions: [{seq, signer, hash, deleted}],
    /// complete}`; `hash` is the envelope to fetch (`/blobs/{hash}`), null for a removal;
    /// `complete` says the page's first version is among them.
    pub fn versions(&self) -> String {
        let list = json::array(self.versions.iter().map(|v| {
            Obj::new()
                .num("seq", v.seq)
                .str("page", &v.page.to_hex())
                .str("signer", &v.signer)
                .opt_str("hash", v.entry.map(|e| e.hash.to_hex()).as_deref())
                .bool("deleted", v.entry.is_none())
                .finish()
        }));
        Obj::new()
            .raw("versions", &list)
            .bool("complete", self.complete)
            .finish()
    }
}
