//! Links between pages, found in decrypted markdown on the reader's side (the server never sees
//! a link target): which pages a page links to, and so which pages link to a page (backlinks).
//!
//! The rule, the same for every client:
//! - `[[Target]]` and `[[Target|Label]]` name a page by its path without `.md` (or with it),
//!   case-insensitively, or by its last segment alone when exactly one page has that name;
//!   a `#heading` after the target is ignored; a wiki whose settings say so (Otterwiki's
//!   default, [`WikilinkStyle::LabelFirst`]) writes `[[Label|Target]]` instead;
//! - `[text](dest)`, `![alt](dest)` and reference definitions `[label]: dest` link to `dest`
//!   relative to the linking page's folder (`../` goes up, a leading `/` starts at the wiki root),
//!   percent-decoded, without its `?query` and `#fragment`, resolved like a wiki link's target;
//!   URLs with a scheme (`https:`, `mailto:`), `//host` and `#fragment`-only links are not pages;
//! - nothing in front matter, fenced code blocks (```` ``` ```` or `~~~`) or inline code spans
//!   is a link; a backslash escapes the next character.
//!
//! This is a scanner, not a CommonMark parser: indented code blocks and raw HTML are read as
//! text, so a link written there counts. Names compare in Unicode NFC, lowercased.

use std::collections::BTreeMap;
use std::ops::Range;

/// The order of the two parts of a labelled wikilink, a per-wiki setting (Otterwiki's
/// `WIKILINK_STYLE`): every client of a wiki reads its links the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WikilinkStyle {
    /// `[[Target|Label]]` (zkwiki's default, as in Obsidian and GitHub wikis).
    #[default]
    TargetFirst,
    /// `[[Label|Target]]` (Otterwiki's default).
    LabelFirst,
}

impl WikilinkStyle {
    /// The setting's text: `target|label` or `label|target`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TargetFirst => "target|label",
            Self::LabelFirst => "label|target",
        }
    }

    /// Reads [`Self::as_str`]'s text.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::TargetFirst, Self::LabelFirst]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// The style an Otterwiki configuration names: its `WIKILINK_STYLE` is empty (the
    /// default, label first) or `LINKTITLE` / `PAGENAMETITLE` (target first), read as
    /// Otterwiki reads it (case and `_` ignored).
    pub fn from_otterwiki(setting: &str) -> Self {
        let s = setting.trim().to_ascii_uppercase().replace('_', "");
        if matches!(s.as_str(), "LINKTITLE" | "PAGENAMETITLE") {
            Self::TargetFirst
        } else {
            Self::LabelFirst
        }
    }

    /// The inside of `[[..]]` as (target, label): the label is `None` without a `|`.
    pub fn split(self, inner: &str) -> (&str, Option<&str>) {
        match inner.split_once('|') {
            None => (inner, None),
            Some((a, b)) => match self {
                Self::TargetFirst => (a, Some(b)),
                Self::LabelFirst => (b, Some(a)),
            },
        }
    }

    /// A link a markdown parser read as `[[first|second]]` (target first, as CommonMark
    /// extensions do) as (target, label) in this wiki's style.
    pub fn orient<'a>(self, first: &'a str, second: &'a str) -> (&'a str, &'a str) {
        match self {
            Self::TargetFirst => (first, second),
            Self::LabelFirst => (second, first),
        }
    }
}

/// How a link was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// `[[Target]]` or `[[Target|Label]]`.
    Wiki,
    /// A markdown link, image or reference definition destination.
    Url,
}

/// A link as written in a page (not yet resolved against the wiki's pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// How it was written.
    pub kind: LinkKind,
    /// The wiki link's target (without the label) or the link destination, unescaped.
    pub target: String,
}

impl Link {
    fn wiki(target: &str) -> Self {
        Self {
            kind: LinkKind::Wiki,
            target: target.trim().to_owned(),
        }
    }

    fn url(dest: &str) -> Self {
        Self {
            kind: LinkKind::Url,
            target: unescape(dest.trim()),
        }
    }
}

