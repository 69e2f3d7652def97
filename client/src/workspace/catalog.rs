//! The catalog of a workspace: where the search index lives, what to fetch next, how an
//! envelope is checked and admitted (or isolated), and how clashing paths are settled.

use std::collections::BTreeSet;

use core_crypto::envelope::{EnvelopeHeader, PageKind, PageRecord};
use core_crypto::ids::{Digest32, PageId, ScopeId};
use core_crypto::index::{INDEX_PATH, SearchIndex};

use super::{Isolated, Page, Workspace, page_versions};
use crate::error::{Error, Result};
use crate::policy;
use crate::search::{self, Hit};

/// Why a record breaks the rules, from the core's error (the envelope itself matched the signed
/// manifest, so whoever signed that manifest entry wrote it).
fn problem_of(e: &core_crypto::Error) -> String {
    use core_crypto::Error as E;
    match e {
        E::NoAccess(_) => {
            "it is encrypted under a key this wiki never had (e.g. a blob of another wiki)".into()
        }
        E::WrongKey { .. } | E::Tampered { .. } => {
            "it does not decrypt under the key its header names".into()
        }
        other => format!("its content is malformed ({other})"),
    }
}

/// The index page id a scope key derives and, for a whole-wiki key, its settings page id (none
/// when these keys do not reach the scope).
type DerivedIds = Option<(PageId, Option<PageId>)>;

impl Workspace {
    /// Recognises index pages: their id is derived from the scope key their entry names.
    pub(super) fn find_index_pages(&mut self) {
        // One derivation per (epoch, scope); a wiki has few, so a list is enough (and keeps the
        // browser's bundle free of another map type).
        let mut ids_by_scope: Vec<((u32, ScopeId), DerivedIds)> = Vec::new();
        let mut found = BTreeSet::new();
        let mut settings = BTreeSet::new();
        for (id, e) in &self.head.snapshot().manifest.pages {
            let scope = (e.epoch, e.scope);
            let derived = match ids_by_scope.iter().find(|(s, _)| *s == scope) {
                Some((_, d)) => *d,
                None => {
                    let d = self
                        .keys
                        .scope_for(&EnvelopeHeader {
                            epoch: e.epoch,
                            scope: e.scope,
                        })
                        .ok()
                        .map(|(k, prefix)| {
                            let whole = prefix.is_empty();
                            (
                                k.derive_index_page_id(),
                                whole.then(|| k.derive_settings_page_id()),
                            )
                        });
                    ids_by_scope.push((scope, d));
                    d
                }
            };
            match derived {
                Some((index, _)) if index == *id => {
                    found.insert(*id);
                }
                Some((_, Some(set))) if set == *id => {
                    settings.insert(*id);
                }
                _ => {}
            }
        }
        self.index_pages = found;
        self.settings_pages = settings;
    }

    /// The settings record of the newest epoch in the manifest, and its envelope hash.
    pub(super) fn newest_settings(&self) -> Option<(PageId, Digest32)> {
        let manifest = &self.head.snapshot().manifest;
        self.settings_pages
            .iter()
            .filter_map(|id| manifest.pages.get(id).map(|e| (e.epoch, *id, e.hash)))
            .max()
            .map(|(_, id, hash)| (id, hash))
    }

    /// The scope key of the index this key keeps: the whole-wiki scope of the current epoch,
    /// or for a key limited to one folder, that folder's own index.
    pub(crate) fn index_key(&self) -> Option<core_crypto::scope::ScopeKey> {
        match self.keys.prefix() {
            Some(_) => self.keys.current_scope_keys().first().cloned(),
            None => self
                .keys
                .current_epoch_secret()
                .ok()
                .map(|s| s.derive_scope(self.keys.epoch(), "")),
        }
    }

    /// Where this key keeps its index (see [`Self::index_key`]).
    pub(crate) fn current_index_id(&self) -> Option<PageId> {
        self.index_key().map(|k| k.derive_index_page_id())
    }

