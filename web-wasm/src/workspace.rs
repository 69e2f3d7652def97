//! One open wiki on the client: the verified snapshot, the keys, the page catalog and the pages
//! decrypted so far.
//!
//! The catalog is the wiki's encrypted search index (`core_crypto::index`, the same records the
//! CLI writes): opening a wiki fetches the index page, not every page, and re-indexes only pages
//! whose envelope changed since the index was written. Every write updates the index in the same
//! commit.
//!
//! Pure logic over `core_crypto` (no JavaScript), so it is tested natively; `session.rs` only
//! converts its inputs and outputs for the browser. Every byte from the server enters through
//! [`Workspace::open`], [`Workspace::refresh`], [`Workspace::load`] or [`Workspace::open_version`],
//! each of which runs the core's checks before anything is decrypted or shown.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use core_crypto::envelope::{EnvelopeHeader, PageKind, PageRecord};
use core_crypto::identity::{PublicIdentity, UserIdentity};
use core_crypto::ids::{Digest32, PageId, ScopeId, WikiId};
use core_crypto::index::{IndexedPage, SearchIndex, index_due};
use core_crypto::keyring::{Keyring, KeyringDraft, MemberKind, NewMember, Role, WikiKeys};
use core_crypto::snapshot::{PreparedCommit, SeenRecord, Snapshot};
use core_crypto::state::{Manifest, WikiState};
use rand_core::OsRng;

use crate::error::{AppError, AppResult};
use crate::links::PageIndex;
use crate::render::{self, Rendered};
use crate::search::{self, Hit};

/// A page version that passed the manifest check and decrypted.
#[derive(Debug, Clone)]
pub struct Page {
    /// The plaintext record.
    pub record: PageRecord,
    /// SHA-256 of its envelope (what the signed manifest lists).
    pub hash: Digest32,
}

/// A verified, decrypted older version of a page.
#[derive(Debug, Clone)]
pub struct Version {
    /// The state sequence it belongs to.
    pub seq: u64,
    /// The member whose key signed that state.
    pub signer: String,
    /// The record.
    pub record: PageRecord,
}

/// A member as the UI shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Name.
    pub name: String,
    /// `person` or `agent`.
    pub kind: &'static str,
    /// `owner`, `writer` or `reader`.
    pub role: &'static str,
    /// Key fingerprint.
    pub fingerprint: String,
    /// The folder this member is limited to, when it is.
    pub folder: Option<String>,
    /// Whether this is the signed-in user.
    pub me: bool,
}

/// A write signed and ready to send, with what it does to the local view once accepted.
#[derive(Debug)]
pub struct Pending {
    base_state: Digest32,
    commit: PreparedCommit,
    written: Vec<(PageId, PageRecord)>,
    removed: Vec<PageId>,
    catalog: Option<SearchIndex>,
    /// Whether the commit stores the index (a large wiki's index may lag: see `index_due`).
    index_written: bool,
    /// The page the write is about, if one.
    pub page: Option<PageId>,
}

impl Pending {
    /// The signed commit.
    pub fn commit(&self) -> &PreparedCommit {
        &self.commit
    }
}

/// What revoking a member exposes: what it could have read.
#[derive(Debug, Clone)]
pub struct RevocationReport {
    /// The member.
    pub name: String,
    /// Epochs whose pages it could decrypt (1..=this).
    pub epochs_readable: u32,
    /// Pages in the wiki now, all written in those epochs.
    pub pages_readable: usize,
    /// The epoch new writes will use.
    pub new_epoch: u32,
}

