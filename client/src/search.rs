//! Search results: ranking help and snippets around the first match.
//!
//! Which pages match is decided by the wiki's search index (`core_crypto::index`, see
//! `Workspace::search`, the one search every client runs); this module counts occurrences in
//! decrypted text and cuts snippets, returned as plain-text parts so a caller puts them in the
//! DOM as text, never as HTML (and escapes them for a terminal).

use core_crypto::ids::PageId;
use serde::Serialize;

/// One result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The page id.
    #[serde(serialize_with = "page_hex")]
    pub page: PageId,
    /// The page path.
    pub path: String,
    /// Text around the first match, as `(text, is_match)` parts.
    pub snippet: Vec<(String, bool)>,
    /// Ranking score (higher first).
    pub score: u32,
}

fn page_hex<S: serde::Serializer>(id: &PageId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_hex())
}

/// Byte ranges in `text` where `lower` (already lowercase) occurs, compared case-insensitively.
fn find_ci(text: &str, lower: &str) -> Option<(usize, usize)> {
    // Lowercasing can change byte lengths; walk char boundaries of the original.
    let first = lower.chars().next()?;
    for (i, c) in text.char_indices() {
        if c.to_lowercase().next() != Some(first) {
            continue;
        }
        let mut tail = text[i..].chars().flat_map(char::to_lowercase);
        if lower.chars().all(|q| tail.next() == Some(q)) {
            // Find the end in the original: consume chars until as many lowered chars as `lower`.
            let mut need = lower.chars().count();
            let mut end = i;
            for c in text[i..].chars() {
                if need == 0 {
                    break;
                }
                need = need.saturating_sub(c.to_lowercase().count());
                end += c.len_utf8();
            }
            return Some((i, end));
        }
    }
    None
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

fn snippet(text: &str, at: (usize, usize)) -> Vec<(String, bool)> {
    let start = floor_boundary(text, at.0.saturating_sub(60));
    let end = ceil_boundary(text, at.1 + 80);
    // Markdown punctuation is noise in a snippet: drop it, then collapse whitespace.
    let clean = |s: &str| {
        // `|` separates a wiki link's target from its label (and table cells): a space, so
        // neither is glued to the other.
        let mut t = s
            .replace("[[", "")
            .replace("]]", "")
            .replace("**", "")
            .replace('|', " ");
        t.retain(|c| !matches!(c, '#' | '`' | '>' | '*'));
        t.split_whitespace()
            .filter(|w| !w.chars().all(|c| c == '-' || c == ':'))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut before = clean(&text[start..at.0]);
    if start > 0 {
        before.insert(0, '…');
    }
    let punct = |c: char| matches!(c, '#' | '`' | '|' | '>' | '*' | '[' | ']' | '_');
    if text[..at.0]
        .trim_end_matches(punct)
        .ends_with(char::is_whitespace)
        && !before.is_empty()
    {
        before.push(' ');
    }
    let mut after = String::new();
    if text[at.1..]
        .trim_start_matches(punct)
        .starts_with(char::is_whitespace)
    {
        after.push(' ');
    }
    after.push_str(&clean(&text[at.1..end]));
    if end < text.len() {
        after.push('…');
    }
    vec![
        (before, false),
        (text[at.0..at.1].to_owned(), true),
        (after, false),
    ]
}

/// A snippet around the first occurrence of any of `terms` (lowercase) in `text`.
pub fn snippet_for(text: &str, terms: &[String]) -> Option<Vec<(String, bool)>> {
    terms
        .iter()
        .filter_map(|t| find_ci(text, t))
        .min_by_key(|at| at.0)
        .map(|at| snippet(text, at))
}

/// How often `terms` (lowercase) occur in `text`, case-insensitively.
pub fn count(text: &str, terms: &[String]) -> u32 {
    let lower = text.to_lowercase();
    terms
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| lower.matches(t.as_str()).count().min(1000) as u32)
        .sum()
}

/// The words of a query as [`crate::Workspace::search`] matches them: `(term, prefix)`, the
/// last word a prefix unless the query ends with a space (or the word ends with `*`).
pub fn query_terms(query: &str) -> Vec<(String, bool)> {
    let words: Vec<&str> = query.split_whitespace().collect();
    let open_end = !query.ends_with(char::is_whitespace);
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let star = w.ends_with('*');
        let last_word = i + 1 == words.len();
        let parts: Vec<String> = core_crypto::index::terms(w.trim_end_matches('*')).collect();
        let n = parts.len();
        for (j, t) in parts.into_iter().enumerate() {
            let last = j + 1 == n;
            out.push((t, last && (star || last_word && open_end)));
        }
    }
    out
}

/// The lines of `text` holding a word of the query (1-based line numbers), as a search shows
/// where a page matched (like `rg`): at most `limit`.
pub fn matching_lines<'t>(text: &'t str, query: &str, limit: usize) -> Vec<(usize, &'t str)> {
    let terms = query_terms(query);
    if terms.is_empty() {
        return Vec::new();
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            core_crypto::index::terms(line).any(|w| {
                terms.iter().any(|(t, prefix)| {
                    if *prefix {
                        w.starts_with(t.as_str())
                    } else {
                        w == *t
                    }
                })
            })
        })
        .take(limit)
        .map(|(i, line)| (i + 1, line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_lines_follow_the_search_rule() {
        let text = "# Plans\nthe planning meeting\nnothing here\nPLAN B\n";
        assert_eq!(
            matching_lines(text, "plan", 10),
            [(1, "# Plans"), (2, "the planning meeting"), (4, "PLAN B")]
        );
        assert_eq!(
            matching_lines(text, "plan ", 10),
            [(4, "PLAN B")],
            "a finished word is exact"
        );
        assert_eq!(matching_lines(text, "plan* here", 10).len(), 4);
        assert_eq!(matching_lines(text, "plan", 1).len(), 1);
        assert!(matching_lines(text, "", 10).is_empty());
    }

    #[test]
    fn snippets_and_counts() {
        let text = "Welcome. The plan is in [[Plan]]. plan plan";
        let terms = vec!["plan".to_owned()];
        assert_eq!(count(text, &terms), 4);
        let s = snippet_for(text, &["welcome".to_owned()]).unwrap();
        assert_eq!(s[1], ("Welcome".to_owned(), true));
        let s = snippet_for(
            "# Title\n\n| a | b |\n|---|--:|\nsee [[Plan]] **now**",
            &["now".to_owned()],
        )
        .unwrap();
        assert_eq!(s[0].0, "Title a b see Plan ");
        assert!(snippet_for(text, &["absent".to_owned()]).is_none());
    }

    #[test]
    fn link_targets_are_not_glued_to_labels() {
        let text = "See [[Ideas|our ideas]] about the budget, | a | table |";
        let s = snippet_for(text, &["budget".to_owned()]).unwrap();
        assert_eq!(s[0].0, "See Ideas our ideas about the ");
        assert_eq!(s[2].0, ", a table");
    }

    #[test]
    fn snippets_respect_char_boundaries() {
        let text = format!("{}Ünïcode MATCH here {}", "é".repeat(100), "ü".repeat(100));
        let s = snippet_for(&text, &["match".to_owned()]).unwrap();
        assert_eq!(s[1].0, "MATCH");
        assert!(s[0].0.starts_with('…') && s[2].0.ends_with('…'));
    }
}
