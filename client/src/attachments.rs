//! Attachments beside pages, the rule every client uses (the Otterwiki convention, so an imported
//! Otterwiki keeps its files and links):
//!
//! - a page `Folder/Page.md` keeps its files in the folder `Folder/Page/` ([`folder_of`]); an
//!   upload to a page goes there ([`upload_path`]) and the page lists the attachments directly in
//!   it ([`of_page`]);
//! - Otterwiki links to a file as `/Folder/Page/a/FILE` (and embeds images with
//!   `![..](/Folder/Page/a/img.png)`): that means `Folder/Page/FILE` ([`otterwiki_path`]);
//! - a link or embed in a page resolves to an attachment relative to the page's folder (a leading
//!   `/` starts at the root), else, for a relative reference, inside the page's own attachment
//!   folder (`![](diagram.png)` on `Plan.md` is `Plan/diagram.png`); case-insensitively, since
//!   Otterwiki lowercases page folders on disk but not in links ([`AttachmentIndex::resolve_link`]);
//! - only raster images and PDF are shown inline, recognised by their bytes, never by the name
//!   the writer chose ([`inline_type`]); everything else is offered as a download.

use std::collections::BTreeMap;

use core_crypto::envelope::PageKind;

use crate::error::{Error, Result};
use crate::policy;

/// The folder that holds a page's attachments: its path without `.md` / `.markdown`.
pub fn folder_of(page_path: &str) -> &str {
    let lower = page_path.to_ascii_lowercase();
    for ext in [".md", ".markdown"] {
        if lower.ends_with(ext) {
            return &page_path[..page_path.len() - ext.len()];
        }
    }
    page_path
}

/// Where a file called `file_name` uploaded to the page `page_path` is stored:
/// `folder_of(page)/NAME`, with only the last segment of the name kept (a browser may give a
/// path). A name the path policy refuses, or one that would make a markdown page, is an input
/// error naming why.
pub fn upload_path(page_path: &str, file_name: &str) -> Result<String> {
    let name = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim();
    if name.is_empty() {
        return Err(Error::input("the file has no name").with_hint("rename the file and try again"));
    }
    let path = format!("{}/{name}", folder_of(page_path));
    if policy::kind_for_path(&path) != PageKind::Attachment {
        return Err(Error::input(format!(
            "{name:?} is a markdown file: it would become a page, not an attachment"
        ))
        .with_hint("create it as a page instead, or rename the file"));
    }
    policy::check_new(&path)?;
    Ok(path)
}

/// The attachments of the page at `page_path` among `pages` (`(path, kind)`): those directly in
/// its folder, sorted by path.
pub fn of_page<'a>(
    pages: impl IntoIterator<Item = (&'a str, PageKind)>,
    page_path: &str,
) -> Vec<&'a str> {
    let folder = policy::clash_key(folder_of(page_path));
    let mut out: Vec<&str> = pages
        .into_iter()
        .filter(|(path, kind)| {
            *kind == PageKind::Attachment
                && path
                    .rsplit_once('/')
                    .is_some_and(|(dir, _)| policy::clash_key(dir) == folder)
        })
        .map(|(path, _)| path)
        .collect();
    out.sort_unstable();
    out
}

/// The wiki path an Otterwiki attachment reference means: `Folder/Page/a/FILE` (leading `/` or
/// not) is `Folder/Page/FILE`. `None` when `path` is not of that form.
pub fn otterwiki_path(path: &str) -> Option<String> {
    let path = path.trim_start_matches('/');
    let (rest, file) = path.rsplit_once('/')?;
    let page = rest.strip_suffix("/a")?;
    (!page.is_empty() && !file.is_empty()).then(|| format!("{page}/{file}"))
}

/// The attachments of a wiki by path, for resolving links and embeds.
#[derive(Debug, Default, Clone)]
pub struct AttachmentIndex {
    by_key: BTreeMap<String, String>,
}

