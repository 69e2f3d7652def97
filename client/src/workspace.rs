//! One open wiki on a client: the verified head, the member's keys, the page catalog, the pages
//! decrypted so far, and what is known of who wrote them. The CLI, the MCP server and the browser
//! all drive this type; they only move bytes in and show what comes out.
//!
//! Reading is a pull loop: [`Workspace::wanted`] names the envelopes to fetch (the search index
//! first, then pages the index does not describe as they are, then pages whose indexed claims
//! must be confirmed), [`Workspace::load`] checks each against the signed manifest and decrypts
//! it. A driver that holds every blob (a git clone) runs the loop to the end; the browser runs it
//! as pages are needed.
//!
//! Two kinds of failure are kept apart:
//! - **the server's**: an envelope that is not the one the signed manifest lists (modified,
//!   swapped, missing). Recorded in [`Workspace::failures`]; a driver treats it as an integrity
//!   error of the whole read.
//! - **a member's**: a page whose envelope is the signed one but whose content breaks the rules
//!   (undecryptable, malformed, a path the policy refuses, a path outside the folder of the key
//!   that wrote it, a path that clashes with an earlier page). It is a signed fact, so the page
//!   is *isolated* ([`Workspace::isolated`]): left out of the catalog, reported with the member
//!   who signed it ([`Workspace::unattributed`] asks the driver to walk history to find them),
//!   and removable by a writer; the rest of the wiki stays usable.

mod catalog;
mod draft;
mod edit;
mod members;
mod settings;

use std::collections::{BTreeMap, BTreeSet};

use core_crypto::envelope::{EnvelopeHeader, PageKind, PageRecord};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::index::{IndexedPage, SearchIndex};
use core_crypto::keyring::{Role, WikiKeys};
use core_crypto::snapshot::{PreparedCommit, SeenRecord, Snapshot};
use core_crypto::state::ManifestEntry;

use crate::error::{Error, Result};
use crate::head::{Step, TrailPoint, VerifiedHead};
use crate::history::Provenance;

pub use catalog::record_problem;
pub use draft::{Draft, IndexWrite};
pub use edit::LinkUpdate;
pub use members::{MemberView, RevocationReport, folder_prefix};
pub use settings::{ImportMark, WikiSettings};

/// A page version that passed the manifest check and the record rules, decrypted.
#[derive(Debug, Clone)]
pub struct Page {
    /// The plaintext record.
    pub record: PageRecord,
    /// SHA-256 of its envelope (what the signed manifest lists).
    pub hash: Digest32,
}

/// A page a member wrote against the rules: not shown, not exported, removable by a writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolated {
    /// What is wrong with it.
    pub problem: String,
    /// The path its record claims, when it could be read (untrusted: escape before showing).
    pub path: Option<String>,
    /// Who signed the state that wrote it, once known.
    pub written: Option<Provenance>,
}

impl Isolated {
    /// One line for people: "unreadable page written by mallory at seq 7: …".
    pub fn describe(&self, page: &PageId) -> String {
        let who = match &self.written {
            Some(p) => format!(
                "written by {} at seq {}",
                crate::display::escape(&p.signer),
                p.seq
            ),
            None => "written by an unknown member (history not checked yet)".to_owned(),
        };
        let path = self
            .path
            .as_deref()
            .map(|p| format!(" {:?}", crate::display::escape(p)))
            .unwrap_or_default();
        format!("unreadable page {page}{path} {who}: {}", self.problem)
    }
}

/// A write signed and ready to send, with what it does to the local view once accepted.
#[derive(Debug)]
pub struct Pending {
    base_state: Digest32,
    commit: PreparedCommit,
    written: Vec<(PageId, PageRecord)>,
    removed: Vec<PageId>,
    catalog: SearchIndex,
    /// Whether the commit stores this key's index (a large wiki's index may lag).
    index_written: bool,
    /// New settings, when the write changes them.
    settings: Option<WikiSettings>,
    /// The page the write is about, if one.
    pub page: Option<PageId>,
}

