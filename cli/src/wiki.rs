//! The decrypted view of a verified wiki: keys, the search index as the page catalog (path →
//! page id), and opening pages. Index pages are recognised by their derived page id.

use std::collections::{BTreeMap, BTreeSet};

use core_crypto::envelope::{EnvelopeHeader, PageRecord};
use core_crypto::ids::PageId;
use core_crypto::index::SearchIndex;
use core_crypto::keyring::WikiKeys;
use core_crypto::snapshot::Snapshot;
use core_crypto::state::ManifestEntry;

use crate::error::{CliError, Context, Result};

/// The page id of the search index this key maintains: the whole-wiki index, or for a key
/// limited to one folder, that folder's own index.
pub fn index_page_id(keys: &WikiKeys) -> Result<PageId> {
    if keys.prefix().is_some() {
        return keys
            .current_scope_keys()
            .first()
            .map(|k| k.derive_index_page_id())
            .ok_or_else(|| {
                CliError::new(
                    crate::error::ErrorKind::Auth,
                    "this key holds no current key",
                )
            });
    }
    let secret = keys.current_epoch_secret().map_err(|_| {
        CliError::new(
            crate::error::ErrorKind::Auth,
            "this key is limited to one folder, and this command needs the whole wiki",
        )
    })?;
    Ok(secret.derive_scope(keys.epoch(), "").derive_index_page_id())
}

/// Whether `id` is the search index of the scope and epoch its entry names.
pub fn is_index_page(keys: &WikiKeys, id: &PageId, entry: &ManifestEntry) -> bool {
    keys.key_for(&EnvelopeHeader {
        epoch: entry.epoch,
        scope: entry.scope,
    })
    .is_ok_and(|k| k.derive_index_page_id() == *id)
}

/// The set of index pages in a manifest.
pub fn index_pages(keys: &WikiKeys, snapshot: &Snapshot) -> BTreeSet<PageId> {
    snapshot
        .manifest
        .pages
        .iter()
        .filter(|(id, e)| is_index_page(keys, id, e))
        .map(|(id, _)| *id)
        .collect()
}

/// Opens one page (checked against the manifest first).
pub fn open(
    snapshot: &Snapshot,
    blobs: &BTreeMap<PageId, Vec<u8>>,
    keys: &WikiKeys,
    id: &PageId,
) -> Result<PageRecord> {
    let blob = blobs
        .get(id)
        .ok_or_else(|| CliError::integrity(format!("page {id} is missing")))?;
    snapshot
        .open_page(keys, id, blob)
        .context(format!("decrypting page {id}"))
}

/// The index, brought up to date with the manifest.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// Every page's path and metadata, and the search terms.
    pub index: SearchIndex,
    /// Where the current index lives.
    pub index_id: PageId,
    /// Index pages of other epochs or scopes (removed at the next write).
    pub old_index_ids: Vec<PageId>,
    /// How many pages the stored index does not describe as they are (written since, or gone);
    /// `usize::MAX` when there is no stored index at `index_id`. Readers re-index those pages, so
    /// writers of a large wiki let it grow (`core_crypto::index::index_due`).
    pub stored_lag: usize,
}

impl Catalog {
    /// Loads the stored index (current epoch, else the newest older one) and re-indexes pages
    /// that changed since it was written.
    pub fn load(
        snapshot: &Snapshot,
        blobs: &BTreeMap<PageId, Vec<u8>>,
        keys: &WikiKeys,
        on_reindex: &mut dyn FnMut(usize),
    ) -> Result<Self> {
        let index_id = index_page_id(keys)?;
        let all_index = index_pages(keys, snapshot);
        let mut index = None;
        let mut candidates: Vec<PageId> = all_index.iter().copied().collect();
        // The current one first, then older epochs, newest first.
        candidates.sort_by_key(|id| {
            (
                *id != index_id,
                std::cmp::Reverse(snapshot.manifest.pages.get(id).map_or(0, |e| e.epoch)),
            )
        });
        if let Some(id) = candidates.first() {
            let record = open(snapshot, blobs, keys, id)?;
            index = Some(SearchIndex::from_record(&record).context("reading the search index")?);
        }
        let found = index.is_some();
        let mut index = index.unwrap_or_default();
        let staleness = index.staleness(&snapshot.manifest, |id| all_index.contains(id));
        let stored_lag = if found && all_index.contains(&index_id) {
            staleness.changed.len() + staleness.gone.len()
        } else {
            usize::MAX
        };
        index.remove_pages(&staleness.gone.iter().copied().collect());
        on_reindex(staleness.changed.len());
        for id in &staleness.changed {
            // A folder-scoped key indexes only what it can open; the rest stays invisible to it.
            let readable = snapshot.manifest.pages.get(id).is_some_and(|e| {
                keys.key_for(&EnvelopeHeader {
                    epoch: e.epoch,
                    scope: e.scope,
                })
                .is_ok()
            });
            if !readable {
                continue;
            }
            let record = open(snapshot, blobs, keys, id)?;
            let hash = snapshot
                .manifest
                .pages
                .get(id)
                .map(|e| e.hash)
                .ok_or_else(|| CliError::integrity("manifest changed while reading"))?;
            index.insert(*id, &record, hash);
        }
        Ok(Self {
            index,
            index_id,
            old_index_ids: all_index.into_iter().filter(|id| *id != index_id).collect(),
            stored_lag,
        })
    }

