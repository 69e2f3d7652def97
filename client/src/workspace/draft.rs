//! Preparing a write: the one place where a client decides what it may sign. Every rule other
//! clients enforce when reading is enforced here when writing, so an honest client never
//! produces what a reader would isolate: the path policy, a free path (up to case, Unicode form
//! and folders), the key's folder, the writer's role, a page's kind from its path, and the
//! search index kept with the commit (or let lag, by `core_crypto::index::index_due`).

use std::collections::BTreeSet;

use core_crypto::envelope::{PageKind, PageRecord, VersionNote};
use core_crypto::ids::{Digest32, PageId};
use core_crypto::index::{SearchIndex, index_due};
use core_crypto::keyring::Keyring;
use core_crypto::snapshot::WriteBatch;
use rand_core::OsRng;

use super::{Pending, Workspace};
use crate::display::escape;
use crate::error::{Error, Result};
use crate::policy;

/// When a write stores this key's search index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexWrite {
    /// When due (`core_crypto::index::index_due`), after a key change, or when older index
    /// pages must go: the everyday rule.
    WhenDue,
    /// Not in this commit (a bulk import's batches; a later [`IndexWrite::Flush`] stores it).
    Defer,
    /// In this commit whenever the stored index does not describe the wiki as it will be, even
    /// if nothing else changed (the end of an import or re-encryption).
    Flush,
}

/// Changes being staged for one commit on top of a [`Workspace`]'s head.
pub struct Draft<'w> {
    ws: &'w Workspace,
    batch: WriteBatch<'w>,
    catalog: SearchIndex,
    written: Vec<(PageId, PageRecord)>,
    removed: Vec<PageId>,
    page: Option<PageId>,
    now_ms: i64,
    note: VersionNote,
    keyring_changed: bool,
    pub(super) settings: Option<super::WikiSettings>,
}

impl Workspace {
    /// Starts a write as this member, at `now_ms` (the writer's clock, for the records).
    /// Refused for a member who may not write: every client would reject what it signs.
    pub fn draft(&self, now_ms: i64) -> Result<Draft<'_>> {
        match self.my_role() {
            Some(r) if r.can_write() => {}
            Some(_) => {
                return Err(Error::access(
                    "this key is read-only: it can read this wiki but not write it, and every \
                     client rejects a state signed by a reader (enforced by cryptography)",
                ));
            }
            None => {
                return Err(Error::access(
                    "this key is not a member of the wiki's current keyring",
                ));
            }
        }
        Ok(Draft {
            ws: self,
            batch: self.head.snapshot().begin_write(),
            catalog: self.catalog.clone(),
            written: Vec::new(),
            removed: Vec::new(),
            page: None,
            now_ms,
            note: VersionNote::default(),
            keyring_changed: false,
            settings: None,
        })
    }
}