impl Pending {
    /// The signed commit.
    pub fn commit(&self) -> &PreparedCommit {
        &self.commit
    }

    /// The `POST /commits` body.
    pub fn body(&self) -> crate::wire::CommitRequest {
        crate::wire::CommitRequest::of(&self.commit)
    }
}

/// One open wiki.
pub struct Workspace {
    me: UserIdentity,
    my_name: String,
    head: VerifiedHead,
    keys: WikiKeys,
    /// Paths, metadata and search terms of every live page (from the index, kept fresh).
    catalog: SearchIndex,
    /// Catalog entries confirmed by opening their record (the rest are the index's claims).
    confirmed: BTreeSet<PageId>,
    /// Catalog entries whose indexed claims must be confirmed by opening them.
    suspect: BTreeSet<PageId>,
    /// Index pages in the manifest (any epoch or scope these keys reach).
    index_pages: BTreeSet<PageId>,
    index_read: bool,
    /// Settings records in the manifest (any epoch), and the settings read.
    settings_pages: BTreeSet<PageId>,
    settings: Option<WikiSettings>,
    /// The envelope the settings were read from (a newer one is read again).
    settings_version: Option<Digest32>,
    /// The stored index at this key's index id, as read or written here: its envelope hash and
    /// the page versions it describes (how far it lags decides when a write rewrites it).
    stored_index: Option<(Digest32, BTreeMap<PageId, Digest32>)>,
    /// Decrypted current page versions.
    pages: BTreeMap<PageId, Page>,
    /// Server faults: envelopes that are not what the manifest lists.
    failed: BTreeMap<PageId, String>,
    /// Pages a member wrote against the rules.
    isolated: BTreeMap<PageId, Isolated>,
    /// Pages isolated only until history says which of a clashing group came first.
    clash_pending: BTreeSet<PageId>,
    /// Who wrote the current version of pages, where a verified step said so.
    provenance: BTreeMap<PageId, Provenance>,
    /// Bumped whenever the set of live paths changes (for a renderer's link cache).
    generation: u64,
}

impl core::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Workspace({}, seq {}, {} pages)",
            self.wiki(),
            self.head.seq(),
            self.catalog.pages().len()
        )
    }
}

fn copy_identity(id: &UserIdentity) -> Result<UserIdentity> {
    Ok(UserIdentity::from_secret_bytes(
        id.to_secret_bytes().as_ref(),
    )?)
}

/// The page versions an index describes.
fn page_versions(index: &SearchIndex) -> BTreeMap<PageId, Digest32> {
    index.pages().iter().map(|(id, p)| (*id, p.hash)).collect()
}

impl Workspace {
    /// Opens a verified head with `me` (whose member name in this wiki is `my_name`). `steps` are
    /// the transitions verified on the way (they say who wrote what).
    pub fn open(
        me: &UserIdentity,
        my_name: &str,
        head: VerifiedHead,
        steps: &[Step],
    ) -> Result<Self> {
        let keys = head.snapshot().keyring.unlock(me)?;
        let mut ws = Self {
            me: copy_identity(me)?,
            my_name: my_name.to_owned(),
            head,
            keys,
            catalog: SearchIndex::new(),
            confirmed: BTreeSet::new(),
            suspect: BTreeSet::new(),
            index_pages: BTreeSet::new(),
            index_read: false,
            settings_pages: BTreeSet::new(),
            settings: None,
            settings_version: None,
            stored_index: None,
            pages: BTreeMap::new(),
            failed: BTreeMap::new(),
            isolated: BTreeMap::new(),
            clash_pending: BTreeSet::new(),
            provenance: BTreeMap::new(),
            generation: 0,
        };
        ws.find_index_pages();
        ws.learn(steps);
        Ok(ws)
    }