/// One open wiki.
pub struct Workspace {
    me: UserIdentity,
    my_name: String,
    chain: Vec<Keyring>,
    keys: WikiKeys,
    snap: Snapshot,
    /// Paths, metadata and search terms of every page (from the index, kept fresh).
    catalog: SearchIndex,
    /// Index pages in the manifest (any epoch), and whether one was read.
    index_pages: BTreeSet<PageId>,
    index_read: bool,
    /// The stored index at the current index id, as read or written here: its envelope hash and
    /// the page versions it describes (how far it lags decides when a write rewrites it).
    stored_index: Option<(Digest32, BTreeMap<PageId, Digest32>)>,
    /// Decrypted page contents.
    pages: BTreeMap<PageId, Page>,
    failed: BTreeMap<PageId, String>,
    /// Page paths for resolving links, built when a page is rendered after the catalog changed
    /// (rebuilding it on every `load` made loading n pages O(n²)).
    links: OnceCell<PageIndex>,
}

impl core::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Workspace({}, seq {}, {} pages)",
            self.snap.keyring.wiki,
            self.snap.state.seq,
            self.catalog.pages().len()
        )
    }
}

/// The page versions an index describes.
fn page_versions(index: &SearchIndex) -> BTreeMap<PageId, Digest32> {
    index.pages().iter().map(|(id, p)| (*id, p.hash)).collect()
}

fn copy_identity(id: &UserIdentity) -> AppResult<UserIdentity> {
    Ok(UserIdentity::from_secret_bytes(
        id.to_secret_bytes().as_ref(),
    )?)
}

impl Workspace {
    /// Verifies a fetched wiki (full keyring chain, head state and manifest) against what this
    /// client saw before, and unlocks it with `me`.
    pub fn open<B: AsRef<[u8]>>(
        me: &UserIdentity,
        my_name: &str,
        wiki: WikiId,
        keyring_versions: &[B],
        state: &[u8],
        manifest: &[u8],
        seen: &SeenRecord,
    ) -> AppResult<Self> {
        let snap = Snapshot::verify(keyring_versions, state, manifest, seen)?;
        if snap.keyring.wiki != wiki {
            return Err(core_crypto::Error::Mismatch(
                "the server answered with another wiki's keyring",
            )
            .into());
        }
        let chain = keyring_versions
            .iter()
            .map(|v| Keyring::decode(v.as_ref()))
            .collect::<core_crypto::Result<Vec<_>>>()?;
        let keys = snap.keyring.unlock(me)?;
        let mut ws = Self {
            me: copy_identity(me)?,
            my_name: my_name.to_owned(),
            chain,
            keys,
            snap,
            catalog: SearchIndex::new(),
            index_pages: BTreeSet::new(),
            index_read: false,
            stored_index: None,
            pages: BTreeMap::new(),
            failed: BTreeMap::new(),
            links: OnceCell::new(),
        };
        ws.find_index_pages();
        Ok(ws)
    }

    /// Recognises index pages: their id is derived from the scope key their entry names.
    fn find_index_pages(&mut self) {
        let mut ids_by_scope = BTreeMap::new();
        let mut found = BTreeSet::new();
        for (id, e) in &self.snap.manifest.pages {
            let derived = ids_by_scope.entry((e.epoch, e.scope)).or_insert_with(|| {
                self.keys
                    .key_for(&EnvelopeHeader {
                        epoch: e.epoch,
                        scope: e.scope,
                    })
                    .ok()
                    .map(|k| k.derive_index_page_id())
            });
            if *derived == Some(*id) {
                found.insert(*id);
            }
        }
        self.index_pages = found;
    }

    /// Where this user writes the index: the whole-wiki scope of the current epoch (a
    /// folder-scoped key holds no index).
    fn current_index_id(&self) -> Option<PageId> {
        self.keys
            .current_epoch_secret()
            .ok()
            .map(|s| s.derive_scope(self.keys.epoch(), "").derive_index_page_id())
    }

    /// Drops catalog entries for pages no longer in the manifest.
    fn prune_catalog(&mut self) {
        let stale = self
            .catalog
            .staleness(&self.snap.manifest, |id| self.index_pages.contains(id));
        self.catalog.remove_pages(&stale.gone.into_iter().collect());
        self.relink();
    }