    /// Drops catalog entries of pages no longer in the manifest, or isolated.
    pub(super) fn prune_catalog(&mut self) {
        let stale = self
            .catalog
            .staleness(&self.head.snapshot().manifest, |id| self.is_index_page(id));
        let mut drop: BTreeSet<PageId> = stale.gone.into_iter().collect();
        drop.extend(
            self.isolated
                .keys()
                .filter(|id| self.catalog.page(id).is_some()),
        );
        if !drop.is_empty() {
            self.catalog.remove_pages(&drop);
            self.generation += 1;
        }
    }

    /// Pages not to fetch: failed, isolated, or (for a folder key) outside its folder. A
    /// whole-wiki member fetches every page: one it cannot open was written against the rules.
    pub(super) fn skipped(&self, id: &PageId) -> bool {
        self.failed.contains_key(id)
            || self.isolated.contains_key(id)
            || !self.keys.is_whole_wiki() && !self.can_open(id)
    }

    /// What to fetch next, with the hash to fetch each by: first the search index (this key's,
    /// else the newest other one it can read), then every page the index does not describe as
    /// it is now, then pages whose indexed path must be confirmed from the page itself. Empty
    /// when the catalog is complete. Pages that failed or are isolated are not asked for again.
    pub fn wanted(&self) -> Vec<(PageId, Digest32)> {
        let manifest = &self.head.snapshot().manifest;
        let entry = |id: &PageId| manifest.pages.get(id).map(|e| (*id, e.hash));
        if !self.index_read {
            let current = self.current_index_id();
            // The best candidate (the first of the lowest key): no sort needed for one.
            let best = self
                .index_pages
                .iter()
                .filter(|id| !self.skipped(id))
                .min_by_key(|id| {
                    (
                        Some(**id) != current,
                        core::cmp::Reverse(manifest.pages.get(id).map_or(0, |e| e.epoch)),
                    )
                });
            if let Some(first) = best.and_then(entry) {
                return vec![first];
            }
        }
        let stale = self
            .catalog
            .staleness(manifest, |id| self.is_index_page(id));
        let mut out: BTreeSet<PageId> = stale
            .changed
            .into_iter()
            .filter(|id| !self.skipped(id) && !self.clash_pending.contains(id))
            .collect();
        // The settings (title), when they changed since read.
        if let Some((id, hash)) = self.newest_settings()
            && self.settings_version != Some(hash)
            && !self.skipped(&id)
        {
            out.insert(id);
        }
        out.extend(self.suspect.iter().filter(|id| !self.skipped(id)));
        out.iter().filter_map(entry).collect()
    }

    /// Whether the catalog describes every live page these keys read (the index was read and
    /// every page it lags behind was indexed): only then may a write store it as the index.
    pub fn catalog_complete(&self) -> bool {
        let index_done = self.index_read || self.index_pages.iter().all(|id| self.skipped(id));
        let stale = self
            .catalog
            .staleness(&self.head.snapshot().manifest, |id| self.is_index_page(id));
        index_done
            && stale
                .changed
                .iter()
                .all(|id| self.skipped(id) || self.clash_pending.contains(id))
    }