    /// Verifies a fetched head (see [`VerifiedHead::verify`]) and opens it.
    #[allow(clippy::too_many_arguments)] // who opens it, then the server's answer as it came
    pub fn verify_and_open<B: AsRef<[u8]>>(
        me: &UserIdentity,
        my_name: &str,
        wiki: WikiId,
        keyring_versions: &[B],
        state: &[u8],
        manifest: &[u8],
        seen: &SeenRecord,
        trail: &[TrailPoint],
    ) -> Result<Self> {
        let (head, steps) = VerifiedHead::verify(keyring_versions, state, manifest, seen, trail)?;
        if head.snapshot().keyring.wiki != wiki {
            return Err(Error::integrity(
                "the server answered with another wiki's keyring",
            ));
        }
        Self::open(me, my_name, head, &steps)
    }

    /// Checks a newer head (after a 409, or a poll): see [`VerifiedHead::advance`]. Returns the
    /// pages whose content changed or disappeared (dropped from memory).
    pub fn advance<B: AsRef<[u8]>>(
        &mut self,
        newer_keyrings: &[B],
        state: &[u8],
        manifest: &[u8],
        trail: &[TrailPoint],
    ) -> Result<Vec<PageId>> {
        let (head, steps) = self.head.advance(newer_keyrings, state, manifest, trail)?;
        self.adopt_verified(head, &steps)
    }

    /// Installs a head that [`VerifiedHead::advance`] verified from this workspace's head, with
    /// its steps (for a driver that checks the new head with the wiki's witnesses before
    /// adopting it). Returns the pages whose content changed or disappeared.
    pub fn adopt_verified(&mut self, head: VerifiedHead, steps: &[Step]) -> Result<Vec<PageId>> {
        if head.snapshot().keyring.wiki != self.wiki() || head.seq() < self.head.seq() {
            return Err(Error::integrity(
                "the new head is not a successor of this workspace's head",
            ));
        }
        let keyring_changed = head.snapshot().keyring.hash() != self.head.snapshot().keyring.hash();
        if keyring_changed {
            self.keys = head.snapshot().keyring.unlock(&self.me)?;
        }
        Ok(self.replace_head(head, steps))
    }

    /// Installs a newer verified head; returns the pages whose version changed or went.
    fn replace_head(&mut self, head: VerifiedHead, steps: &[Step]) -> Vec<PageId> {
        let manifest = &head.snapshot().manifest;
        let mut changed: BTreeSet<PageId> = BTreeSet::new();
        for (id, page) in &self.pages {
            if manifest.pages.get(id).map(|e| e.hash) != Some(page.hash) {
                changed.insert(*id);
            }
        }
        for (id, entry) in &manifest.pages {
            if self.catalog.page(id).is_some_and(|p| p.hash != entry.hash) {
                changed.insert(*id);
            }
        }
        let old = &self.head.snapshot().manifest;
        for id in self.isolated.keys().chain(self.failed.keys()) {
            if old.pages.get(id) != manifest.pages.get(id) {
                changed.insert(*id);
            }
        }
        for id in &changed {
            self.pages.remove(id);
            self.confirmed.remove(id);
            self.isolated.remove(id);
            self.failed.remove(id);
            self.clash_pending.remove(id);
        }
        self.isolated
            .retain(|id, _| manifest.pages.contains_key(id));
        self.failed.retain(|id, _| manifest.pages.contains_key(id));
        self.provenance
            .retain(|id, _| manifest.pages.contains_key(id) && !changed.contains(id));
        self.head = head;
        self.generation += 1;
        self.find_index_pages();
        self.learn(steps);
        self.prune_catalog();
        changed.into_iter().collect()
    }

    /// Records who wrote what from verified steps (newest knowledge wins for the current entry).
    fn learn(&mut self, steps: &[Step]) {
        let manifest = &self.head.snapshot().manifest;
        for step in steps {
            for (id, entry) in &step.changed {
                if manifest.pages.get(id) == Some(entry) {
                    let p = Provenance::of(step);
                    if let Some(iso) = self.isolated.get_mut(id) {
                        iso.written = Some(p.clone());
                    }
                    self.provenance.insert(*id, p);
                }
            }
        }
        self.resolve_clashes();
    }

