//! Which page paths a wiki holds: one policy for every writer (refuse) and every reader
//! (isolate what a member wrote against it).
//!
//! The format's own rule (`core_crypto::path::check_path`: no empty, `.` or `..` segment, no
//! backslash or control character) keeps a path inside an export folder. This policy adds what
//! every supported file system must be able to hold, since `zkwiki clone`/`export` write pages as
//! files on Linux, macOS and Windows, and what would let a page hide or impersonate another:
//!
//! - nothing under `.zkwiki/` (zkwiki's own records) and no `.git` segment (a clone's git data);
//! - segments of at most 255 bytes; no Windows device names (`CON`, `aux.md`, `LPT1`…), no
//!   `< > : " | ? *`, no segment ending in `.` or a space;
//! - no invisible or bidirectional-control characters (`invoice\u{202e}dm.exe`);
//! - two live pages never share a path up to case and Unicode normalization (macOS and Windows
//!   would write them to one file), and no page is a folder of another (`f.md` and `f.md/g.md`).
//!
//! [`kind_for_path`] decides markdown vs attachment from the path, for every client.

use std::collections::{BTreeMap, BTreeSet};

use core_crypto::envelope::PageKind;
use core_crypto::ids::PageId;

use crate::display;
use crate::error::{Error, Result};

/// Longest path segment, in bytes (ext4, APFS and NTFS all stop at 255).
pub const MAX_SEGMENT_LEN: usize = 255;
/// The folder of zkwiki's own records.
pub const RESERVED_PREFIX: &str = core_crypto::index::RESERVED_PREFIX;

const WINDOWS_DEVICES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Why a path is refused (written as "… because it {reason}").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// Not a valid path of the format (empty, `.`/`..`, backslash, control character, …).
    Format(&'static str),
    /// Under `.zkwiki/`.
    Reserved,
    /// Has a `.git` segment.
    GitFolder,
    /// A segment over [`MAX_SEGMENT_LEN`] bytes.
    LongSegment,
    /// A Windows device name.
    DeviceName,
    /// A character Windows cannot hold in a file name.
    WindowsCharacter,
    /// A segment ending in `.` or a space.
    TrailingDotOrSpace,
    /// An invisible or bidirectional-control character.
    Invisible,
}

impl PathProblem {
    /// Why, in words.
    pub fn reason(self) -> String {
        match self {
            Self::Format(r) => format!("is not a valid path ({r})"),
            Self::Reserved => {
                "is under .zkwiki/, which is reserved for zkwiki's own records".into()
            }
            Self::GitFolder => "has a '.git' segment, which a clone could not hold".into(),
            Self::LongSegment => {
                "has a name longer than 255 bytes, which file systems cannot hold".into()
            }
            Self::DeviceName => {
                "has a name Windows reserves for devices (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
                    .into()
            }
            Self::WindowsCharacter => "has a character Windows cannot hold (< > : \" | ? *)".into(),
            Self::TrailingDotOrSpace => "has a name ending in '.' or a space".into(),
            Self::Invisible => {
                "has an invisible or text-direction character that could disguise it".into()
            }
        }
    }
}

/// Checks a page path against the policy (reader and writer alike).
pub fn check(path: &str) -> core::result::Result<(), PathProblem> {
    core_crypto::path::check_path(path).map_err(|e| match e {
        core_crypto::Error::InvalidPath(r) => PathProblem::Format(r),
        _ => PathProblem::Format("not a valid path"),
    })?;
    if path.starts_with(RESERVED_PREFIX) {
        return Err(PathProblem::Reserved);
    }
    if path.chars().any(display::is_invisible) {
        return Err(PathProblem::Invisible);
    }
    for segment in path.split('/') {
        if segment.eq_ignore_ascii_case(".git") {
            return Err(PathProblem::GitFolder);
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err(PathProblem::LongSegment);
        }
        if segment.contains(['<', '>', ':', '"', '|', '?', '*']) {
            return Err(PathProblem::WindowsCharacter);
        }
        if segment.ends_with('.') || segment.ends_with(' ') {
            return Err(PathProblem::TrailingDotOrSpace);
        }
        let stem = segment.split('.').next().unwrap_or(segment).trim_end();
        if WINDOWS_DEVICES.iter().any(|d| stem.eq_ignore_ascii_case(d)) {
            return Err(PathProblem::DeviceName);
        }
    }
    Ok(())
}

/// Checks a path a user asks to write, as an input error with the reason.
pub fn check_new(path: &str) -> Result<()> {
    check(path).map_err(|p| {
        Error::input(format!(
            "the page path {:?} is refused: it {}",
            display::escape(path),
            p.reason()
        ))
        .with_hint("choose another path, e.g. `notes/Plan.md`")
    })
}

