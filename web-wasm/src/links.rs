//! Where a link in a page may point, decided before any HTML is written.
//!
//! Policy (the renderer emits nothing else):
//! - `http:`, `https:` and `mailto:` URLs leave the wiki, as written, opened in a new tab with no
//!   referrer;
//! - relative and root-relative URLs and `[[WikiLinks]]` become in-app routes (`#/w/…/p/PATH`) to a
//!   page resolved against the decrypted page list, so a link target is never sent to the server;
//! - `#fragment` becomes a link to a heading id on the same page (`#zk-…`);
//! - everything else (`javascript:`, `data:`, `vbscript:`, `file:`, protocol-relative `//host`,
//!   URLs with control characters, unknown schemes) is dropped: the link text is kept, the link is
//!   not.

use std::collections::BTreeMap;

use crate::html::{decode_percent, slug};

/// Every page path of a wiki, for resolving links.
#[derive(Debug, Default, Clone)]
pub struct PageIndex {
    /// Lowercased path without `.md` → path (the last one inserted; one map type for both
    /// indexes keeps the bundle smaller).
    by_name: BTreeMap<String, Vec<String>>,
    /// Lowercased last segment without `.md` → paths.
    by_base: BTreeMap<String, Vec<String>>,
}

/// The display name of a page path: the path without a trailing `.md`.
pub fn page_name(path: &str) -> &str {
    path.strip_suffix(".md").unwrap_or(path)
}

/// The last segment of a page name (for titles and the tree).
pub fn base_name(path: &str) -> &str {
    let name = page_name(path);
    name.rsplit('/').next().unwrap_or(name)
}

fn key(name: &str) -> String {
    page_name(name.trim().trim_start_matches('/')).to_lowercase()
}

impl PageIndex {
    /// Builds an index over these paths.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for p in paths {
            index.insert(p);
        }
        index
    }

    /// Adds a path.
    pub fn insert(&mut self, path: &str) {
        self.by_name.insert(key(path), vec![path.to_owned()]);
        self.by_base
            .entry(key(base_name(path)))
            .or_default()
            .push(path.to_owned());
    }

    /// The page a wiki-link target names: by full name (case-insensitive, `.md` optional), else by
    /// its last segment when exactly one page has it.
    pub fn resolve(&self, target: &str) -> Option<&str> {
        let k = key(target);
        if let Some(p) = self.by_name.get(&k).and_then(|v| v.last()) {
            return Some(p);
        }
        if k.contains('/') {
            return None;
        }
        match self.by_base.get(&k).map(Vec::as_slice) {
            Some([only]) => Some(only),
            _ => None,
        }
    }

    /// Whether a path with this name (case-insensitive) exists.
    pub fn contains(&self, path: &str) -> bool {
        self.by_name.contains_key(&key(path))
    }
}

/// Where a link goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A page of this wiki; `exists` is false for a link to a page not written yet.
    Page {
        /// The page path (existing, or the path a new page would get).
        path: String,
        /// Whether the page exists.
        exists: bool,
        /// A heading on that page.
        fragment: Option<String>,
    },
    /// A heading on the current page (its element id).
    Fragment(String),
    /// An `http:`, `https:` or `mailto:` URL, to be written as is (escaped).
    External(String),
    /// Not allowed: render the text without a link.
    Blocked,
}

/// The scheme of `url` (lowercased), if it has one.
fn scheme(url: &str) -> Option<String> {
    let colon = url.find(':')?;
    let head = &url[..colon];
    let mut chars = head.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then(|| head.to_ascii_lowercase())
}

/// Joins a relative reference onto the folder of `current`, resolving `.` and `..` (never above
/// the wiki root).
fn join_relative(current: &str, reference: &str) -> String {
    let mut segments: Vec<&str> = if reference.starts_with('/') {
        Vec::new()
    } else {
        let mut s: Vec<&str> = current.split('/').collect();
        s.pop();
        s
    };
    for seg in reference.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments.join("/")
}

/// The wiki path a link to `name` refers to: an existing page, or `name.md` for a new one.
fn page_target(index: &PageIndex, name: &str, fragment: Option<String>) -> Target {
    let name = name.trim();
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == '\\') {
        return Target::Blocked;
    }
    match index.resolve(name) {
        Some(path) => Target::Page {
            path: path.to_owned(),
            exists: true,
            fragment,
        },
        None => {
            let trimmed = name.trim_matches('/');
            let path = if trimmed.ends_with(".md") {
                trimmed.to_owned()
            } else {
                format!("{trimmed}.md")
            };
            if core_crypto::path::check_path(&path).is_err() {
                return Target::Blocked;
            }
            Target::Page {
                path,
                exists: false,
                fragment,
            }
        }
    }
}

fn split_fragment(s: &str) -> (&str, Option<String>) {
    match s.split_once('#') {
        Some((a, f)) if !f.is_empty() => (a, Some(slug(&decode_percent(f)))),
        Some((a, _)) => (a, None),
        None => (s, None),
    }
}

/// Classifies a `[[wiki link]]` target.
pub fn classify_wikilink(index: &PageIndex, target: &str) -> Target {
    let (name, fragment) = split_fragment(target.trim());
    if name.is_empty() {
        return match fragment {
            Some(f) => Target::Fragment(f),
            None => Target::Blocked,
        };
    }
    page_target(index, name, fragment)
}

