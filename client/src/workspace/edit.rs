//! The everyday writes as one call each (an editor's save, rename, delete), on top of
//! [`Draft`](super::Draft), with the lost-update guard every client uses: a save built on a
//! version that is no longer current is a conflict, never a silent overwrite.

use core_crypto::envelope::VersionNote;
use core_crypto::ids::{Digest32, PageId};
use rand_core::OsRng;

use super::{IndexWrite, Pending, Workspace};
use crate::error::{Error, Result};

impl Workspace {
    fn check_unchanged(&self, page: PageId, base: Option<Digest32>) -> Result<()> {
        let current = self.snapshot().manifest.pages.get(&page).map(|e| e.hash);
        match (current, base) {
            (None, _) => Err(Error::conflict(
                page,
                "this page was deleted after you started editing",
            )),
            (Some(c), Some(b)) if c != b => Err(Error::conflict(
                page,
                "this page was changed after you started editing",
            )),
            _ => Ok(()),
        }
    }

    /// Writes a page: `page` is `None` for a new page (its path must be free); `base` is the
    /// envelope hash the editor started from (a conflict if the page changed since). The kind
    /// (markdown or attachment) follows the path.
    pub fn prepare_put(
        &self,
        page: Option<PageId>,
        path: &str,
        content: Vec<u8>,
        base: Option<Digest32>,
        now_ms: i64,
    ) -> Result<Pending> {
        self.prepare_put_with(page, path, content, base, now_ms, VersionNote::default())
    }

    /// [`Self::prepare_put`] with a note (a message on save, the writer's time zone).
    pub fn prepare_put_with(
        &self,
        page: Option<PageId>,
        path: &str,
        content: Vec<u8>,
        base: Option<Digest32>,
        now_ms: i64,
        note: VersionNote,
    ) -> Result<Pending> {
        let id = match page {
            Some(id) => {
                self.check_unchanged(id, base)?;
                id
            }
            None => PageId::random(&mut OsRng),
        };
        let mut draft = self.draft(now_ms)?;
        draft.set_note(note);
        draft.put_content(id, path, content)?;
        draft.finish(IndexWrite::WhenDue)
    }

    /// Renames a page (same id, so its history follows it); the content is unchanged.
    pub fn prepare_rename(&self, page: PageId, new_path: &str, now_ms: i64) -> Result<Pending> {
        self.prepare_rename_with(page, new_path, now_ms, VersionNote::default())
    }

    /// [`Self::prepare_rename`] with a note (the previous version's note is not carried over).
    pub fn prepare_rename_with(
        &self,
        page: PageId,
        new_path: &str,
        now_ms: i64,
        note: VersionNote,
    ) -> Result<Pending> {
        let mut record = self.record(&page)?.clone();
        let mut draft = self.draft(now_ms)?;
        draft.set_note(note);
        record.path = new_path.to_owned();
        draft.stamp(&mut record);
        draft.put(page, record)?;
        draft.finish(IndexWrite::WhenDue)
    }

    /// Deletes a page (an isolated one too).
    pub fn prepare_delete(&self, page: PageId, now_ms: i64) -> Result<Pending> {
        let mut draft = self.draft(now_ms)?;
        draft.remove(&page)?;
        draft.finish(IndexWrite::WhenDue)
    }
}