impl AttachmentIndex {
    /// An index over these attachment paths.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            by_key: paths
                .into_iter()
                .map(|p| (policy::clash_key(p), p.to_owned()))
                .collect(),
        }
    }

    /// The attachment a link path (already joined onto the linking page's folder and
    /// percent-decoded, no leading `/`) refers to: by its whole path, else as an Otterwiki
    /// `…/a/FILE` reference. Case-insensitive.
    pub fn resolve(&self, path: &str) -> Option<&str> {
        let path = path.trim_start_matches('/');
        self.by_key
            .get(&policy::clash_key(path))
            .or_else(|| otterwiki_path(path).and_then(|p| self.by_key.get(&policy::clash_key(&p))))
            .map(String::as_str)
    }

    /// The attachment a link or embed in the page `from` refers to: `reference` is its
    /// destination, percent-decoded, without `?query` or `#fragment` (see the module's rule).
    pub fn resolve_link(&self, from: &str, reference: &str) -> Option<&str> {
        if self.by_key.is_empty() {
            return None;
        }
        let joined = crate::links::join_relative(from, reference);
        self.resolve(&joined).or_else(|| {
            if reference.starts_with('/') {
                return None;
            }
            let own = crate::links::join_relative(&format!("{}/x", folder_of(from)), reference);
            self.resolve(&own)
        })
    }

    /// Whether the wiki has no attachment.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// The MIME type under which an attachment may be shown inline, recognised by its first bytes:
/// PNG, JPEG, GIF, WebP or PDF. Never SVG or HTML (they can carry script), whatever the name.
pub fn inline_type(bytes: &[u8]) -> Option<&'static str> {
    const KINDS: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
    ];
    KINDS
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, t)| *t)
        .or_else(|| {
            (bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP")
                .then_some("image/webp")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pages_folder_and_uploads() {
        assert_eq!(folder_of("Projects/Plan.md"), "Projects/Plan");
        assert_eq!(folder_of("Notes.MARKDOWN"), "Notes");
        assert_eq!(
            upload_path("Projects/Plan.md", "C:\\fake\\diagram.png").unwrap(),
            "Projects/Plan/diagram.png"
        );
        assert_eq!(upload_path("Home.md", "a b.pdf").unwrap(), "Home/a b.pdf");
        assert!(upload_path("Home.md", "notes.md").is_err());
        assert!(upload_path("Home.md", "  ").is_err());
        assert!(upload_path("Home.md", "con.png").is_err());
        assert!(upload_path("Home.md", "what?.png").is_err());
    }

    #[test]
    fn a_pages_attachments_are_those_in_its_folder() {
        let pages = [
            ("plan/a.png", PageKind::Attachment),
            ("Plan/b.pdf", PageKind::Attachment),
            ("Plan/sub/c.png", PageKind::Attachment),
            ("Plan/page.md", PageKind::Markdown),
            ("Planet/d.png", PageKind::Attachment),
            ("e.png", PageKind::Attachment),
        ];
        assert_eq!(of_page(pages, "Plan.md"), vec!["Plan/b.pdf", "plan/a.png"]);
        assert_eq!(of_page(pages, "Other.md"), Vec::<&str>::new());
    }

    #[test]
    fn otterwiki_references_map_to_wiki_paths() {
        assert_eq!(
            otterwiki_path("/Page/a/img.png").as_deref(),
            Some("Page/img.png")
        );
        assert_eq!(
            otterwiki_path("Folder/Sub Page/a/report.pdf").as_deref(),
            Some("Folder/Sub Page/report.pdf")
        );
        assert_eq!(otterwiki_path("/a/img.png"), None);
        assert_eq!(otterwiki_path("Page/b/img.png"), None);
        assert_eq!(otterwiki_path("Page/a/"), None);
        let index = AttachmentIndex::new(["page/img.png", "Docs/Guide/Report.PDF"]);
        assert_eq!(index.resolve("Page/a/img.png"), Some("page/img.png"));
        assert_eq!(index.resolve("/page/img.png"), Some("page/img.png"));
        assert_eq!(
            index.resolve("docs/guide/a/report.pdf"),
            Some("Docs/Guide/Report.PDF")
        );
        assert_eq!(index.resolve("Page/a/other.png"), None);
        assert_eq!(index.resolve("Page"), None);
        assert_eq!(
            index.resolve_link("Page.md", "img.png"),
            Some("page/img.png")
        );
        assert_eq!(
            index.resolve_link("Page.md", "/Page/a/img.png"),
            Some("page/img.png")
        );
        assert_eq!(
            index.resolve_link("Docs/Guide.md", "Guide/a/report.pdf"),
            Some("Docs/Guide/Report.PDF")
        );
        assert_eq!(
            index.resolve_link("Docs/Guide.md", "report.pdf"),
            Some("Docs/Guide/Report.PDF")
        );
        assert_eq!(index.resolve_link("Other.md", "/img.png"), None);
        assert_eq!(index.resolve_link("Other.md", "img.png"), None);
    }

    #[test]
    fn only_raster_images_and_pdf_are_inline() {
        assert_eq!(inline_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(inline_type(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(inline_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(inline_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(inline_type(b"<!doctype html><script>"), None);
        assert_eq!(inline_type(b""), None);
    }
}