/// Classifies an ordinary markdown link destination, relative to the page at `current`.
pub fn classify_url(index: &PageIndex, current: &str, url: &str) -> Target {
    let url = url.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r');
    if url.is_empty() || url.chars().any(|c| c.is_control()) {
        return Target::Blocked;
    }
    if let Some(s) = scheme(url) {
        return match s.as_str() {
            "http" | "https" if url[s.len() + 1..].starts_with("//") => {
                Target::External(url.to_owned())
            }
            "mailto" => Target::External(url.to_owned()),
            _ => Target::Blocked,
        };
    }
    if url.starts_with("//") || url.starts_with("\\\\") || url.contains('\\') {
        return Target::Blocked;
    }
    if let Some(f) = url.strip_prefix('#') {
        return if f.is_empty() {
            Target::Blocked
        } else {
            Target::Fragment(slug(&decode_percent(f)))
        };
    }
    let (path_part, fragment) = split_fragment(url);
    let path_part = path_part.split('?').next().unwrap_or_default();
    let joined = join_relative(current, &decode_percent(path_part));
    page_target(index, &joined, fragment)
}

/// Whether an image source may be shown: only inline raster `data:` images, which load nothing
/// from any server (CSP allows `img-src 'self' data:`; `'self'` would leak the name to the server).
pub fn is_inline_image(url: &str) -> bool {
    let url = url.trim();
    let Some(rest) = [
        "data:image/png;base64,",
        "data:image/jpeg;base64,",
        "data:image/gif;base64,",
        "data:image/webp;base64,",
    ]
    .iter()
    .find_map(|p| {
        url.get(..p.len())
            .filter(|h| h.eq_ignore_ascii_case(p))
            .map(|_| &url[p.len()..])
    }) else {
        return false;
    };
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> PageIndex {
        PageIndex::new([
            "Home.md",
            "projects/Plan.md",
            "projects/notes/Ideas.md",
            "Other.md",
        ])
    }

    #[test]
    fn wikilinks_resolve_case_insensitively_and_by_basename() {
        let i = index();
        assert_eq!(i.resolve("home"), Some("Home.md"));
        assert_eq!(i.resolve("Projects/plan"), Some("projects/Plan.md"));
        assert_eq!(i.resolve("Ideas"), Some("projects/notes/Ideas.md"));
        assert_eq!(i.resolve("Nope"), None);
        assert_eq!(
            classify_wikilink(&i, "Plan#Next Steps"),
            Target::Page {
                path: "projects/Plan.md".into(),
                exists: true,
                fragment: Some("next-steps".into())
            }
        );
        assert_eq!(
            classify_wikilink(&i, "New Page"),
            Target::Page {
                path: "New Page.md".into(),
                exists: false,
                fragment: None
            }
        );
        assert_eq!(classify_wikilink(&i, "../../x"), Target::Blocked);
    }

    #[test]
    fn urls_are_allowlisted() {
        let i = index();
        let ext = |u: &str| Target::External(u.to_owned());
        assert_eq!(
            classify_url(&i, "Home.md", "https://example.org/a?b#c"),
            ext("https://example.org/a?b#c")
        );
        assert_eq!(
            classify_url(&i, "Home.md", "HTTP://example.org"),
            ext("HTTP://example.org")
        );
        assert_eq!(
            classify_url(&i, "Home.md", "mailto:a@b.c"),
            ext("mailto:a@b.c")
        );
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "//evil.example/x",
            "\\\\evil.example\\x",
            "http:evil",
            "https:/\\evil",
            "",
        ] {
            assert_eq!(classify_url(&i, "Home.md", bad), Target::Blocked, "{bad:?}");
        }
    }

    #[test]
    fn relative_links_become_pages() {
        let i = index();
        assert_eq!(
            classify_url(&i, "projects/Plan.md", "notes/Ideas.md"),
            Target::Page {
                path: "projects/notes/Ideas.md".into(),
                exists: true,
                fragment: None
            }
        );
        assert_eq!(
            classify_url(&i, "projects/notes/Ideas.md", "../../Other.md#Top"),
            Target::Page {
                path: "Other.md".into(),
                exists: true,
                fragment: Some("top".into())
            }
        );
        assert_eq!(
            classify_url(&i, "projects/Plan.md", "/Home"),
            Target::Page {
                path: "Home.md".into(),
                exists: true,
                fragment: None
            }
        );
        assert_eq!(
            classify_url(&i, "Home.md", "My%20Page.md"),
            Target::Page {
                path: "My Page.md".into(),
                exists: false,
                fragment: None
            }
        );
        assert_eq!(
            classify_url(&i, "Home.md", "#Section Two"),
            Target::Fragment("section-two".into())
        );
    }

    #[test]
    fn only_inline_raster_images() {
        assert!(is_inline_image("data:image/png;base64,iVBORw0KGgo="));
        assert!(!is_inline_image("data:image/svg+xml;base64,PHN2Zz4="));
        assert!(!is_inline_image("data:text/html;base64,PHNjcmlwdD4="));
        assert!(!is_inline_image("data:image/png;base64,\"onerror=alert(1)"));
        assert!(!is_inline_image("https://example.org/a.png"));
        assert!(!is_inline_image("a.png"));
    }
}
