//! The everyday writes as one call each (an editor's save, rename, delete), on top of
//! [`Draft`](super::Draft), with the lost-update guard every client uses: a save built on a
//! version that is no longer current is a conflict, never a silent overwrite.

use core_crypto::envelope::{PageKind, VersionNote};
use core_crypto::ids::{Digest32, PageId};
use rand_core::OsRng;

use super::{Draft, IndexWrite, Pending, Workspace};
use crate::error::{Error, Result};
use crate::links::{self, PageIndex};

/// What a rename with [`Workspace::prepare_rename_updating_links`] does to other pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkUpdate {
    /// The pages whose links are rewritten, in page-id order.
    pub pages: Vec<PageId>,
    /// How many links are rewritten, in all.
    pub links: usize,
    /// Links to the page left as they were, because no reference in their form reaches the new
    /// path (see [`links::Retargeted::kept`]).
    pub kept: usize,
}

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

    /// [`Self::prepare_rename_with`] that also rewrites, in the same commit, the links to the
    /// page in the pages that link to it ([`Draft::rename_updating_links`]).
    pub fn prepare_rename_updating_links(
        &self,
        page: PageId,
        new_path: &str,
        now_ms: i64,
        note: VersionNote,
    ) -> Result<(Pending, LinkUpdate)> {
        let mut draft = self.draft(now_ms)?;
        draft.set_note(note);
        let update = draft.rename_updating_links(page, new_path)?;
        Ok((draft.finish(IndexWrite::WhenDue)?, update))
    }

    /// Deletes a page (an isolated one too).
    pub fn prepare_delete(&self, page: PageId, now_ms: i64) -> Result<Pending> {
        let mut draft = self.draft(now_ms)?;
        draft.remove(&page)?;
        draft.finish(IndexWrite::WhenDue)
    }
}

impl Draft<'_> {
    /// Stages renaming `page` to `new_path` (restamped with this draft's note) and rewriting,
    /// in the same commit, the links to it in the markdown pages that link to it
    /// ([`links::retarget`]: each link keeps its form and the wiki's wikilink order). Every
    /// page of the signed manifest but the attachments the catalog names must be decrypted
    /// first (an error of kind `NotLoaded` names one that is not, as for any write); pages
    /// isolated for breaking the rules are left alone. Only a markdown page's links are followed (as backlinks are). Every client's
    /// "rename and update links" is this.
    pub fn rename_updating_links(&mut self, page: PageId, new_path: &str) -> Result<LinkUpdate> {
        let ws = self.workspace();
        let old = ws.record(&page)?;
        let old_path = old.path.clone();
        let mut update = LinkUpdate::default();
        let mut rewrites = Vec::new();
        if old.kind == PageKind::Markdown {
            // Every page of the signed manifest, decrypted (the catalog may lag behind it).
            let mut markdown: Vec<(PageId, &str, &str)> = Vec::new();
            for id in ws.snapshot().manifest.pages.keys() {
                if ws.is_index_page(id) {
                    continue;
                }
                match ws.record(id) {
                    Ok(r) => {
                        if let Some(text) = r.markdown() {
                            markdown.push((*id, r.path.as_str(), text));
                        }
                    }
                    // An attachment (its kind never changes: it follows the path, and a
                    // rename cannot change it) holds no links: it need not be fetched.
                    Err(e) if e.kind == crate::Kind::NotLoaded => {
                        if ws
                            .catalog()
                            .get(id)
                            .is_some_and(|p| p.kind == PageKind::Attachment)
                        {
                            continue;
                        }
                        return Err(e);
                    }
                    // Isolated for breaking the rules: not trusted, not touched.
                    Err(_) => {}
                }
            }
            let before = PageIndex::new(markdown.iter().map(|(_, p, _)| *p));
            let after = PageIndex::new(
                markdown
                    .iter()
                    .map(|(id, p, _)| if *id == page { new_path } else { *p }),
            );
            let style = ws.wikilink_style();
            for (id, path, text) in markdown {
                if id == page {
                    continue;
                }
                if let Some(r) =
                    links::retarget(&before, &after, style, path, text, &old_path, new_path)
                {
                    update.links += r.rewritten;
                    update.kept += r.kept;
                    if r.rewritten > 0 {
                        update.pages.push(id);
                        rewrites.push((id, path.to_owned(), r.text));
                    }
                }
            }
        }
        let mut record = ws.record(&page)?.clone();
        record.path = new_path.to_owned();
        self.stamp(&mut record);
        self.put(page, record)?;
        for (id, path, text) in rewrites {
            self.put_content(id, &path, text.into_bytes())?;
        }
        Ok(update)
    }
}