/// Markdown when the path ends in `.md` or `.markdown` (any case); anything else is an
/// attachment. Every client decides a new page's kind with this.
pub fn kind_for_path(path: &str) -> PageKind {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".md") || lower.ends_with(".markdown") {
        PageKind::Markdown
    } else {
        PageKind::Attachment
    }
}

/// The path a markdown page gets from what a person typed: trimmed, without leading or
/// trailing `/`, and ending in `.md` unless it already ends in `.md` or `.markdown`
/// (`Projects/Plan` → `Projects/Plan.md`, `diagram.png` → `diagram.png.md`).
pub fn markdown_path(typed: &str) -> String {
    let t = typed.trim().trim_matches('/');
    if kind_for_path(t) == PageKind::Markdown {
        t.to_owned()
    } else {
        format!("{t}.md")
    }
}

/// The form under which two paths clash on a case-insensitive or normalizing file system:
/// Unicode NFC, then lowercase.
pub fn clash_key(path: &str) -> String {
    // NFC leaves ASCII as it is, and ASCII lowercases byte by byte: most paths skip the tables.
    if path.is_ascii() {
        return path.to_ascii_lowercase();
    }
    nfc(path).to_lowercase()
}

/// Unicode canonical composition (NFC), by the `unicode-normalization` crate (the default
/// feature).
#[cfg(feature = "unicode-normalization")]
fn nfc(path: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    path.nfc().collect()
}

/// Unicode canonical composition (NFC), by the function the driver installed with [`set_nfc`]
/// (built without the `unicode-normalization` feature).
#[cfg(not(feature = "unicode-normalization"))]
fn nfc(path: &str) -> String {
    match NFC.get() {
        Some(f) => f(path),
        None => path.to_owned(),
    }
}

static NFC: std::sync::OnceLock<fn(&str) -> String> = std::sync::OnceLock::new();

/// Installs the platform's NFC for [`clash_key`] in a build without the `unicode-normalization`
/// feature (the browser: `String.prototype.normalize("NFC")`, so the bundle carries no tables);
/// with the feature, the crate's is used and this does nothing. Call it once at start, before
/// any path is compared; later calls are ignored. Canonical decompositions of assigned
/// characters never change between Unicode versions, so two implementations differ only on
/// characters one of them does not know yet.
pub fn set_nfc(f: fn(&str) -> String) {
    let _ = NFC.set(f);
}

/// The live page a path would clash with, if any: the same [`clash_key`], or one of them a
/// folder of the other. `except` is the page being renamed or rewritten.
pub fn find_clash<'a>(
    pages: impl IntoIterator<Item = (&'a PageId, &'a str)>,
    path: &str,
    except: Option<PageId>,
) -> Option<(PageId, String)> {
    let key = clash_key(path);
    pages
        .into_iter()
        .filter(|(id, _)| Some(**id) != except)
        .find(|(_, p)| {
            let other = clash_key(p);
            other == key || is_folder_of(&other, &key) || is_folder_of(&key, &other)
        })
        .map(|(id, p)| (*id, p.to_owned()))
}

fn is_folder_of(folder: &str, path: &str) -> bool {
    path.len() > folder.len() && path.starts_with(folder) && path.as_bytes()[folder.len()] == b'/'
}