/// Every link written in `markdown`, in order (front matter, code blocks and code spans
/// skipped), wikilinks read target first.
pub fn extract(markdown: &str) -> Vec<Link> {
    extract_in(markdown, WikilinkStyle::default())
}

/// [`extract`] for a wiki whose wikilinks are written in `style`.
pub fn extract_in(markdown: &str, style: WikilinkStyle) -> Vec<Link> {
    extract_spans(markdown, style)
        .into_iter()
        .map(|(link, _)| link)
        .collect()
}

/// [`extract_in`] with where each link's target is written: the byte range in `markdown` of a
/// wikilink's target (without its label, `|` and surrounding spaces) or of a link's
/// destination (without `<>`), which [`retarget`] replaces.
pub fn extract_spans(markdown: &str, style: WikilinkStyle) -> Vec<(Link, Range<usize>)> {
    let (_, body) = core_crypto::envelope::split_front_matter(markdown);
    let base = markdown.len() - body.len();
    let mut out = Vec::new();
    // The paragraph being gathered: a byte range of `body` (its lines are contiguous).
    let mut para: Option<(usize, usize)> = None;
    let flush = |para: &mut Option<(usize, usize)>, out: &mut Vec<(Link, Range<usize>)>| {
        if let Some((start, end)) = para.take() {
            scan_inline(&body[start..end], base + start, style, out);
        }
    };
    let mut fence: Option<(u8, usize)> = None;
    let mut at = 0;
    for raw in body.split_inclusive('\n') {
        let line_start = at;
        at += raw.len();
        let line = raw
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(raw);
        let text = line.trim_start_matches(' ');
        let indent = line.len() - text.len();
        if let Some((c, n)) = fence {
            let run = run_len(text.as_bytes(), 0, c);
            if indent <= 3 && run >= n && text[run..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indent <= 3
            && let Some(&c) = text.as_bytes().first()
            && (c == b'`' || c == b'~')
        {
            let run = run_len(text.as_bytes(), 0, c);
            if run >= 3 && !(c == b'`' && text[run..].contains('`')) {
                flush(&mut para, &mut out);
                fence = Some((c, run));
                continue;
            }
        }
        if text.trim().is_empty() {
            flush(&mut para, &mut out);
            continue;
        }
        if indent <= 3
            && let Some(dest) = reference_definition(text)
        {
            let start = base + line_start + indent + offset_in(text, dest);
            out.push((Link::url(dest), start..start + dest.len()));
            continue;
        }
        para = Some((para.map_or(line_start, |(start, _)| start), at));
    }
    flush(&mut para, &mut out);
    out
}

/// Where `inner` (a slice of `outer`) starts in it.
fn offset_in(outer: &str, inner: &str) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

fn run_len(b: &[u8], from: usize, c: u8) -> usize {
    b[from.min(b.len())..]
        .iter()
        .take_while(|&&x| x == c)
        .count()
}

/// `[label]: dest …` → `dest` (not a footnote `[^1]:`, not a wiki link).
fn reference_definition(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('[')?;
    if rest.starts_with('[') || rest.starts_with('^') {
        return None;
    }
    let close = rest.find("]:")?;
    if rest[..close].contains(['[', ']']) || rest[..close].trim().is_empty() {
        return None;
    }
    let after = rest[close + 2..].trim_start();
    let dest = match after.strip_prefix('<') {
        Some(inner) => &inner[..inner.find('>')?],
        None => after.split_whitespace().next()?,
    };
    (!dest.is_empty()).then_some(dest)
}

/// Links in one paragraph (code spans may cross its lines, not a blank line), which starts at
/// byte `base` of the page.
fn scan_inline(text: &str, base: usize, style: WikilinkStyle, out: &mut Vec<(Link, Range<usize>)>) {
    let b = text.as_bytes();
    let span = |part: &str| {
        let start = base + offset_in(text, part);
        start..start + part.len()
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'`' => {
                let n = run_len(b, i, b'`');
                i = closing_backticks(b, i + n, n).unwrap_or(i + n);
            }
            b'[' if b.get(i + 1) == Some(&b'[') => match wiki_link(text, i + 2, style) {
                Some((target, end)) => {
                    out.push((Link::wiki(target), span(target)));
                    i = end;
                }
                None => i += 1,
            },
            b'[' => {
                if let Some(close) = matching_bracket(b, i)
                    && b.get(close + 1) == Some(&b'(')
                    && let Some(dest) = destination(text, close + 2)
                {
                    out.push((Link::url(dest), span(dest)));
                }
                // Scan the link text too: an image inside a link is a link of its own.
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// The end of the code span whose opening run of `n` backticks ends at `from`: just after a
/// closing run of exactly `n` backticks.
fn closing_backticks(b: &[u8], from: usize, n: usize) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        if b[j] == b'`' {
            let m = run_len(b, j, b'`');
            if m == n {
                return Some(j + m);
            }
            j += m;
        } else {
            j += 1;
        }
    }
    None
}

/// `[[target|label]]` (in `style`'s order) starting after the `[[` at `from`: the target as
/// written (trimmed; a slice of `text`) and where scanning goes on.
fn wiki_link(text: &str, from: usize, style: WikilinkStyle) -> Option<(&str, usize)> {
    let close = from + text[from..].find("]]")?;
    let inner = &text[from..close];
    if inner.contains(['\n', '[', ']']) {
        return None;
    }
    let (target, _) = style.split(inner);
    let target = target.trim();
    if target.is_empty() {
        return None;
    }
    Some((target, close + 2))
}

/// The `]` closing the `[` at `open` (brackets nest; backslash escapes).
fn matching_bracket(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = open;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 1,
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            b'\n' if b.get(j + 1) == Some(&b'\n') => return None,
            _ => {}
        }
        j += 1;
    }
    None
}

/// The destination of `(dest "title")` starting after the `(` at `from`, if the parenthesis
/// closes as a link's does.
fn destination(text: &str, from: usize) -> Option<&str> {
    let b = text.as_bytes();
    let skip_ws = |mut j: usize| {
        while j < b.len() && matches!(b[j], b' ' | b'\t' | b'\n') {
            j += 1;
        }
        j
    };
    let start = skip_ws(from);
    let (dest, mut j) = if b.get(start) == Some(&b'<') {
        let end = start + 1 + text[start + 1..].find(['>', '\n'])?;
        if b[end] != b'>' {
            return None;
        }
        (&text[start + 1..end], end + 1)
    } else {
        let mut depth = 0usize;
        let mut j = start;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 1,
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                b' ' | b'\t' | b'\n' => break,
                c if c.is_ascii_control() => return None,
                _ => {}
            }
            j += 1;
        }
        (&text[start..j.min(b.len())], j)
    };
    j = skip_ws(j);
    if let Some(&q) = b.get(j)
        && matches!(q, b'"' | b'\'' | b'(')
    {
        let closer = if q == b'(' { b')' } else { q };
        j += 1;
        while j < b.len() && b[j] != closer {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        j = skip_ws(j + 1);
    }
    (b.get(j) == Some(&b')') && !dest.is_empty()).then_some(dest)
}