    /// Checks an envelope against the signed manifest and decrypts it. An index page becomes
    /// the catalog; any other page is checked against the record rules and kept (`Some`), or
    /// isolated (`None`: see [`Workspace::isolated`]). An envelope that is not the one the
    /// manifest lists is the server's fault: an integrity error, recorded in
    /// [`Workspace::failures`].
    pub fn load(&mut self, page: PageId, envelope: &[u8]) -> Result<Option<&Page>> {
        let manifest = &self.head.snapshot().manifest;
        let Some(entry) = manifest.pages.get(&page).copied() else {
            return Err(Error::input("that page is not in the signed manifest").on_page(page));
        };
        let header = match entry.check_envelope(envelope) {
            Ok(h) => h,
            Err(e) => {
                let err = Error::from(e).on_page(page);
                self.failed.insert(page, err.message.clone());
                return Err(err);
            }
        };
        self.failed.remove(&page);
        let opened = core_crypto::snapshot::open_checked(&self.keys, &page, &header, envelope)
            .map(|(record, prefix)| (record, prefix.to_owned()));
        let (record, prefix) = match opened {
            Ok(r) => r,
            Err(core_crypto::Error::NoAccess(what)) if !self.keys.is_whole_wiki() => {
                return Err(Error::from(core_crypto::Error::NoAccess(what)).on_page(page));
            }
            Err(e) => {
                self.isolate(page, problem_of(&e), None);
                return Ok(None);
            }
        };
        if self.index_pages.contains(&page) {
            self.load_index(page, entry.hash, &record);
            return Ok(None);
        }
        if self.settings_pages.contains(&page) {
            if self.newest_settings().map(|(id, _)| id) != Some(page) {
                return Ok(None);
            }
            match super::WikiSettings::from_record(&record) {
                Ok(settings) => {
                    self.settings = Some(settings);
                    self.settings_version = Some(entry.hash);
                }
                Err(problem) => self.isolate(
                    page,
                    format!("the wiki's settings are unreadable: {problem}"),
                    None,
                ),
            }
            return Ok(None);
        }
        if let Some(problem) = record_problem(&record, &prefix) {
            let path = Some(record.path.clone());
            self.isolate(page, problem, path);
            return Ok(None);
        }
        self.admit(page, entry.hash, record);
        Ok(self.pages.get(&page))
    }

    fn load_index(&mut self, page: PageId, hash: Digest32, record: &PageRecord) {
        let parsed = if record.kind == PageKind::Index && record.path == INDEX_PATH {
            SearchIndex::from_record(record).map_err(|e| problem_of(&e))
        } else {
            Err("a search index record must have the index kind and path".to_owned())
        };
        let index = match parsed {
            Ok(i) => i,
            Err(problem) => {
                self.isolate(
                    page,
                    format!("the search index is unreadable: {problem}"),
                    None,
                );
                if !self.index_pages.iter().any(|id| !self.skipped(id)) {
                    // No readable index: every page gets indexed from its content instead.
                    self.index_read = true;
                }
                return;
            }
        };
        if Some(page) == self.current_index_id() {
            self.stored_index = Some((hash, page_versions(&index)));
        }
        if self.index_read {
            return;
        }
        // Pages already decrypted stay as they are; the rest comes from the index.
        let mut catalog = index;
        for (id, p) in &self.pages {
            catalog.insert(*id, &p.record, p.hash);
        }
        self.catalog = catalog;
        self.index_read = true;
        self.generation += 1;
        self.prune_catalog();
        self.check_claims();
    }

    /// Marks catalog entries the index describes in a way no honest writer produces (a path
    /// the policy refuses, outside the folder of its key, clashing with another) as suspect:
    /// they are fetched and decided from the pages themselves, never from the index alone.
    fn check_claims(&mut self) {
        let manifest = &self.head.snapshot().manifest;
        for (id, p) in self.catalog.pages() {
            if self.confirmed.contains(id) {
                continue;
            }
            let prefix = manifest.pages.get(id).and_then(|e| {
                self.keys
                    .scope_for(&EnvelopeHeader {
                        epoch: e.epoch,
                        scope: e.scope,
                    })
                    .ok()
                    .map(|(_, prefix)| prefix)
            });
            let bad = p.kind == PageKind::Index
                || policy::check(&p.path).is_err()
                || prefix.is_some_and(|pre| !p.path.starts_with(pre));
            if bad {
                self.suspect.insert(*id);
            }
        }
        let groups = policy::clash_groups(
            self.catalog
                .pages()
                .iter()
                .map(|(id, p)| (id, p.path.as_str())),
        );
        for id in groups.into_iter().flatten() {
            if !self.confirmed.contains(&id) {
                self.suspect.insert(id);
            }
        }
    }