    /// The wiki id.
    pub fn wiki(&self) -> WikiId {
        self.snap.keyring.wiki
    }

    /// The verified snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// What to remember for rollback and fork detection.
    pub fn seen(&self) -> SeenRecord {
        self.snap.seen_record()
    }

    /// The signed-in user's role.
    pub fn my_role(&self) -> Option<Role> {
        self.snap
            .keyring
            .member_by_signing_key(&self.me.public().ed25519)
            .map(|m| m.role)
    }

    /// Checks a newer head (after a 409, or a poll): keyring versions after ours, then the state.
    /// Returns the pages whose content changed or disappeared (dropped from memory).
    pub fn refresh<B: AsRef<[u8]>>(
        &mut self,
        newer_keyrings: &[B],
        state: &[u8],
        manifest: &[u8],
    ) -> AppResult<Vec<PageId>> {
        let seen = self.seen();
        let mut added = Vec::new();
        let mut latest = self.snap.keyring.clone();
        for bytes in newer_keyrings {
            let next = Keyring::decode(bytes.as_ref())?;
            if next.seq <= latest.seq {
                // Versions we already hold: they must be the very same bytes.
                let known = self
                    .chain
                    .iter()
                    .find(|k| k.seq == next.seq)
                    .is_some_and(|k| k.hash() == next.hash());
                if !known {
                    return Err(core_crypto::Error::Fork {
                        what: "keyring",
                        seq: next.seq,
                    }
                    .into());
                }
                continue;
            }
            latest.verify_next(&next)?;
            latest = next.clone();
            added.push(next);
        }
        latest.check_fresh(seen.keyring)?;
        let state = WikiState::decode(state)?;
        let manifest = Manifest::decode(manifest)?;
        state.verify(&latest, &manifest, seen.state)?;
        if !added.is_empty() {
            self.keys = latest.unlock(&self.me)?;
        }
        self.chain.extend(added);
        let mut changed = Vec::new();
        for (id, entry) in &manifest.pages {
            let known = self.catalog.page(id).map(|p| p.hash);
            if known.is_some() && known != Some(entry.hash) {
                changed.push(*id);
            }
        }
        for (id, page) in &self.pages {
            if manifest.pages.get(id).map(|e| e.hash) != Some(page.hash) && !changed.contains(id) {
                changed.push(*id);
            }
        }
        for id in &changed {
            self.pages.remove(id);
        }
        self.failed
            .retain(|id, _| manifest.pages.contains_key(id) && !changed.contains(id));
        self.snap = Snapshot {
            keyring: latest,
            state,
            manifest,
        };
        self.find_index_pages();
        self.prune_catalog();
        Ok(changed)
    }

    /// What to fetch next, with the hash to fetch each by: first the search index (the current
    /// one, else the newest), then every page the index does not describe as it is now. Empty
    /// when the catalog is complete. Pages that failed are not asked for again.
    pub fn wanted(&self) -> Vec<(PageId, Digest32)> {
        let entry = |id: &PageId| self.snap.manifest.pages.get(id).map(|e| (*id, e.hash));
        if !self.index_read {
            let current = self.current_index_id();
            let mut candidates: Vec<&PageId> = self
                .index_pages
                .iter()
                .filter(|id| !self.failed.contains_key(id))
                .collect();
            candidates.sort_by_key(|id| {
                (
                    Some(**id) != current,
                    core::cmp::Reverse(self.snap.manifest.pages.get(id).map_or(0, |e| e.epoch)),
                )
            });
            if let Some(first) = candidates.first().and_then(|id| entry(id)) {
                return vec![first];
            }
        }
        self.catalog
            .staleness(&self.snap.manifest, |id| self.index_pages.contains(id))
            .changed
            .iter()
            .filter(|id| !self.failed.contains_key(id) && self.can_open(id))
            .filter_map(entry)
            .collect()
    }