/// Every group of live pages whose paths clash with each other (see [`find_clash`]), each
/// group sorted by page id. Linear in the number of pages (times the path depth).
pub fn clash_groups<'a>(
    pages: impl IntoIterator<Item = (&'a PageId, &'a str)>,
) -> Vec<Vec<PageId>> {
    // (The search index's term map type: one more map type costs the browser's bundle.)
    let mut by_key: BTreeMap<String, BTreeSet<PageId>> = BTreeMap::new();
    for (id, p) in pages {
        by_key.entry(clash_key(p)).or_default().insert(*id);
    }
    // Union of a key's pages with the pages of every folder key above it.
    let mut groups: Vec<BTreeSet<PageId>> = Vec::new();
    let mut group_of: BTreeMap<PageId, usize> = BTreeMap::new();
    let mut join = |a: BTreeSet<PageId>, groups: &mut Vec<BTreeSet<PageId>>| {
        let existing: BTreeSet<usize> = a
            .iter()
            .filter_map(|id| group_of.get(id).copied())
            .collect();
        let mut merged = a;
        for g in existing.iter().rev() {
            merged.extend(std::mem::take(&mut groups[*g]));
        }
        let index = groups.len();
        for id in &merged {
            group_of.insert(*id, index);
        }
        groups.push(merged);
    };
    for (key, ids) in &by_key {
        let mut above: Vec<PageId> = Vec::new();
        let mut folder = key.as_str();
        while let Some((parent, _)) = folder.rsplit_once('/') {
            if let Some(pages) = by_key.get(parent) {
                above.extend(pages.iter().copied());
            }
            folder = parent;
        }
        if ids.len() + above.len() > 1 {
            join(ids.iter().copied().chain(above).collect(), &mut groups);
        }
    }
    groups
        .into_iter()
        .filter(|g| g.len() > 1)
        .map(|g| g.into_iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_what_a_file_system_cannot_hold() {
        for ok in [
            "Home.md",
            "notes/Plan.md",
            "Ünïcode/页面.md",
            "with space.md",
            "a.b.c/d-e_f.png",
            "console.md",
            "con-men.md",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        let long = format!("{}.md", "x".repeat(253));
        for (bad, problem) in [
            (".zkwiki/index", PathProblem::Reserved),
            (".zkwiki/git/state", PathProblem::Reserved),
            ("notes/.git/x.md", PathProblem::GitFolder),
            ("notes/.GIT/x.md", PathProblem::GitFolder),
            (long.as_str(), PathProblem::LongSegment),
            ("CON.md", PathProblem::DeviceName),
            ("a/aux", PathProblem::DeviceName),
            ("lpt1.txt", PathProblem::DeviceName),
            ("what?.md", PathProblem::WindowsCharacter),
            ("a:b.md", PathProblem::WindowsCharacter),
            ("dir./x.md", PathProblem::TrailingDotOrSpace),
            ("dir /x.md", PathProblem::TrailingDotOrSpace),
            ("invoice\u{202e}dm.exe", PathProblem::Invisible),
            ("a\u{200b}.md", PathProblem::Invisible),
        ] {
            assert_eq!(check(bad), Err(problem), "{bad:?}");
        }
        assert!(matches!(check("../x.md"), Err(PathProblem::Format(_))));
        assert!(matches!(check("a\u{1b}.md"), Err(PathProblem::Format(_))));
        assert!(check_new("a//b.md").is_err());
        assert_eq!(check(&format!("{}.md", "x".repeat(252))), Ok(()));
    }

    #[test]
    fn kinds_and_markdown_paths() {
        assert_eq!(kind_for_path("a/B.MD"), PageKind::Markdown);
        assert_eq!(kind_for_path("x.markdown"), PageKind::Markdown);
        assert_eq!(kind_for_path("img.png"), PageKind::Attachment);
        assert_eq!(markdown_path(" /Projects/Plan/ "), "Projects/Plan.md");
        assert_eq!(markdown_path("Plan.md"), "Plan.md");
        assert_eq!(markdown_path("diagram.png"), "diagram.png.md");
    }

    #[test]
    fn clashes_by_case_normalization_and_folders() {
        let ids: Vec<PageId> = (1..=6u8).map(|i| PageId([i; 16])).collect();
        let pages = [
            (ids[0], "Home.md"),
            (ids[1], "f.md"),
            (ids[2], "Caf\u{e9}.md"),
            (ids[3], "notes/a.md"),
        ];
        let it = || pages.iter().map(|(id, p)| (id, *p));
        assert_eq!(find_clash(it(), "home.MD", None).map(|c| c.0), Some(ids[0]));
        assert_eq!(find_clash(it(), "Home.md", Some(ids[0])), None);
        assert_eq!(
            find_clash(it(), "f.md/g.md", None).map(|c| c.0),
            Some(ids[1])
        );
        assert_eq!(find_clash(it(), "notes", None).map(|c| c.0), Some(ids[3]));
        // "Café" precomposed vs decomposed (without the feature, with the NFC a driver installs).
        #[cfg(not(feature = "unicode-normalization"))]
        set_nfc(|s| s.replace("e\u{301}", "\u{e9}"));
        assert_eq!(
            find_clash(it(), "cafe\u{301}.md", None).map(|c| c.0),
            Some(ids[2])
        );
        assert_eq!(find_clash(it(), "notes/b.md", None), None);

        let live = [
            (ids[0], "Home.md"),
            (ids[1], "HOME.md"),
            (ids[2], "f.md"),
            (ids[3], "f.md/g.md"),
            (ids[4], "f.md/h/i.md"),
            (ids[5], "other.md"),
        ];
        let groups = clash_groups(live.iter().map(|(id, p)| (id, *p)));
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert!(groups.contains(&vec![ids[0], ids[1]]));
        assert!(groups.contains(&vec![ids[2], ids[3], ids[4]]));
    }
}