    /// Keeps a page that passed every check, and settles a clash with another live page.
    fn admit(&mut self, page: PageId, hash: Digest32, record: PageRecord) {
        let was_suspect = self.suspect.remove(&page);
        self.confirmed.insert(page);
        let differs = self
            .catalog
            .page(&page)
            .is_none_or(|p| p.hash != hash || p.path != record.path);
        if differs {
            self.catalog.insert(page, &record, hash);
            self.generation += 1;
        }
        let path = record.path.clone();
        self.pages.insert(page, Page { record, hash });
        // A page the catalog already listed at this path, and that no clash group named when
        // the catalog was checked (`check_claims`), clashes with nothing: skip the scan over
        // every page (it made loading n pages O(n²)). A path new to the catalog is checked.
        if !differs && !was_suspect {
            return;
        }
        let clash = policy::find_clash(
            self.catalog
                .pages()
                .iter()
                .map(|(id, p)| (id, p.path.as_str())),
            &path,
            Some(page),
        );
        if let Some((other, _)) = clash {
            if self.confirmed.contains(&other) {
                for id in [page, other] {
                    self.clash_pending.insert(id);
                    let claimed = self.pages.get(&id).map(|p| p.record.path.clone());
                    self.isolate(
                        id,
                        "its path clashes with another page's; checking which was written first"
                            .to_owned(),
                        claimed,
                    );
                }
                self.resolve_clashes();
            } else {
                self.suspect.insert(other);
            }
        }
    }

    /// Leaves a page out of the catalog as written against the rules.
    fn isolate(&mut self, page: PageId, problem: String, path: Option<String>) {
        self.confirmed.remove(&page);
        self.suspect.remove(&page);
        if !self.clash_pending.contains(&page) {
            self.pages.remove(&page);
        }
        if self.catalog.page(&page).is_some() {
            self.catalog.remove_pages(&BTreeSet::from([page]));
            self.generation += 1;
        }
        let written = self.provenance.get(&page).cloned();
        self.isolated.insert(
            page,
            Isolated {
                problem,
                path,
                written,
            },
        );
    }

    /// Settles clashing pages once history says who wrote each: in the order they were written
    /// (sequence, then page id), a page stays when its path clashes with no page kept before
    /// it; the others stay isolated, naming the page they clash with.
    pub(super) fn resolve_clashes(&mut self) {
        if self.clash_pending.is_empty()
            || self
                .clash_pending
                .iter()
                .any(|id| !self.provenance.contains_key(id))
        {
            return;
        }
        let mut order: Vec<(u64, PageId)> = self
            .clash_pending
            .iter()
            .map(|id| (self.provenance.get(id).map_or(u64::MAX, |p| p.seq), *id))
            .collect();
        order.sort();
        let pending = std::mem::take(&mut self.clash_pending);
        for (seq, id) in order {
            let Some(page) = self.pages.get(&id).cloned() else {
                continue;
            };
            let clash = policy::find_clash(
                self.catalog
                    .pages()
                    .iter()
                    .filter(|(other, _)| !pending.contains(other) || self.confirmed.contains(other))
                    .map(|(other, p)| (other, p.path.as_str())),
                &page.record.path,
                Some(id),
            );
            match clash {
                None => {
                    self.isolated.remove(&id);
                    self.admit_settled(id, page);
                }
                Some((_, other_path)) => {
                    let problem = format!(
                        "its path clashes with {:?}, written before it (two pages cannot share a path, \
                         up to case and Unicode form, nor be a page and a folder at once)",
                        crate::display::escape(&other_path)
                    );
                    self.pages.remove(&id);
                    let _ = seq;
                    if let Some(iso) = self.isolated.get_mut(&id) {
                        iso.problem = problem;
                    }
                }
            }
        }
    }

    fn admit_settled(&mut self, page: PageId, p: Page) {
        self.confirmed.insert(page);
        self.catalog.insert(page, &p.record, p.hash);
        self.pages.insert(page, p);
        self.generation += 1;
    }