    /// Whether these keys reach the page's epoch and scope (a folder-scoped member's do not
    /// reach pages outside its folder: those are not fetched, and not failures).
    fn can_open(&self, page: &PageId) -> bool {
        self.snap.manifest.pages.get(page).is_some_and(|e| {
            self.keys
                .key_for(&EnvelopeHeader {
                    epoch: e.epoch,
                    scope: e.scope,
                })
                .is_ok()
        })
    }

    /// Whether a page's content is decrypted and current.
    pub fn is_loaded(&self, page: &PageId) -> bool {
        self.pages.get(page).map(|p| p.hash) == self.snap.manifest.pages.get(page).map(|e| e.hash)
    }

    /// Checks an envelope against the signed manifest and decrypts it: an index page becomes
    /// the catalog; any other page is kept and (re)indexed.
    pub fn load(&mut self, page: PageId, envelope: &[u8]) -> AppResult<Option<&Page>> {
        let opened = self
            .snap
            .open_page(&self.keys, &page, envelope)
            .map_err(AppError::from)
            .and_then(|record| {
                if self.index_pages.contains(&page) {
                    let index = SearchIndex::from_record(&record)?;
                    Ok((record, Some(index)))
                } else {
                    Ok((record, None))
                }
            });
        match opened {
            Ok((_, Some(index))) => {
                self.failed.remove(&page);
                if Some(page) == self.current_index_id()
                    && let Some(entry) = self.snap.manifest.pages.get(&page)
                {
                    self.stored_index = Some((entry.hash, page_versions(&index)));
                }
                if !self.index_read {
                    // Pages we already decrypted stay as they are; the rest comes from the index.
                    let mut catalog = index;
                    for (id, p) in &self.pages {
                        catalog.insert(*id, &p.record, p.hash);
                    }
                    self.catalog = catalog;
                    self.index_read = true;
                    self.prune_catalog();
                }
                Ok(None)
            }
            Ok((record, None)) => {
                self.failed.remove(&page);
                // open_page checked the envelope's SHA-256 against this entry: no second hash.
                let Some(hash) = self.snap.manifest.pages.get(&page).map(|e| e.hash) else {
                    return Err(AppError::input("that page is not in the signed manifest"));
                };
                if self.catalog.page(&page).map(|p| p.hash) != Some(hash) {
                    self.catalog.insert(page, &record, hash);
                    self.relink();
                }
                self.pages.insert(page, Page { record, hash });
                Ok(self.pages.get(&page))
            }
            Err(e) => {
                let err = e.on_page(page);
                self.failed.insert(page, err.message.clone());
                if self.index_pages.contains(&page)
                    && !self
                        .index_pages
                        .iter()
                        .any(|id| !self.failed.contains_key(id))
                {
                    // No readable index: every page gets indexed from its content instead.
                    self.index_read = true;
                }
                Err(err)
            }
        }
    }

    /// Records that a page listed in the manifest could not be fetched.
    pub fn mark_missing(&mut self, page: PageId, detail: &str) {
        if self.snap.manifest.pages.contains_key(&page) {
            self.failed.insert(
                page,
                format!(
                    "integrity check failed: the signed manifest lists this page but the server did not return it ({detail})"
                ),
            );
        }
    }

    /// Pages that failed a check, with the reason.
    pub fn failures(&self) -> &BTreeMap<PageId, String> {
        &self.failed
    }

    /// The decrypted pages.
    pub fn pages(&self) -> &BTreeMap<PageId, Page> {
        &self.pages
    }

    /// Every page the catalog knows (paths and metadata, decrypted or not).
    pub fn catalog(&self) -> &BTreeMap<PageId, IndexedPage> {
        self.catalog.pages()
    }

    /// Markdown pages of the catalog.
    fn markdown_entries(&self) -> impl Iterator<Item = (&PageId, &IndexedPage)> {
        self.catalog
            .pages()
            .iter()
            .filter(|(_, p)| p.kind == PageKind::Markdown)
    }