    /// Adds what a history walk found (steps in any order): see [`Self::unattributed`].
    pub fn attribute(&mut self, steps: &[Step]) {
        self.learn(steps);
    }

    /// Pages whose writer must be known and is not: isolated pages, and pages of a path clash
    /// (the one written first stays). A driver walks history back
    /// ([`crate::history::HistoryWalk`]) until [`crate::history::introduces`] finds each, then
    /// calls [`Self::attribute`] with those steps.
    pub fn unattributed(&self) -> Vec<(PageId, ManifestEntry)> {
        let manifest = &self.head.snapshot().manifest;
        self.isolated
            .keys()
            .chain(self.clash_pending.iter())
            .filter(|id| !self.provenance.contains_key(id))
            .filter_map(|id| manifest.pages.get(id).map(|e| (*id, *e)))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect()
    }

    /// Who wrote the current version of a page, if a verified step said so.
    pub fn provenance(&self, page: &PageId) -> Option<&Provenance> {
        self.provenance.get(page)
    }

    /// The wiki id.
    pub fn wiki(&self) -> WikiId {
        self.head.snapshot().keyring.wiki
    }

    /// The verified head.
    pub fn head(&self) -> &VerifiedHead {
        &self.head
    }

    /// The verified snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        self.head.snapshot()
    }

    /// The unlocked keys.
    pub fn keys(&self) -> &WikiKeys {
        &self.keys
    }

    /// The member name this client writes as.
    pub fn my_name(&self) -> &str {
        &self.my_name
    }

    /// What to remember for rollback and fork detection.
    pub fn seen(&self) -> SeenRecord {
        self.head.seen_record()
    }

    /// Changes whenever the set of live pages or their paths may have changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The signed-in member's role.
    pub fn my_role(&self) -> Option<Role> {
        self.snapshot()
            .keyring
            .member_by_signing_key(&self.me.public().ed25519)
            .map(|m| m.role)
    }

    /// The name of the member that signed the current state.
    pub fn head_signer(&self) -> Option<&str> {
        let snap = self.snapshot();
        snap.keyring
            .member_by_signing_key(&snap.state.signer)
            .map(|m| m.name.as_str())
    }

    /// Whether these keys reach the page's epoch and scope (a folder-scoped member's do not
    /// reach pages outside its folder: those are not fetched, and not failures).
    pub fn can_open(&self, page: &PageId) -> bool {
        self.snapshot().manifest.pages.get(page).is_some_and(|e| {
            self.keys
                .key_for(&EnvelopeHeader {
                    epoch: e.epoch,
                    scope: e.scope,
                })
                .is_ok()
        })
    }

    /// Whether a page's current version is decrypted.
    pub fn is_loaded(&self, page: &PageId) -> bool {
        self.pages.get(page).map(|p| p.hash)
            == self.snapshot().manifest.pages.get(page).map(|e| e.hash)
    }

    /// The decrypted current pages.
    pub fn pages(&self) -> &BTreeMap<PageId, Page> {
        &self.pages
    }

    /// A decrypted current page.
    pub fn page(&self, id: &PageId) -> Option<&Page> {
        self.pages.get(id).filter(|_| self.is_loaded(id))
    }

    /// Every live page the catalog knows (paths and metadata, decrypted or not); isolated pages
    /// and index records are not in it.
    pub fn catalog(&self) -> &BTreeMap<PageId, IndexedPage> {
        self.catalog.pages()
    }

    /// The catalog as a search index.
    pub fn index(&self) -> &SearchIndex {
        &self.catalog
    }

    /// Server faults, by page.
    pub fn failures(&self) -> &BTreeMap<PageId, String> {
        &self.failed
    }

    /// Pages isolated because a member wrote them against the rules.
    pub fn isolated(&self) -> &BTreeMap<PageId, Isolated> {
        &self.isolated
    }

    /// The live page at `path`: exact, else the one whose path clashes with it (same up to case
    /// and Unicode normalization).
    pub fn find(&self, path: &str) -> Option<PageId> {
        let pages = self.catalog.pages();
        pages
            .iter()
            .find(|(_, p)| p.path == path)
            .or_else(|| {
                let key = crate::policy::clash_key(path);
                pages
                    .iter()
                    .find(|(_, p)| crate::policy::clash_key(&p.path) == key)
            })
            .map(|(id, _)| *id)
    }

    /// Like [`Self::find`], or a not-found error naming the path.
    pub fn require(&self, path: &str) -> Result<PageId> {
        self.find(path).ok_or_else(|| {
            Error::not_found(format!(
                "no page {:?} in this wiki",
                crate::display::escape(path)
            ))
            .with_hint("list the pages to see what exists")
        })
    }

    /// Applies a write the server accepted.
    pub fn accept(&mut self, pending: Pending) -> Result<()> {
        if pending.base_state != self.head.state_hash() {
            return Err(Error::input(
                "this write was prepared on an older view of the wiki; prepare it again",
            ));
        }
        let keyring_changed = pending.commit.keyring.is_some();
        let (head, step) = self.head.adopt(pending.commit);
        if keyring_changed {
            self.keys = head.snapshot().keyring.unlock(&self.me)?;
        }
        let manifest = head.snapshot().manifest.clone();
        let stored = if pending.index_written {
            self.current_index_id()
                .and_then(|id| manifest.pages.get(&id))
                .map(|e| (e.hash, page_versions(&pending.catalog)))
        } else {
            self.stored_index.take()
        };
        self.catalog = pending.catalog;
        for id in &pending.removed {
            self.pages.remove(id);
            self.confirmed.remove(id);
            self.isolated.remove(id);
            self.failed.remove(id);
            self.clash_pending.remove(id);
            self.provenance.remove(id);
        }
        for (id, record) in pending.written {
            if let Some(entry) = manifest.pages.get(&id) {
                self.confirmed.insert(id);
                self.isolated.remove(&id);
                self.failed.remove(&id);
                self.pages.insert(
                    id,
                    Page {
                        record,
                        hash: entry.hash,
                    },
                );
            }
        }
        self.replace_head(head, std::slice::from_ref(&step));
        if let Some(settings) = pending.settings {
            self.settings = Some(settings);
            self.settings_version = self.newest_settings().map(|(_, hash)| hash);
        }
        if pending.index_written {
            // The catalog it wrote is the index now.
            self.index_read = true;
        }
        self.stored_index = stored;
        self.generation += 1;
        Ok(())
    }

    /// A decrypted record, or the error a driver answers by loading the page.
    pub fn record(&self, id: &PageId) -> Result<&PageRecord> {
        if let Some(iso) = self.isolated.get(id) {
            return Err(Error::integrity(iso.describe(id)).on_page(*id));
        }
        self.page(id)
            .map(|p| &p.record)
            .ok_or_else(|| Error::not_loaded(*id))
    }

    /// Whether `id` is one of zkwiki's own records (a search index or the settings), not a page.
    pub fn is_index_page(&self, id: &PageId) -> bool {
        self.index_pages.contains(id) || self.settings_pages.contains(id)
    }

    /// The wiki's settings (title, description), once read.
    pub fn settings(&self) -> Option<&WikiSettings> {
        self.settings.as_ref()
    }

    /// How this wiki's pages write `[[..|..]]` (its settings', else the default).
    pub fn wikilink_style(&self) -> crate::links::WikilinkStyle {
        self.settings
            .as_ref()
            .map(|s| s.wikilink_style)
            .unwrap_or_default()
    }

    /// The wiki's title: the settings' title, else none.
    pub fn title(&self) -> Option<&str> {
        self.settings
            .as_ref()
            .map(|s| s.title.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The settings records in the manifest (any epoch).
    pub fn settings_pages(&self) -> &BTreeSet<PageId> {
        &self.settings_pages
    }

    /// The kind of a live page.
    pub fn kind_of(&self, id: &PageId) -> Option<PageKind> {
        self.catalog.page(id).map(|p| p.kind)
    }
}

#[cfg(test)]
mod tests;
