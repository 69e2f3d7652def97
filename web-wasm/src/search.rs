//! Search as you type over the decrypted pages held in memory.
//!
//! Every term of the query must occur (case-insensitively) in the page's path or text; pages
//! whose path matches rank first, then by the number of occurrences. Snippets are returned as
//! plain-text parts so the caller can put them in the DOM as text, never as HTML.

use serde::Serialize;

/// A page to search.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    /// Its path.
    pub path: &'a str,
    /// Its text.
    pub text: &'a str,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The page path.
    pub path: String,
    /// Text around the first match, as `(text, is_match)` parts.
    pub snippet: Vec<(String, bool)>,
    /// Ranking score (higher first).
    pub score: u32,
}

fn terms(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .map(str::to_lowercase)
        .filter(|t| !t.is_empty())
        .take(8)
        .collect()
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
    let clean = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut before = clean(&text[start..at.0]);
    if start > 0 {
        before.insert(0, '…');
    }
    if text[..at.0].ends_with(char::is_whitespace) && !before.is_empty() {
        before.push(' ');
    }
    let mut after = String::new();
    if text[at.1..].starts_with(char::is_whitespace) {
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

/// Searches `docs`; returns at most `limit` hits, best first.
pub fn search<'a>(docs: impl IntoIterator<Item = Doc<'a>>, query: &str, limit: usize) -> Vec<Hit> {
    let terms = terms(query);
    if terms.is_empty() {
        return Vec::new();
    }
    let mut hits = Vec::new();
    'docs: for doc in docs {
        let path_lower = doc.path.to_lowercase();
        let text_lower = doc.text.to_lowercase();
        let mut score = 0u32;
        for t in &terms {
            let in_path = path_lower.contains(t.as_str());
            let count = text_lower.matches(t.as_str()).count().min(1000) as u32;
            if !in_path && count == 0 {
                continue 'docs;
            }
            score += count + if in_path { 1000 } else { 0 };
        }
        let snippet = terms
            .iter()
            .find_map(|t| find_ci(doc.text, t))
            .map(|at| snippet(doc.text, at))
            .unwrap_or_default();
        hits.push(Hit {
            path: doc.path.to_owned(),
            snippet,
            score,
        });
    }
    hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.path.cmp(&b.path)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_terms_must_match_and_paths_rank_first() {
        let docs = [
            Doc {
                path: "Home.md",
                text: "Welcome. The plan is in [[Plan]]. plan plan",
            },
            Doc {
                path: "Plan.md",
                text: "Ship the wiki.",
            },
            Doc {
                path: "Other.md",
                text: "nothing here",
            },
        ];
        let hits = search(docs, "PLAN", 10);
        let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
        assert_eq!(paths, ["Plan.md", "Home.md"]);
        assert_eq!(search(docs, "plan ship", 10).len(), 1);
        assert!(search(docs, "  ", 10).is_empty());
        let home = &search(docs, "welcome", 10)[0];
        assert_eq!(home.snippet[1], ("Welcome".to_owned(), true));
    }

    #[test]
    fn snippets_respect_char_boundaries() {
        let text = format!("{}Ünïcode MATCH here {}", "é".repeat(100), "ü".repeat(100));
        let docs = [Doc {
            path: "x.md",
            text: &text,
        }];
        let h = &search(docs, "match", 1)[0];
        assert_eq!(h.snippet[1].0, "MATCH");
        assert!(h.snippet[0].0.starts_with('…') && h.snippet[2].0.ends_with('…'));
    }
}