    fn relink(&mut self) {
        self.links = OnceCell::new();
    }

    fn links(&self) -> &PageIndex {
        self.links
            .get_or_init(|| PageIndex::new(self.markdown_entries().map(|(_, p)| p.path.as_str())))
    }

    /// The page with this path (exact, else case-insensitive). With several (two writers created
    /// the same path concurrently), the most recently written.
    pub fn find(&self, path: &str) -> Option<PageId> {
        let pick = |exact: bool| {
            let lower = path.to_lowercase();
            self.markdown_entries()
                .filter(|(_, p)| {
                    if exact {
                        p.path == path
                    } else {
                        p.path.to_lowercase() == lower
                    }
                })
                .max_by_key(|(_, p)| p.written_at_ms)
                .map(|(id, _)| *id)
        };
        pick(true).or_else(|| pick(false))
    }

    /// The route prefix of page links: `#/w/<wiki>/p/`.
    pub fn route(&self) -> String {
        format!("#/w/{}/p/", self.wiki())
    }

    /// Renders markdown as if it were the page at `path` (for a page or an edit preview).
    pub fn render(&self, path: &str, markdown: &str) -> Rendered {
        let route = self.route();
        let ctx = render::Context {
            pages: self.links(),
            current: path,
            route: &route,
        };
        render::render_page(markdown, &ctx)
    }

