//! What a page is called in lists, trees and breadcrumbs, the same in every client:
//!
//! - a page's title is its front matter `title:`, else its first heading (any level, outside
//!   code blocks) ([`title`]);
//! - a name without a title (a folder, a page not decrypted yet) is the file name without `.md`,
//!   with each word capitalised when the name has no capital letter, as Otterwiki shows the
//!   lowercased file names it writes (`platform overview` → `Platform Overview`); a name written
//!   with capitals is kept as written ([`display_name`]);
//! - a page's tags are its front matter `tags:`, as a `[a, b]` list, a `- a` list below the key,
//!   or comma-separated words ([`tags`]);
//! - in a folder, pages come before subfolders, each sorted by name, case-insensitively
//!   ([`tree_cmp`]).

use std::cmp::Ordering;

/// The title a page's markdown gives itself: front matter `title:`, else its first heading.
pub fn title(markdown: &str) -> Option<String> {
    let (front, body) = core_crypto::envelope::split_front_matter(markdown);
    if let Some(front) = front {
        for line in front.lines() {
            if let Some(value) = line.strip_prefix("title:") {
                let value = unquote(value.trim());
                if !value.is_empty() {
                    return Some(value.to_owned());
                }
            }
        }
    }
    let mut fence: Option<&str> = None;
    for line in body.lines() {
        let text = line.trim_start();
        if line.len() - text.len() > 3 {
            continue;
        }
        if let Some(open) = fence {
            if text.starts_with(open) {
                fence = None;
            }
            continue;
        }
        if text.starts_with("```") || text.starts_with("~~~") {
            fence = Some(&text[..3]);
            continue;
        }
        let hashes = text.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) {
            let rest = &text[hashes..];
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                let heading = rest.trim().trim_end_matches('#').trim_end();
                if !heading.is_empty() {
                    return Some(heading.to_owned());
                }
            }
        }
    }
    None
}

/// The tags a page's front matter gives it (see the module's rule), in order, without repeats.
pub fn tags(markdown: &str) -> Vec<String> {
    let (Some(front), _) = core_crypto::envelope::split_front_matter(markdown) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut lines = front.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(value) = line.strip_prefix("tags:") else {
            continue;
        };
        let mut items: Vec<&str> = Vec::new();
        let value = value.trim();
        if value.is_empty() {
            while let Some(next) = lines.peek() {
                let Some(item) = next.trim_start().strip_prefix("- ") else {
                    break;
                };
                items.push(item);
                lines.next();
            }
        } else {
            let inner = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(value);
            items.extend(inner.split(','));
        }
        for item in items {
            let tag = unquote(item.trim()).trim();
            if !tag.is_empty() && !out.iter().any(|t| t == tag) {
                out.push(tag.to_owned());
            }
        }
    }
    out
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// The name of a path segment (a folder, or a page file without a title) as lists show it:
/// without `.md`, and when it has no capital letter, each word's first letter capitalised
/// (ASCII letters: the browser build carries no Unicode upper-case table for this).
pub fn display_name(segment: &str) -> String {
    let name = segment.strip_suffix(".md").unwrap_or(segment);
    if name.to_lowercase() != name {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut start = true;
    for c in name.chars() {
        out.push(if start { c.to_ascii_uppercase() } else { c });
        start = c == ' ';
    }
    out
}

/// The order of a wiki's paths in a tree: within a folder, pages (and files) before subfolders,
/// each by name (case-insensitive, then as written).
pub fn tree_cmp(a: &str, b: &str) -> Ordering {
    let (mut xs, mut ys) = (a.split('/').peekable(), b.split('/').peekable());
    loop {
        match (xs.next(), ys.next()) {
            (Some(x), Some(y)) => {
                let x_folder = xs.peek().is_some();
                let y_folder = ys.peek().is_some();
                let order = x_folder
                    .cmp(&y_folder)
                    .then_with(|| x.to_lowercase().cmp(&y.to_lowercase()))
                    .then_with(|| x.cmp(y));
                if order != Ordering::Equal {
                    return order;
                }
            }
            (x, y) => return x.is_some().cmp(&y.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_front_matter_then_the_first_heading() {
        assert_eq!(
            title("---\ntitle: \"The Plan\"\n---\n# Other\n").as_deref(),
            Some("The Plan")
        );
        assert_eq!(
            title("intro\n\n## Emergent Behaviour ##\n# Later\n").as_deref(),
            Some("Emergent Behaviour")
        );
        assert_eq!(
            title("```\n# not a heading\n```\n#hashtag\n    # indented code\n"),
            None
        );
        assert_eq!(
            title("---\ntags: [a]\n---\n# Plan\n").as_deref(),
            Some("Plan")
        );
        assert_eq!(title(""), None);
    }

    #[test]
    fn tags_come_from_front_matter() {
        assert_eq!(
            tags("---\ntags: [budget, \"q3\", budget]\n---\n"),
            vec!["budget", "q3"]
        );
        assert_eq!(
            tags("---\ntitle: x\ntags:\n  - one\n  - 'two words'\nother: y\n---\n"),
            vec!["one", "two words"]
        );
        assert_eq!(tags("---\ntags: a, b\n---\n"), vec!["a", "b"]);
        assert_eq!(tags("tags: [not front matter]\n"), Vec::<String>::new());
    }

    #[test]
    fn names_are_capitalised_as_otterwiki_shows_them() {
        assert_eq!(display_name("platform overview.md"), "Platform Overview");
        assert_eq!(display_name("emergent"), "Emergent");
        assert_eq!(display_name("platform_overview.md"), "Platform_overview");
        assert_eq!(display_name("iPhone notes"), "iPhone notes");
        assert_eq!(display_name("ünïcode name"), "ünïcode Name");
        assert_eq!(display_name("Ünïcode name"), "Ünïcode name");
    }

    #[test]
    fn pages_come_before_folders() {
        let mut paths = vec![
            "Zeta/x.md",
            "beta.md",
            "alpha/b.md",
            "Alpha.md",
            "alpha/a/c.md",
            "alpha/A.md",
        ];
        paths.sort_by(|a, b| tree_cmp(a, b));
        assert_eq!(
            paths,
            vec![
                "Alpha.md",
                "beta.md",
                "alpha/A.md",
                "alpha/b.md",
                "alpha/a/c.md",
                "Zeta/x.md"
            ]
        );
    }
}