impl Draft<'_> {
    /// The live page at `path` in the staged catalog (exact, else clashing).
    pub fn find(&self, path: &str) -> Option<PageId> {
        let pages = self.catalog.pages();
        pages
            .iter()
            .find(|(_, p)| p.path == path)
            .or_else(|| {
                let key = policy::clash_key(path);
                pages
                    .iter()
                    .find(|(_, p)| policy::clash_key(&p.path) == key)
            })
            .map(|(id, _)| *id)
    }

    /// A page's current record in the head this draft builds on (an error of kind
    /// `NotLoaded` asks the driver to load it first).
    pub fn current(&self, id: &PageId) -> Result<&PageRecord> {
        self.ws.record(id)
    }

    /// The envelope hash of a page in the head this draft builds on.
    pub fn base_hash(&self, id: &PageId) -> Option<Digest32> {
        self.ws.snapshot().manifest.pages.get(id).map(|e| e.hash)
    }

    /// The workspace this draft builds on.
    pub(super) fn workspace(&self) -> &Workspace {
        self.ws
    }

    /// Stages one of zkwiki's own records (settings) under `key`.
    pub(super) fn put_own(
        &mut self,
        key: &core_crypto::scope::ScopeKey,
        id: PageId,
        record: &PageRecord,
    ) -> Result<()> {
        self.batch.put_index(&mut OsRng, key, id, record)?;
        if record.kind == PageKind::Settings {
            self.settings = super::WikiSettings::from_record(record).ok();
        }
        Ok(())
    }

    /// Stages the removal of one of zkwiki's own records.
    pub(super) fn remove_own(&mut self, id: &PageId) -> Result<()> {
        Ok(self.batch.remove(id)?)
    }

    /// The clock this draft writes with.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The member name records are written with.
    pub fn author(&self) -> &str {
        self.ws.my_name()
    }

    /// Sets the note (message, e-mail, time zone) the records this draft writes carry.
    pub fn set_note(&mut self, note: VersionNote) {
        self.note = note;
    }

    /// The note records of this draft carry.
    pub fn note(&self) -> &VersionNote {
        &self.note
    }

    /// Makes `record` a version by this member, now, with this draft's note (a rename or an
    /// edit of an existing record).
    pub fn stamp(&self, record: &mut PageRecord) {
        record.author = self.ws.my_name().to_owned();
        record.written_at_ms = self.now_ms;
        record.note = self.note.clone();
    }

    /// Names the page this write is about (for the driver's answer).
    pub fn about(&mut self, page: PageId) {
        self.page = Some(page);
    }

    /// Checks that `path` may hold the page `id` (new, or renamed/rewritten).
    fn check_path(&self, id: PageId, path: &str, kind: PageKind) -> Result<()> {
        policy::check_new(path)?;
        if kind != PageKind::Index && policy::kind_for_path(path) != kind {
            return Err(Error::input(format!(
                "{:?} is {} path, but the page is {}",
                escape(path),
                if policy::kind_for_path(path) == PageKind::Markdown {
                    "a markdown"
                } else {
                    "an attachment's"
                },
                if kind == PageKind::Markdown {
                    "markdown"
                } else {
                    "an attachment"
                },
            ))
            .with_hint(
                "markdown pages end in .md (or .markdown); other files keep their own extension",
            ));
        }
        if let Some(prefix) = self.ws.keys().prefix()
            && !path.starts_with(prefix)
        {
            return Err(Error::access(format!(
                "this key may only write pages under {:?}; choose a path there",
                escape(prefix)
            )));
        }
        let clash = policy::find_clash(
            self.catalog
                .pages()
                .iter()
                .map(|(pid, p)| (pid, p.path.as_str())),
            path,
            Some(id),
        );
        if let Some((_, other)) = clash {
            return Err(Error::input(if other == path {
                format!("a page {:?} already exists", escape(path))
            } else {
                format!(
                    "{:?} clashes with the page {:?} (same name up to case or Unicode form, or a page where a folder would be)",
                    escape(path),
                    escape(&other)
                )
            })
            .with_hint("choose another path, or change that page instead"));
        }
        Ok(())
    }

    /// Encrypts and stages a new version of a page (a new or existing id). The record's path
    /// must pass the policy, be free, and lie in this key's folder; its kind must match its path.
    pub fn put(&mut self, id: PageId, record: PageRecord) -> Result<Digest32> {
        if self.ws.is_index_page(&id) {
            return Err(Error::input("that page id belongs to the search index"));
        }
        self.check_path(id, &record.path, record.kind)?;
        let hash = self
            .batch
            .put(&mut OsRng, self.ws.keys(), id, &record)
            .map_err(|e| Error::from(e).on_page(id))?;
        self.catalog.insert(id, &record, hash);
        self.removed.retain(|r| *r != id);
        self.written.retain(|(w, _)| *w != id);
        self.written.push((id, record));
        if self.page.is_none() {
            self.page = Some(id);
        }
        Ok(hash)
    }

    /// Stages a page with this member as author, now, with this draft's note: markdown or an
    /// attachment by its path.
    pub fn put_content(&mut self, id: PageId, path: &str, content: Vec<u8>) -> Result<Digest32> {
        let record = PageRecord {
            kind: policy::kind_for_path(path),
            path: path.to_owned(),
            author: self.ws.my_name().to_owned(),
            written_at_ms: self.now_ms,
            note: self.note.clone(),
            content,
        };
        self.put(id, record)
    }

    /// Stages the removal of a page (also of an isolated one: that is how a writer clears a
    /// page a member wrote against the rules).
    pub fn remove(&mut self, id: &PageId) -> Result<()> {
        if self.ws.is_index_page(id) {
            return Err(Error::input("the search index is not removed by hand"));
        }
        let entry = self
            .ws
            .snapshot()
            .manifest
            .pages
            .get(id)
            .copied()
            .ok_or_else(|| Error::not_found(format!("no page {id} in this wiki")))?;
        if self.ws.keys().prefix().is_some()
            && self
                .ws
                .keys()
                .current_scope_keys()
                .iter()
                .all(|k| k.id() != entry.scope)
        {
            return Err(Error::access(
                "this key may only remove pages of its own folder",
            ));
        }
        self.batch.remove(id)?;
        self.catalog.remove_pages(&BTreeSet::from([*id]));
        self.written.retain(|(w, _)| w != id);
        self.removed.push(*id);
        if self.page.is_none() {
            self.page = Some(*id);
        }
        Ok(())
    }

    /// Stages a new keyring version (signed by an owner) to commit with this write.
    pub fn set_keyring(&mut self, next: Keyring) -> Result<()> {
        self.batch.set_keyring(next)?;
        self.keyring_changed = true;
        Ok(())
    }

    /// Re-encrypts a page unchanged under the keys this write signs with (after a new epoch, or
    /// into a folder's scope): `keys` are the keys of the keyring being committed.
    pub fn reseal(
        &mut self,
        keys: &core_crypto::keyring::WikiKeys,
        id: PageId,
        record: &PageRecord,
    ) -> Result<Digest32> {
        let hash = self
            .batch
            .put(&mut OsRng, keys, id, record)
            .map_err(|e| Error::from(e).on_page(id))?;
        self.catalog.insert(id, record, hash);
        self.written.retain(|(w, _)| *w != id);
        self.written.push((id, record.clone()));
        Ok(hash)
    }

    /// How many pages are staged (written or removed).
    pub fn staged(&self) -> usize {
        self.written.len() + self.removed.len()
    }

    /// Whether anything is staged.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Whether finishing with `index` stores this key's search index (so a write that changes
    /// nothing else still has something to commit with [`IndexWrite::Flush`]).
    pub fn index_pending(&self, index: IndexWrite) -> bool {
        self.index_plan(index).is_some()
    }

    /// Where the index goes and which older index pages go with it, when it is stored.
    fn index_plan(&self, index: IndexWrite) -> Option<(core_crypto::scope::ScopeKey, Vec<PageId>)> {
        // With a keyring change the index waits for the next write, under the new keys; an
        // index written from an incomplete catalog would drop pages.
        if index == IndexWrite::Defer || self.keyring_changed || !self.ws.catalog_complete() {
            return None;
        }
        let key = self.ws.index_key()?;
        let id = key.derive_index_page_id();
        let older = self.ws.old_index_pages();
        let lag = self
            .ws
            .stored_lag(id)
            .saturating_add(self.written.len() + self.removed.len());
        let missing = !self.ws.snapshot().manifest.pages.contains_key(&id);
        let must = !older.is_empty() || missing;
        let due = match index {
            IndexWrite::Flush => must || lag > 0,
            _ => must || index_due(self.catalog.pages().len(), lag),
        };
        let anything = !self.batch.is_empty() || index == IndexWrite::Flush;
        (due && anything).then_some((key, older))
    }

    /// Signs the write: with `index`, this key's search index goes into the same commit when
    /// the rule says so, and index pages of older epochs are dropped with it (a keyring change
    /// leaves the index to the next write, which stores it under the new keys). A flush also
    /// moves the settings to the current epoch, as re-encryption does for pages.
    pub fn finish(mut self, index: IndexWrite) -> Result<Pending> {
        if matches!(index, IndexWrite::Flush) {
            self.rehome_settings()?;
        }
        let plan = self.index_plan(index);
        let Draft {
            ws,
            mut batch,
            mut catalog,
            written,
            removed,
            page,
            now_ms,
            settings,
            ..
        } = self;
        let mut index_written = false;
        if let Some((key, older)) = plan {
            for old in &older {
                batch.remove(old)?;
            }
            catalog.seq = ws.head.seq() + 1;
            let record = catalog.to_record(ws.my_name(), now_ms)?;
            batch.put_index(&mut OsRng, &key, key.derive_index_page_id(), &record)?;
            index_written = true;
        }
        let commit = batch.finish(&ws.me)?;
        Ok(Pending {
            base_state: ws.head.state_hash(),
            commit,
            written,
            removed,
            catalog,
            index_written,
            settings,
            page,
        })
    }
}