    /// Searches the catalog: every term must match a word of the page (its path or text); the
    /// last term also matches as a prefix (search as you type). Pages whose path matches rank
    /// first. Snippets come from pages already decrypted.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let mut q = query.trim().to_owned();
        if !q.is_empty() && !query.ends_with(char::is_whitespace) && !q.ends_with('*') {
            q.push('*');
        }
        let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let mut hits: Vec<Hit> = self
            .catalog
            .search(&q)
            .into_iter()
            .filter_map(|id| {
                let entry = self.catalog.page(&id)?;
                if entry.kind != PageKind::Markdown {
                    return None;
                }
                let path_lower = entry.path.to_lowercase();
                let in_path = terms
                    .iter()
                    .filter(|t| path_lower.contains(t.as_str()))
                    .count();
                let text = self.pages.get(&id).and_then(|p| p.record.markdown());
                // Prefer a snippet from the body over one from the front matter.
                let snippet = text
                    .and_then(|t| {
                        let (front, body) = core_crypto::envelope::split_front_matter(t);
                        search::snippet_for(body, &terms)
                            .or_else(|| front.and_then(|f| search::snippet_for(f, &terms)))
                    })
                    .unwrap_or_default();
                Some(Hit {
                    path: entry.path.clone(),
                    snippet,
                    score: in_path as u32 * 1000
                        + text.map_or(0, |t| search::count(t, &terms)).min(999),
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.path.cmp(&b.path)));
        hits.truncate(limit);
        hits
    }

    fn check_can_write(&self) -> AppResult<()> {
        match self.my_role() {
            Some(r) if r.can_write() => Ok(()),
            _ => Err(AppError {
                kind: crate::error::Kind::Access,
                message: "you can read this wiki but not write it: every client rejects a state \
                          signed by a reader (enforced by cryptography)"
                    .to_owned(),
                page: None,
            }),
        }
    }

    fn check_path_free(&self, path: &str, except: Option<PageId>) -> AppResult<()> {
        core_crypto::path::check_path(path)?;
        if core_crypto::index::is_reserved_path(path) {
            return Err(AppError::input(
                "paths under .zkwiki/ are reserved for zkwiki's own records",
            ));
        }
        let lower = path.to_lowercase();
        let taken = self
            .catalog
            .pages()
            .iter()
            .any(|(id, p)| Some(*id) != except && p.path.to_lowercase() == lower);
        if taken {
            return Err(AppError::input(format!(
                "a page named \"{path}\" already exists"
            )));
        }
        Ok(())
    }

    fn check_unchanged(&self, page: PageId, base: Option<Digest32>) -> AppResult<()> {
        let current = self.snap.manifest.pages.get(&page).map(|e| e.hash);
        match (current, base) {
            (None, _) => Err(AppError::conflict(
                page,
                "this page was deleted on the server after you started editing",
            )),
            (Some(c), Some(b)) if c != b => Err(AppError::conflict(
                page,
                "this page was changed on the server after you started editing",
            )),
            _ => Ok(()),
        }
    }

    fn record(&self, path: &str, content: Vec<u8>, now_ms: i64) -> PageRecord {
        PageRecord {
            kind: PageKind::Markdown,
            path: path.to_owned(),
            author: self.my_name.clone(),
            written_at_ms: now_ms,
            content,
        }
    }

    /// Signs the batch; with `catalog` (page writes), the updated search index goes into the
    /// same commit, and index pages of older epochs are dropped.
    fn finish(
        &self,
        mut batch: core_crypto::snapshot::WriteBatch<'_>,
        written: Vec<(PageId, PageRecord)>,
        removed: Vec<PageId>,
        page: Option<PageId>,
        mut catalog: Option<SearchIndex>,
        now_ms: i64,
    ) -> AppResult<Pending> {
        let mut index_written = false;
        if let (Some(index_id), Some(cat)) = (self.current_index_id(), catalog.as_mut()) {
            let older: Vec<PageId> = self
                .index_pages
                .iter()
                .filter(|id| **id != index_id)
                .copied()
                .collect();
            let lag = self
                .stored_lag(index_id)
                .saturating_add(written.len() + removed.len());
            if !older.is_empty() || index_due(cat.pages().len(), lag) {
                for old in &older {
                    batch.remove(old)?;
                }
                cat.seq = self.snap.state.seq + 1;
                let record = cat.to_record(&self.my_name, now_ms)?;
                batch.put(&mut OsRng, &self.keys, index_id, &record)?;
                index_written = true;
            }
        }
        let commit = batch.finish(&self.me)?;
        Ok(Pending {
            base_state: self.snap.state.hash(),
            commit,
            written,
            removed,
            catalog,
            index_written,
            page,
        })
    }

    /// How many pages the stored index at `index_id` does not describe as they are now
    /// (`usize::MAX` when this session does not know that index).
    fn stored_lag(&self, index_id: PageId) -> usize {
        let manifest = &self.snap.manifest;
        match &self.stored_index {
            Some((envelope, versions))
                if manifest.pages.get(&index_id).map(|e| e.hash) == Some(*envelope) =>
            {
                let changed = manifest
                    .pages
                    .iter()
                    .filter(|(id, e)| {
                        !self.index_pages.contains(id) && versions.get(id) != Some(&e.hash)
                    })
                    .count();
                let gone = versions
                    .keys()
                    .filter(|id| !manifest.pages.contains_key(id))
                    .count();
                changed + gone
            }
            _ => usize::MAX,
        }
    }

    /// The catalog with these changes, when it is complete enough to be written as the index.
    fn next_catalog(
        &self,
        written: &[(PageId, PageRecord)],
        hashes: &[Digest32],
        removed: &[PageId],
    ) -> SearchIndex {
        let mut cat = self.catalog.clone();
        cat.remove_pages(&removed.iter().copied().collect());
        for ((id, record), hash) in written.iter().zip(hashes) {
            cat.insert(*id, record, *hash);
        }
        cat
    }

    /// Writes a page: `page` is `None` for a new page; `base` is the hash the editor started from
    /// (a conflict if the page changed since).
    pub fn prepare_put(
        &self,
        page: Option<PageId>,
        path: &str,
        text: &str,
        base: Option<Digest32>,
        now_ms: i64,
    ) -> AppResult<Pending> {
        self.check_can_write()?;
        let id = match page {
            Some(id) => {
                self.check_unchanged(id, base)?;
                id
            }
            None => PageId::random(&mut OsRng),
        };
        self.check_path_free(path, Some(id))?;
        let record = self.record(path, text.as_bytes().to_vec(), now_ms);
        self.write_pages(vec![(id, record)], Vec::new(), Some(id), now_ms)
    }

    fn write_pages(
        &self,
        written: Vec<(PageId, PageRecord)>,
        removed: Vec<PageId>,
        page: Option<PageId>,
        now_ms: i64,
    ) -> AppResult<Pending> {
        let mut batch = self.snap.begin_write();
        let mut hashes = Vec::new();
        for (id, record) in &written {
            hashes.push(batch.put(&mut OsRng, &self.keys, *id, record)?);
        }
        for id in &removed {
            batch.remove(id)?;
        }
        let catalog = self.next_catalog(&written, &hashes, &removed);
        self.finish(batch, written, removed, page, Some(catalog), now_ms)
    }

    /// Renames a page (same id, so its history follows it).
    pub fn prepare_rename(&self, page: PageId, new_path: &str, now_ms: i64) -> AppResult<Pending> {
        self.check_can_write()?;
        let current = self
            .pages
            .get(&page)
            .filter(|_| self.is_loaded(&page))
            .ok_or_else(|| AppError::input("that page is not loaded"))?;
        self.check_path_free(new_path, Some(page))?;
        let mut record = self.record(new_path, current.record.content.clone(), now_ms);
        record.kind = current.record.kind;
        self.write_pages(vec![(page, record)], Vec::new(), Some(page), now_ms)
    }

    /// Deletes a page.
    pub fn prepare_delete(&self, page: PageId, now_ms: i64) -> AppResult<Pending> {
        self.check_can_write()?;
        if !self.snap.manifest.pages.contains_key(&page) || self.index_pages.contains(&page) {
            return Err(AppError::input("no such page"));
        }
        self.write_pages(Vec::new(), vec![page], Some(page), now_ms)
    }

    /// Applies a write the server accepted.
    pub fn accept(&mut self, pending: Pending) -> AppResult<()> {
        if pending.base_state != self.snap.state.hash() {
            return Err(AppError::input(
                "this write was prepared on an older view of the wiki; prepare it again",
            ));
        }
        let keyring_changed = pending.commit.keyring.is_some();
        let next = pending.commit.into_snapshot(&self.snap);
        if keyring_changed {
            self.chain.push(next.keyring.clone());
            self.keys = next.keyring.unlock(&self.me)?;
        }
        for id in &pending.removed {
            self.pages.remove(id);
        }
        for (id, record) in pending.written {
            if let Some(entry) = next.manifest.pages.get(&id) {
                self.pages.insert(
                    id,
                    Page {
                        record,
                        hash: entry.hash,
                    },
                );
            }
        }
        if let Some(catalog) = pending.catalog {
            if pending.index_written
                && let Some(index_id) = self.current_index_id()
                && let Some(entry) = next.manifest.pages.get(&index_id)
            {
                self.stored_index = Some((entry.hash, page_versions(&catalog)));
            }
            self.catalog = catalog;
        }
        self.snap = next;
        self.find_index_pages();
        self.prune_catalog();
        Ok(())
    }

    /// Verifies and decrypts an older version of a page: the state must be signed by a writer of
    /// the keyring version it names, which must be in the verified chain; the manifest must match
    /// the state, and the envelope the manifest.
    pub fn open_version(
        &self,
        page: PageId,
        state: &[u8],
        manifest: &[u8],
        envelope: &[u8],
    ) -> AppResult<Version> {
        let state = WikiState::decode(state)?;
        let manifest = Manifest::decode(manifest)?;
        let current = &self.snap.state;
        if state.wiki != self.wiki() {
            return Err(core_crypto::Error::Mismatch("history state of another wiki").into());
        }
        if state.seq > current.seq {
            return Err(core_crypto::Error::Mismatch(
                "a history state is newer than the verified head",
            )
            .into());
        }
        if state.seq == current.seq && state.hash() != current.hash() {
            return Err(core_crypto::Error::Fork {
                what: "wiki state",
                seq: state.seq,
            }
            .into());
        }
        let keyring = self
            .chain
            .iter()
            .find(|k| k.hash() == state.keyring)
            .ok_or(core_crypto::Error::Mismatch(
                "a history state names a keyring version that is not in the verified chain",
            ))?;
        state.verify(keyring, &manifest, None)?;
        let signer = keyring
            .member_by_signing_key(&state.signer)
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let seq = state.seq;
        let then = Snapshot {
            keyring: keyring.clone(),
            state,
            manifest,
        };
        let record = then
            .open_page(&self.keys, &page, envelope)
            .map_err(|e| AppError::from(e).on_page(page))?;
        Ok(Version {
            seq,
            signer,
            record,
        })
    }

    /// The name of the member that signed the current state.
    pub fn head_signer(&self) -> Option<&str> {
        self.snap
            .keyring
            .member_by_signing_key(&self.snap.state.signer)
            .map(|m| m.name.as_str())
    }

    fn folder_of(&self, scope: ScopeId) -> Option<String> {
        if scope == ScopeId::WHOLE_WIKI {
            return None;
        }
        let found = self.keys.prefixes().iter().find(|p| {
            self.keys
                .key_for_writing(&format!("{p}x"))
                .is_ok_and(|k| k.id() == scope)
        });
        Some(found.cloned().unwrap_or_else(|| "a folder".to_owned()))
    }

    /// The members of the current keyring.
    pub fn members(&self) -> Vec<MemberView> {
        let me = self.me.public();
        self.snap
            .keyring
            .members
            .iter()
            .map(|m| MemberView {
                name: m.name.clone(),
                kind: m.kind.name(),
                role: m.role.name(),
                fingerprint: m.public.fingerprint(),
                folder: self.folder_of(m.scope),
                me: m.public == me,
            })
            .collect()
    }

    fn keyring_write(&self, draft: KeyringDraft) -> AppResult<Pending> {
        let next = draft.sign(&mut OsRng, &self.me)?;
        let mut batch = self.snap.begin_write();
        batch.set_keyring(next)?;
        self.finish(batch, Vec::new(), Vec::new(), None, None, 0)
    }

    /// Adds a member with these (fingerprint-confirmed) public keys.
    pub fn prepare_add_member(
        &self,
        name: &str,
        kind: MemberKind,
        role: Role,
        public: PublicIdentity,
    ) -> AppResult<Pending> {
        let mut draft = KeyringDraft::edit(&self.snap.keyring, &self.keys)?;
        draft.add_member(NewMember {
            name: name.to_owned(),
            kind,
            role,
            public,
            prefix: String::new(),
        })?;
        self.keyring_write(draft)
    }

    /// Changes a member's role (no new epoch: read access is unchanged).
    pub fn prepare_set_role(&self, name: &str, role: Role) -> AppResult<Pending> {
        let mut draft = KeyringDraft::edit(&self.snap.keyring, &self.keys)?;
        draft.set_role(name, role)?;
        self.keyring_write(draft)
    }

    /// Removes a member: a new epoch starts, so nothing written afterwards opens with its keys.
    pub fn prepare_remove_member(&self, name: &str) -> AppResult<(Pending, RevocationReport)> {
        let mut draft = KeyringDraft::edit(&self.snap.keyring, &self.keys)?;
        draft.remove_member(name)?;
        let report = RevocationReport {
            name: name.to_owned(),
            epochs_readable: self.snap.keyring.epoch,
            pages_readable: self
                .snap
                .manifest
                .pages
                .keys()
                .filter(|id| !self.index_pages.contains(id))
                .count(),
            new_epoch: self.snap.keyring.epoch + 1,
        };
        Ok((self.keyring_write(draft)?, report))
    }
}

#[cfg(test)]
mod tests;