/// Removes backslash escapes before ASCII punctuation.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && n.is_ascii_punctuation()
        {
            out.push(n);
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// `%XX` sequences decoded (invalid UTF-8 replaced), everything else unchanged.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The display name of a page path: without a trailing `.md`.
pub fn page_name(path: &str) -> &str {
    path.strip_suffix(".md").unwrap_or(path)
}

/// The last segment of a page's name (a title for lists and trees).
pub fn base_name(path: &str) -> &str {
    let name = page_name(path);
    name.rsplit('/').next().unwrap_or(name)
}

fn key(name: &str) -> String {
    crate::policy::clash_key(page_name(name.trim().trim_start_matches('/')))
}

/// The pages of a wiki by name, for resolving links.
#[derive(Debug, Default, Clone)]
pub struct PageIndex {
    by_name: BTreeMap<String, String>,
    by_base: BTreeMap<String, Vec<String>>,
}

impl PageIndex {
    /// An index over these page paths.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for p in paths {
            index.by_name.insert(key(p), p.to_owned());
            index
                .by_base
                .entry(key(base_name(p)))
                .or_default()
                .push(p.to_owned());
        }
        index
    }

    /// The page a name refers to: by its whole name (`.md` optional, case-insensitive), else
    /// by its last segment when exactly one page has it.
    pub fn resolve(&self, name: &str) -> Option<&str> {
        let k = key(name);
        if let Some(p) = self.by_name.get(&k) {
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
}

/// Whether `url` starts with a URI scheme (`https:`, `mailto:`).
fn has_scheme(url: &str) -> bool {
    let Some(colon) = url.find(':') else {
        return false;
    };
    let mut chars = url[..colon].chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `reference` joined onto the folder of the page `from` (`.` and `..` resolved, never above
/// the root; a leading `/` starts at the root).
pub fn join_relative(from: &str, reference: &str) -> String {
    let mut segments: Vec<&str> = if reference.starts_with('/') {
        Vec::new()
    } else {
        let mut s: Vec<&str> = from.split('/').collect();
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

/// The existing page a link in the page at `from` goes to, if any.
pub fn resolve<'i>(index: &'i PageIndex, from: &str, link: &Link) -> Option<&'i str> {
    let target = link.target.trim();
    match link.kind {
        LinkKind::Wiki => {
            let name = target.split('#').next().unwrap_or_default();
            if name.trim().is_empty() {
                return None;
            }
            index.resolve(name)
        }
        LinkKind::Url => {
            if target.starts_with('#')
                || target.starts_with("//")
                || target.contains('\\')
                || has_scheme(target)
            {
                return None;
            }
            let path = target.split(['#', '?']).next().unwrap_or_default();
            let joined = join_relative(from, &percent_decode(path));
            if joined.is_empty() {
                return None;
            }
            index.resolve(&joined)
        }
    }
}

/// How many links in `markdown` (the page at `from`, in a wiki writing wikilinks in `style`)
/// go to the page `target`.
pub fn count_links_to(
    index: &PageIndex,
    style: WikilinkStyle,
    from: &str,
    markdown: &str,
    target: &str,
) -> usize {
    extract_in(markdown, style)
        .iter()
        .filter(|l| resolve(index, from, l) == Some(target))
        .count()
}

/// What [`retarget`] did to one page's markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retargeted {
    /// The markdown with the links rewritten.
    pub text: String,
    /// How many links were rewritten.
    pub rewritten: usize,
    /// Links to the old page left as they were, because no reference written in their form
    /// would reach the new path (a wikilink to a name with `|` or brackets).
    pub kept: usize,
}

/// The markdown of the page at `from` (in a wiki writing wikilinks in `style`) with every link
/// that went to the page `old` (resolved in `before`, the wiki's pages before the move) made to
/// go to `new` (resolved in `after`, the pages once moved); `None` when no link went to `old`.
///
/// Each link keeps its form: a wikilink its label, `#heading` and, when it named the page by
/// its last segment alone, that form if it still names the page unambiguously; a markdown link
/// its `?query#fragment`, whether it was relative (then rewritten relative to `from`'s folder)
/// or started at the root, and whether it spelled `.md`. A rewritten reference is kept only if
/// it resolves to `new` by the same rule readers use, so a rewrite never points elsewhere.
pub fn retarget(
    before: &PageIndex,
    after: &PageIndex,
    style: WikilinkStyle,
    from: &str,
    markdown: &str,
    old: &str,
    new: &str,
) -> Option<Retargeted> {
    let mut text = String::with_capacity(markdown.len() + 64);
    let (mut copied, mut rewritten, mut kept) = (0, 0, 0);
    for (link, range) in extract_spans(markdown, style) {
        if resolve(before, from, &link) != Some(old) {
            continue;
        }
        let written = &markdown[range.clone()];
        let reference = match link.kind {
            LinkKind::Wiki => wiki_reference(after, written, new),
            LinkKind::Url => url_reference(from, written, new),
        };
        let reaches = |r: &String| {
            let candidate = match link.kind {
                LinkKind::Wiki => Link::wiki(r),
                LinkKind::Url => Link::url(r),
            };
            resolve(after, from, &candidate) == Some(new)
        };
        match reference.filter(reaches) {
            Some(r) => {
                text.push_str(&markdown[copied..range.start]);
                text.push_str(&r);
                copied = range.end;
                rewritten += 1;
            }
            None => kept += 1,
        }
    }
    if rewritten + kept == 0 {
        return None;
    }
    text.push_str(&markdown[copied..]);
    Some(Retargeted {
        text,
        rewritten,
        kept,
    })
}

/// A wikilink target naming `new`, in the form `written` had (see [`retarget`]).
fn wiki_reference(after: &PageIndex, written: &str, new: &str) -> Option<String> {
    let (name, heading) = match written.find('#') {
        Some(i) => written.split_at(i),
        None => (written, ""),
    };
    let name = name.trim();
    let short = base_name(new);
    let chosen = if !name.contains('/') && after.resolve(short) == Some(new) {
        short.to_owned()
    } else {
        let full = page_name(new);
        if name.starts_with('/') {
            format!("/{full}")
        } else {
            full.to_owned()
        }
    };
    if chosen.contains(['[', ']', '|', '#', '\n']) {
        return None;
    }
    Some(format!("{chosen}{heading}"))
}

/// A markdown link destination going to `new` from the page at `from`, in the form `written`
/// had (see [`retarget`]).
fn url_reference(from: &str, written: &str, new: &str) -> Option<String> {
    let cut = written.find(['?', '#']).unwrap_or(written.len());
    let (path, suffix) = written.split_at(cut);
    let decoded = percent_decode(&unescape(path));
    let name = if decoded.to_ascii_lowercase().ends_with(".md") {
        new
    } else {
        page_name(new)
    };
    let reference = if path.starts_with('/') {
        format!("/{name}")
    } else {
        relative_to(from, name)
    };
    Some(format!("{}{suffix}", percent_encode_path(&reference)))
}

/// `target` (a path from the wiki's root) as a reference relative to the folder of the page
/// `from`: `../` for each folder to leave, then the rest.
fn relative_to(from: &str, target: &str) -> String {
    let mut folder: Vec<&str> = from.split('/').collect();
    folder.pop();
    let target: Vec<&str> = target.split('/').collect();
    let common = folder
        .iter()
        .zip(&target)
        .take_while(|(a, b)| a == b)
        .count()
        .min(target.len() - 1);
    let mut parts = vec![".."; folder.len() - common];
    parts.extend(&target[common..]);
    parts.join("/")
}

/// A path made safe as a markdown link destination: spaces, `%`, brackets, parentheses,
/// quotes, `\\`, `?`, `#` and control characters percent-encoded (other text kept as it is).
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii_control()
            || matches!(
                c,
                ' ' | '%' | '(' | ')' | '<' | '>' | '[' | ']' | '\\' | '?' | '#' | '"' | '\''
            )
        {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(md: &str) -> Vec<(LinkKind, String)> {
        extract(md)
            .into_iter()
            .map(|l| (l.kind, l.target))
            .collect()
    }

    fn wiki(t: &str) -> (LinkKind, String) {
        (LinkKind::Wiki, t.to_owned())
    }

    fn url(t: &str) -> (LinkKind, String) {
        (LinkKind::Url, t.to_owned())
    }

    #[test]
    fn retarget_rewrites_links_to_the_moved_page_in_their_own_form() {
        let before = PageIndex::new(["Home.md", "Notes/Plan.md", "Notes/Other.md", "Top.md"]);
        let after = PageIndex::new(["Home.md", "Archive/Old plan.md", "Notes/Other.md", "Top.md"]);
        let md = "---\nsee: [[Plan]]\n---\n\
                  [[Plan]], [[Notes/Plan|the plan]], [[plan#Goals]], [[Top]]\n\n\
                  [rel](Plan.md?x=1#goals) [abs](/Notes/Plan) ![img](../Notes/Plan.md)\n\n\
                  `[[Plan]]` and [other](Other.md)\n\n\
                  [ref]: <Plan.md>\n";
        let out = retarget(
            &before,
            &after,
            WikilinkStyle::TargetFirst,
            "Notes/Other.md",
            md,
            "Notes/Plan.md",
            "Archive/Old plan.md",
        )
        .unwrap();
        assert_eq!(
            out.text,
            "---\nsee: [[Plan]]\n---\n\
             [[Old plan]], [[Archive/Old plan|the plan]], [[Old plan#Goals]], [[Top]]\n\n\
             [rel](../Archive/Old%20plan.md?x=1#goals) [abs](/Archive/Old%20plan) \
             ![img](../Archive/Old%20plan.md)\n\n\
             `[[Plan]]` and [other](Other.md)\n\n\
             [ref]: <../Archive/Old%20plan.md>\n"
        );
        assert_eq!((out.rewritten, out.kept), (7, 0));
        // Every link that went to the old page goes to the new one, and no other link moved.
        for (l, _) in extract_spans(&out.text, WikilinkStyle::TargetFirst) {
            let to = resolve(&after, "Notes/Other.md", &l);
            assert!(to != Some("Notes/Plan.md"), "{l:?}");
        }
        assert_eq!(
            count_links_to(
                &after,
                WikilinkStyle::TargetFirst,
                "Notes/Other.md",
                &out.text,
                "Archive/Old plan.md"
            ),
            7
        );
        // A page with no link to it: nothing to do.
        assert_eq!(
            retarget(
                &before,
                &after,
                WikilinkStyle::TargetFirst,
                "Home.md",
                "[[Top]]",
                "Notes/Plan.md",
                "Archive/Old plan.md"
            ),
            None
        );
    }

    #[test]
    fn retarget_keeps_the_label_in_either_wikilink_order() {
        let before = PageIndex::new(["Home.md", "Guide.md"]);
        let after = PageIndex::new(["Home.md", "Docs/Manual.md"]);
        let run = |style, md: &str| {
            retarget(
                &before,
                &after,
                style,
                "Home.md",
                md,
                "Guide.md",
                "Docs/Manual.md",
            )
            .map(|r| r.text)
        };
        assert_eq!(
            run(
                WikilinkStyle::LabelFirst,
                "[[Read this|Guide]] [[Guide]] [[Guide|Home]]"
            )
            .unwrap(),
            "[[Read this|Manual]] [[Manual]] [[Guide|Home]]"
        );
        assert_eq!(
            run(
                WikilinkStyle::TargetFirst,
                "[[Guide|Read this]] [[ Guide | x ]]"
            )
            .unwrap(),
            "[[Manual|Read this]] [[ Manual | x ]]"
        );
        // The short name is used only while it names the page alone.
        let crowded = PageIndex::new(["Home.md", "Docs/Manual.md", "Old/Manual.md"]);
        let out = retarget(
            &before,
            &crowded,
            WikilinkStyle::TargetFirst,
            "Home.md",
            "[[Guide]]",
            "Guide.md",
            "Docs/Manual.md",
        )
        .unwrap();
        assert_eq!(out.text, "[[Docs/Manual]]");
        // A name a wikilink cannot hold: that link is kept, and counted.
        let odd = PageIndex::new(["Home.md", "a|b.md"]);
        let out = retarget(
            &before,
            &odd,
            WikilinkStyle::TargetFirst,
            "Home.md",
            "[[Guide]] [g](Guide.md)",
            "Guide.md",
            "a|b.md",
        )
        .unwrap();
        assert_eq!(
            (out.text.as_str(), out.rewritten, out.kept),
            ("[[Guide]] [g](a|b.md)", 1, 1)
        );
    }

    #[test]
    fn label_first_wikis_read_the_target_after_the_bar() {
        let md = "[[Label|Target]] and [[Plain]] and [[Other Page#Part]]";
        let read = |style| {
            extract_in(md, style)
                .into_iter()
                .map(|l| l.target)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read(WikilinkStyle::LabelFirst),
            ["Target", "Plain", "Other Page#Part"]
        );
        assert_eq!(
            read(WikilinkStyle::TargetFirst),
            ["Label", "Plain", "Other Page#Part"]
        );
        let i = PageIndex::new(["Target.md", "Label.md"]);
        assert_eq!(
            count_links_to(&i, WikilinkStyle::LabelFirst, "x.md", md, "Target.md"),
            1
        );
        assert_eq!(
            count_links_to(&i, WikilinkStyle::LabelFirst, "x.md", md, "Label.md"),
            0
        );
        // Otterwiki's setting: empty is label first; LINKTITLE (any case, `_`) target first.
        for (setting, style) in [
            ("", WikilinkStyle::LabelFirst),
            ("LINKTITLE", WikilinkStyle::TargetFirst),
            ("link_title", WikilinkStyle::TargetFirst),
            ("PAGENAME_TITLE", WikilinkStyle::TargetFirst),
        ] {
            assert_eq!(WikilinkStyle::from_otterwiki(setting), style, "{setting:?}");
        }
        for style in [WikilinkStyle::LabelFirst, WikilinkStyle::TargetFirst] {
            assert_eq!(WikilinkStyle::parse(style.as_str()), Some(style));
        }
        assert_eq!(WikilinkStyle::LabelFirst.orient("a", "b"), ("b", "a"));
    }

    #[test]
    fn finds_wiki_links_markdown_links_images_and_definitions() {
        let md = "# Plan\nSee [[Target]], [[Other Page|the other one]] and [[Plan#Next]].\n\
                  A [link](notes/a.md \"title\"), an ![image](pics/x.png) and \
                  [angle](<My Page.md>), [nested (parens)](a_(b).md).\n\
                  [![badge](b.png)](c.md)\n\n[ref]: ../up.md \"t\"\n[^1]: not a link\n";
        assert_eq!(
            targets(md),
            vec![
                wiki("Target"),
                wiki("Other Page"),
                wiki("Plan#Next"),
                url("notes/a.md"),
                url("pics/x.png"),
                url("My Page.md"),
                url("a_(b).md"),
                url("c.md"),
                url("b.png"),
                url("../up.md"),
            ]
        );
    }

    #[test]
    fn code_front_matter_and_escapes_are_not_links() {
        let md = "---\nrelated: \"[[FromFrontMatter]]\"\n---\n\
                  Text `[[InSpan]]` and ``[x](span.md)`` here.\n\
                  ```md\n[[InFence]]\n[y](fence.md)\n```\n\
                  ~~~~\n[[InTilde]]\n~~~\n~~~~\n\
                  \\[[Escaped]] \\[z](esc.md) [[Real]]\n\
                  `unclosed [[AfterBacktick]]\n";
        assert_eq!(targets(md), vec![wiki("Real"), wiki("AfterBacktick")]);
    }

    #[test]
    fn broken_syntax_is_not_a_link() {
        for md in [
            "[[]]",
            "[[ |label]]",
            "[[a\nb]]",
            "[text] (no.md)",
            "[text](spaces in.md)",
            "[text](unclosed.md",
            "[x]()",
            "[[",
            "[",
            "](a.md)",
        ] {
            assert_eq!(targets(md), vec![], "{md:?}");
        }
    }

    #[test]
    fn code_spans_cross_lines_but_not_paragraphs() {
        assert_eq!(targets("a `code\n[[X]]` b"), vec![]);
        assert_eq!(targets("a `open\n\n[[X]]"), vec![wiki("X")]);
    }

    #[test]
    fn destinations_are_unescaped() {
        assert_eq!(targets("[a](x\\(1\\).md)"), vec![url("x(1).md")]);
    }

    fn index() -> PageIndex {
        PageIndex::new([
            "Home.md",
            "projects/Plan.md",
            "projects/notes/Ideas.md",
            "notes/Ideas.md",
            "My Page.md",
            "files/diagram.png",
        ])
    }

    fn go(from: &str, kind: LinkKind, target: &str) -> Option<String> {
        let link = Link {
            kind,
            target: target.to_owned(),
        };
        resolve(&index(), from, &link).map(str::to_owned)
    }

    #[test]
    fn wiki_links_resolve_by_name_then_unique_base_name() {
        let w = LinkKind::Wiki;
        assert_eq!(go("x.md", w, "home").as_deref(), Some("Home.md"));
        assert_eq!(go("x.md", w, "Home.md").as_deref(), Some("Home.md"));
        assert_eq!(
            go("x.md", w, "Projects/plan#Steps").as_deref(),
            Some("projects/Plan.md")
        );
        assert_eq!(go("x.md", w, "Plan").as_deref(), Some("projects/Plan.md"));
        // Two pages are called Ideas: the base name alone names neither.
        assert_eq!(go("x.md", w, "Ideas"), None);
        assert_eq!(
            go("x.md", w, "notes/Ideas").as_deref(),
            Some("notes/Ideas.md")
        );
        assert_eq!(go("x.md", w, "Missing"), None);
        assert_eq!(go("x.md", w, "#Heading"), None);
    }

    #[test]
    fn urls_resolve_relative_to_the_linking_page() {
        let u = LinkKind::Url;
        assert_eq!(
            go("projects/Plan.md", u, "notes/Ideas.md").as_deref(),
            Some("projects/notes/Ideas.md")
        );
        assert_eq!(
            go("projects/notes/Ideas.md", u, "../../Home.md#top").as_deref(),
            Some("Home.md")
        );
        assert_eq!(
            go("projects/Plan.md", u, "/notes/Ideas").as_deref(),
            Some("notes/Ideas.md")
        );
        assert_eq!(
            go("Home.md", u, "My%20Page.md?x=1").as_deref(),
            Some("My Page.md")
        );
        assert_eq!(
            go("projects/Plan.md", u, "../files/diagram.png").as_deref(),
            Some("files/diagram.png")
        );
        for not_a_page in [
            "https://example.org/Home.md",
            "mailto:a@b.c",
            "//host/Home.md",
            "#Home",
            "..\\Home.md",
            "",
        ] {
            assert_eq!(go("Home.md", u, not_a_page), None, "{not_a_page:?}");
        }
    }

    #[test]
    fn counts_links_to_one_page() {
        let i = index();
        let md = "[[Plan]] and [plan](projects/Plan.md) and [[Home]] and `[[Plan]]`";
        assert_eq!(
            count_links_to(
                &i,
                WikilinkStyle::TargetFirst,
                "Home.md",
                md,
                "projects/Plan.md"
            ),
            2
        );
        assert_eq!(
            count_links_to(&i, WikilinkStyle::TargetFirst, "Home.md", md, "Home.md"),
            1
        );
        assert_eq!(
            count_links_to(&i, WikilinkStyle::TargetFirst, "Home.md", md, "My Page.md"),
            0
        );
        // Relative to the linking page: from projects/, `Plan.md` is projects/Plan.md.
        assert_eq!(
            count_links_to(
                &i,
                WikilinkStyle::TargetFirst,
                "projects/x.md",
                "[p](Plan.md)",
                "projects/Plan.md"
            ),
            1
        );
    }

    proptest::proptest! {
        /// Any text, markdown-heavy or not (multi-byte characters beside brackets): the scanner
        /// neither panics nor finds a link whose target spans lines.
        #[test]
        fn scanning_never_panics(s in "[\\[\\]()`~<>!|#\\\\:/. a-zé€\n-]{0,80}", t in "\\PC{0,40}") {
            for text in [s.as_str(), t.as_str()] {
                let links = extract(text);
                for l in &links {
                    proptest::prop_assert!(!l.target.contains('\n'), "{:?}", l);
                    let _ = resolve(&index(), "a/b.md", l);
                }
                let _ = percent_decode(text);
            }
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