    /// The page at `path`. With several (two writers created the same path concurrently), the
    /// most recently written.
    pub fn find(&self, path: &str) -> Option<PageId> {
        self.index
            .pages()
            .iter()
            .filter(|(_, p)| p.path == path)
            .max_by_key(|(_, p)| p.written_at_ms)
            .map(|(id, _)| *id)
    }

    /// Like [`Self::find`], or a not-found error naming the path.
    pub fn require(&self, path: &str) -> Result<PageId> {
        self.find(path).ok_or_else(|| {
            CliError::not_found(format!("no page {path:?} in this wiki"))
                .with_hint("see `zkwiki ls` for the pages")
        })
    }
}

/// Decrypts every page but the index pages.
pub fn open_all(
    snapshot: &Snapshot,
    blobs: &BTreeMap<PageId, Vec<u8>>,
    keys: &WikiKeys,
    on_page: &mut dyn FnMut(),
) -> Result<BTreeMap<PageId, PageRecord>> {
    let skip = index_pages(keys, snapshot);
    let mut out = BTreeMap::new();
    for id in snapshot.manifest.pages.keys() {
        on_page();
        if skip.contains(id) {
            continue;
        }
        out.insert(*id, open(snapshot, blobs, keys, id)?);
    }
    Ok(out)
}

/// Milliseconds since 1970 now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A UTC timestamp `YYYY-MM-DD HH:MM:SS` for people.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Markdown when the path ends in `.md` or `.markdown`; anything else is an attachment.
pub fn kind_for_path(path: &str) -> core_crypto::envelope::PageKind {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".md") || lower.ends_with(".markdown") {
        core_crypto::envelope::PageKind::Markdown
    } else {
        core_crypto::envelope::PageKind::Attachment
    }
}

/// Checks a path a user wants to write.
pub fn check_user_path(path: &str) -> Result<()> {
    core_crypto::path::check_path(path)?;
    if core_crypto::index::is_reserved_path(path) {
        return Err(
            CliError::usage(format!("{path:?} is reserved for zkwiki's own records"))
                .with_hint("choose a path that does not start with `.zkwiki/`"),
        );
    }
    if path.split('/').any(|s| s.eq_ignore_ascii_case(".git")) {
        return Err(CliError::usage(format!("{path:?} has a '.git' segment"))
            .with_hint("choose another path: '.git' folders cannot be exported safely"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_civil_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_time(-1000), "1969-12-31 23:59:59");
    }

    #[test]
    fn kinds_and_user_paths() {
        assert_eq!(
            kind_for_path("a/B.MD"),
            core_crypto::envelope::PageKind::Markdown
        );
        assert_eq!(
            kind_for_path("x.markdown"),
            core_crypto::envelope::PageKind::Markdown
        );
        assert_eq!(
            kind_for_path("img.png"),
            core_crypto::envelope::PageKind::Attachment
        );
        assert!(check_user_path("notes/Plan.md").is_ok());
        for bad in [
            ".zkwiki/index",
            "a/.git/config",
            "../x.md",
            "/abs.md",
            "a//b.md",
        ] {
            assert!(check_user_path(bad).is_err(), "{bad}");
        }
    }
}