    /// Records that a page listed in the manifest could not be fetched.
    pub fn mark_missing(&mut self, page: PageId, detail: &str) {
        if self.head.snapshot().manifest.pages.contains_key(&page) {
            self.failed.insert(
                page,
                format!(
                    "integrity check failed: the signed manifest lists this page but the server did not return it ({detail})"
                ),
            );
        }
    }

    /// How many pages the stored index at `index_id` does not describe as they are now
    /// (`usize::MAX` when this workspace does not know that index).
    pub(super) fn stored_lag(&self, index_id: PageId) -> usize {
        let manifest = &self.head.snapshot().manifest;
        match &self.stored_index {
            Some((envelope, versions))
                if manifest.pages.get(&index_id).map(|e| e.hash) == Some(*envelope) =>
            {
                let changed = manifest
                    .pages
                    .iter()
                    .filter(|(id, e)| !self.is_index_page(id) && versions.get(id) != Some(&e.hash))
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

    /// Index pages of older epochs or other scopes than this key's current one (removed by the
    /// next write that stores the index).
    pub(super) fn old_index_pages(&self) -> Vec<PageId> {
        let current = self.current_index_id();
        let own_scope = self.keys.current_scope_keys();
        self.index_pages
            .iter()
            .filter(|id| Some(**id) != current)
            .filter(|id| {
                // A folder key removes only its own folder's older indexes.
                self.keys.prefix().is_none()
                    || self
                        .head
                        .snapshot()
                        .manifest
                        .pages
                        .get(id)
                        .is_some_and(|e| {
                            own_scope.iter().all(|k| k.id() != e.scope)
                                && self
                                    .keys
                                    .key_for(&EnvelopeHeader {
                                        epoch: e.epoch,
                                        scope: e.scope,
                                    })
                                    .is_ok()
                        })
            })
            .copied()
            .collect()
    }

    /// Searches the catalog: every word must match a word of the page (its path or text); the
    /// last word also matches as a prefix unless the query ends with a space (search as you
    /// type). Pages whose path matches rank first. Snippets come from pages already decrypted.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let mut q = query.trim().to_owned();
        if !q.is_empty() && !query.ends_with(char::is_whitespace) && !q.ends_with('*') {
            q.push('*');
        }
        let terms: Vec<String> = query
            .split_whitespace()
            .map(|t| t.trim_end_matches('*').to_lowercase())
            .collect();
        let mut hits: Vec<Hit> = self
            .catalog
            .search(&q)
            .into_iter()
            .filter_map(|id| {
                let entry = self.catalog.page(&id)?;
                if entry.kind == PageKind::Index {
                    return None;
                }
                let path_lower = entry.path.to_lowercase();
                let in_path = terms
                    .iter()
                    .filter(|t| path_lower.contains(t.as_str()))
                    .count();
                let text = self.page(&id).and_then(|p| p.record.markdown());
                // Prefer a snippet from the body over one from the front matter.
                let snippet = text
                    .and_then(|t| {
                        let (front, body) = core_crypto::envelope::split_front_matter(t);
                        search::snippet_for(body, &terms)
                            .or_else(|| front.and_then(|f| search::snippet_for(f, &terms)))
                    })
                    .unwrap_or_default();
                Some(Hit {
                    page: id,
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
}

/// The record rules a reader enforces on a page (not an index record) opened with a key of
/// the folder `prefix` (`""` for the whole wiki): `None` when it keeps them.
pub fn record_problem(record: &PageRecord, prefix: &str) -> Option<String> {
    if matches!(record.kind, PageKind::Index | PageKind::Settings) {
        return Some("one of zkwiki's own records stored as an ordinary page".to_owned());
    }
    if let Err(p) = policy::check(&record.path) {
        return Some(format!("its path {}", p.reason()));
    }
    if !record.path.starts_with(prefix) {
        return Some(format!(
            "its path is outside the folder {:?} of the key it was written with",
            crate::display::escape(prefix)
        ));
    }
    if record.kind == PageKind::Markdown && record.markdown().is_none() {
        return Some("it is a markdown page whose text is not UTF-8".to_owned());
    }
    None
}
