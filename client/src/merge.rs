//! Line diffs between page versions (history) and three-way merges (save conflicts).
//!
//! A small Myers diff (O((N+M)·D) time, O(D²) memory, capped) over lines, after trimming the
//! common prefix and suffix, and a diff3-style merge on top of it. Written here rather than taken
//! from the `similar` crate, whose generic code added ~320 KB to the WebAssembly bundle.

use serde::Serialize;

/// Edit distance above which the diff stops looking for a minimal script and reports the rest
/// as replaced (bounds time and memory on unrelated texts).
const MAX_D: usize = 2000;

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// `" "` unchanged, `"+"` added, `"-"` removed.
    pub tag: &'static str,
    /// Line number in the old text (1-based), if the line is there.
    pub old: Option<usize>,
    /// Line number in the new text (1-based), if the line is there.
    pub new: Option<usize>,
    /// The line without its line ending.
    pub text: String,
}

/// A diff: hunks of changed lines with some context, and counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Groups of lines, each a run of changes with up to `context` lines around it.
    pub hunks: Vec<Vec<Line>>,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    Delete,
    Insert,
}

/// Lines with their endings, so joining them gives the text back exactly.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The shortest edit script from `a` to `b` (Myers 1986), as a sequence of operations.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops = vec![Op::Equal; prefix];
    ops.extend(myers(ma, mb));
    ops.extend(std::iter::repeat_n(Op::Equal, suffix));
    ops
}

fn myers(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    if n == 0 || m == 0 {
        let mut ops = vec![Op::Delete; a.len()];
        ops.extend(std::iter::repeat_n(Op::Insert, b.len()));
        return ops;
    }
    let max = (n + m) as usize;
    let limit = max.min(MAX_D);
    let offset = limit as isize + 1;
    let mut v = vec![0isize; 2 * limit + 3];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut found = false;
    'outer: for d in 0..=limit as isize {
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let idx = (k + offset) as usize;
            let mut x = if k == -d || (k != d && v[idx - 1] < v[idx + 1]) {
                v[idx + 1]
            } else {
                v[idx - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[idx] = x;
            if x >= n && y >= m {
                found = true;
                break 'outer;
            }
            k += 2;
        }
    }
    if !found {
        // Too different: report everything as replaced.
        let mut ops = vec![Op::Delete; a.len()];
        ops.extend(std::iter::repeat_n(Op::Insert, b.len()));
        return ops;
    }
    // Walk the trace back from (n, m).
    let mut ops = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (1..trace.len() as isize).rev() {
        let v = &trace[d as usize];
        let k = x - y;
        let idx = |k: isize| (k + offset) as usize;
        let prev_k = if k == -d || (k != d && v[idx(k - 1)] < v[idx(k + 1)]) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = v[idx(prev_k)];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            ops.push(Op::Equal);
            x -= 1;
            y -= 1;
        }
        if prev_k == k + 1 {
            ops.push(Op::Insert);
        } else {
            ops.push(Op::Delete);
        }
        x = prev_x;
        y = prev_y;
    }
    while x > 0 && y > 0 {
        ops.push(Op::Equal);
        x -= 1;
        y -= 1;
    }
    ops.reverse();
    ops
}

/// The line diff from `old` to `new`, grouped into hunks with `context` lines around changes.
pub fn line_diff(old: &str, new: &str, context: usize) -> Diff {
    let (a, b) = (lines(old), lines(new));
    let ops = edit_script(&a, &b);
    let mut all = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0, 0);
    let mut out = Diff::default();
    for op in ops {
        let strip = |s: &str| s.trim_end_matches(['\n', '\r']).to_owned();
        match op {
            Op::Equal => {
                all.push(Line {
                    tag: " ",
                    old: Some(i + 1),
                    new: Some(j + 1),
                    text: strip(a[i]),
                });
                i += 1;
                j += 1;
            }
            Op::Delete => {
                out.removed += 1;
                all.push(Line {
                    tag: "-",
                    old: Some(i + 1),
                    new: None,
                    text: strip(a[i]),
                });
                i += 1;
            }
            Op::Insert => {
                out.added += 1;
                all.push(Line {
                    tag: "+",
                    old: None,
                    new: Some(j + 1),
                    text: strip(b[j]),
                });
                j += 1;
            }
        }
    }
    // Keep changed lines and `context` lines around them; a wider gap starts a new hunk.
    let mut keep = vec![false; all.len()];
    for (k, line) in all.iter().enumerate() {
        if line.tag != " " {
            let lo = k.saturating_sub(context);
            let hi = (k + context + 1).min(all.len());
            keep[lo..hi].iter_mut().for_each(|x| *x = true);
        }
    }
    let mut hunk = Vec::new();
    for (line, kept) in all.into_iter().zip(keep) {
        if kept {
            hunk.push(line);
        } else if !hunk.is_empty() {
            out.hunks.push(std::mem::take(&mut hunk));
        }
    }
    if !hunk.is_empty() {
        out.hunks.push(hunk);
    }
    out
}

/// A change of one side against the base: base lines `start..end` become `lines`.
#[derive(Debug, Clone)]
struct Change<'a> {
    start: usize,
    end: usize,
    lines: Vec<&'a str>,
}

fn changes<'a>(base: &[&str], side: &[&'a str]) -> Vec<Change<'a>> {
    let mut out: Vec<Change<'a>> = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut open: Option<Change<'a>> = None;
    for op in edit_script(base, side) {
        match op {
            Op::Equal => {
                if let Some(c) = open.take() {
                    out.push(c);
                }
                i += 1;
                j += 1;
            }
            Op::Delete => {
                let c = open.get_or_insert(Change {
                    start: i,
                    end: i,
                    lines: Vec::new(),
                });
                c.end = i + 1;
                i += 1;
            }
            Op::Insert => {
                let c = open.get_or_insert(Change {
                    start: i,
                    end: i,
                    lines: Vec::new(),
                });
                c.lines.push(side[j]);
                j += 1;
            }
        }
    }
    out.extend(open);
    out
}

/// What one side made of base lines `start..end`, given its changes inside that range.
fn side_text<'a>(base: &[&'a str], start: usize, end: usize, ch: &[&Change<'a>]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut at = start;
    for c in ch {
        out.extend_from_slice(&base[at..c.start]);
        out.extend_from_slice(&c.lines);
        at = c.end;
    }
    out.extend_from_slice(&base[at.min(end)..end]);
    out
}

/// The result of a three-way merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merged {
    /// The merged text; conflicting regions carry `<<<<<<<` / `=======` / `>>>>>>>` markers with
    /// both sides, so no line of either side is lost.
    pub text: String,
    /// How many regions conflict.
    pub conflicts: usize,
}

fn push_block(out: &mut String, lines: &[&str]) {
    for l in lines {
        out.push_str(l);
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Merges `ours` and `theirs`, both edited from `base`.
pub fn merge(base: &str, ours: &str, theirs: &str, ours_label: &str, theirs_label: &str) -> Merged {
    let b = lines(base);
    let (o, t) = (lines(ours), lines(theirs));
    let (co, ct) = (changes(&b, &o), changes(&b, &t));
    // All changes in base order, tagged by side (false = ours, true = theirs): each side's list
    // is already in base order (runs between equal lines), so a two-way merge, ours first on a
    // tie, orders them as sorting by (start, end, side) would (without a sort in the bundle).
    let mut all: Vec<(bool, &Change<'_>)> = Vec::with_capacity(co.len() + ct.len());
    let (mut ours, mut theirs) = (co.iter().peekable(), ct.iter().peekable());
    loop {
        let take_ours = match (ours.peek(), theirs.peek()) {
            (Some(o), Some(t)) => (o.start, o.end) <= (t.start, t.end),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_ours {
            ours.next().map(|c| (false, c))
        } else {
            theirs.next().map(|c| (true, c))
        };
        all.extend(next);
    }
    let mut out = String::new();
    let mut conflicts = 0;
    let mut at = 0;
    let mut k = 0;
    while k < all.len() {
        let (gs, mut ge) = (all[k].1.start, all[k].1.end);
        let mut group = vec![all[k]];
        k += 1;
        while k < all.len() {
            let c = all[k].1;
            let touches = c.start < ge || (c.start == ge && (c.start == c.end || gs == ge));
            if !touches {
                break;
            }
            ge = ge.max(c.end);
            group.push(all[k]);
            k += 1;
        }
        for l in &b[at..gs] {
            out.push_str(l);
        }
        let mine: Vec<&Change<'_>> = group.iter().filter(|g| !g.0).map(|g| g.1).collect();
        let other: Vec<&Change<'_>> = group.iter().filter(|g| g.0).map(|g| g.1).collect();
        let ot = side_text(&b, gs, ge, &mine);
        let tt = side_text(&b, gs, ge, &other);
        if other.is_empty() || ot == tt {
            ot.iter().for_each(|l| out.push_str(l));
        } else if mine.is_empty() {
            tt.iter().for_each(|l| out.push_str(l));
        } else {
            conflicts += 1;
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("<<<<<<< {ours_label}\n"));
            push_block(&mut out, &ot);
            out.push_str("=======\n");
            push_block(&mut out, &tt);
            out.push_str(&format!(">>>>>>> {theirs_label}\n"));
        }
        at = ge;
    }
    for l in &b[at..] {
        out.push_str(l);
    }
    Merged {
        text: out,
        conflicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_and_numbers() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\nd\n", 1);
        assert_eq!((d.added, d.removed), (2, 1));
        let flat: Vec<(&str, Option<usize>, Option<usize>, &str)> = d.hunks[0]
            .iter()
            .map(|l| (l.tag, l.old, l.new, l.text.as_str()))
            .collect();
        assert_eq!(
            flat,
            [
                (" ", Some(1), Some(1), "a"),
                ("-", Some(2), None, "b"),
                ("+", None, Some(2), "B"),
                (" ", Some(3), Some(3), "c"),
                ("+", None, Some(4), "d"),
            ]
        );
        assert!(line_diff("same\n", "same\n", 3).hunks.is_empty());
    }

    #[test]
    fn hunks_split_on_distant_changes() {
        let old: String = (1..=30).map(|i| format!("{i}\n")).collect();
        let new: String = (1..=30)
            .map(|i| match i {
                3 => "three\n".to_owned(),
                27 => "twenty-seven\n".to_owned(),
                i => format!("{i}\n"),
            })
            .collect();
        let d = line_diff(&old, &new, 2);
        assert_eq!(d.hunks.len(), 2);
        assert_eq!(d.hunks[0].first().and_then(|l| l.old), Some(1));
        assert_eq!(d.hunks[1].last().and_then(|l| l.old), Some(29));
    }

    #[test]
    fn minimal_scripts() {
        let cases = [
            ("", "a\n"),
            ("a\n", ""),
            ("a\nb\nc\na\nb\nb\na\n", "c\nb\na\nb\na\nc\n"),
            ("x\ny\n", "y\nx\n"),
            ("no newline", "no newline\nmore"),
        ];
        for (a, b) in cases {
            let (la, lb) = (lines(a), lines(b));
            let ops = edit_script(&la, &lb);
            // Replaying the script turns a into b.
            let (mut i, mut j, mut out) = (0, 0, Vec::new());
            for op in &ops {
                match op {
                    Op::Equal => {
                        assert_eq!(la[i], lb[j]);
                        out.push(lb[j]);
                        i += 1;
                        j += 1;
                    }
                    Op::Delete => i += 1,
                    Op::Insert => {
                        out.push(lb[j]);
                        j += 1;
                    }
                }
            }
            assert_eq!(out.concat(), b);
        }
        // The classic example has an edit distance of 5.
        let ops = edit_script(
            &lines("a\nb\nc\na\nb\nb\na\n"),
            &lines("c\nb\na\nb\na\nc\n"),
        );
        assert_eq!(ops.iter().filter(|o| **o != Op::Equal).count(), 5);
    }

    #[test]
    fn merges_clean_and_conflicting_edits() {
        let m = merge(
            "1\n2\n3\n",
            "one\n2\n3\n",
            "1\n2\nthree\n",
            "yours",
            "theirs",
        );
        assert_eq!(
            m,
            Merged {
                text: "one\n2\nthree\n".into(),
                conflicts: 0
            }
        );
        let m = merge("1\n2\n", "mine\n2\n", "other\n2\n", "yours", "theirs (bob)");
        assert_eq!(m.conflicts, 1);
        assert_eq!(
            m.text,
            "<<<<<<< yours\nmine\n=======\nother\n>>>>>>> theirs (bob)\n2\n"
        );
        // Both made the same change: no conflict.
        let m = merge("a\nb\n", "a\nB\n", "a\nB\n", "y", "t");
        assert_eq!(
            m,
            Merged {
                text: "a\nB\n".into(),
                conflicts: 0
            }
        );
        // Appends on both sides at the end conflict (order is ambiguous); nothing is lost.
        let m = merge("a\n", "a\nmine", "a\ntheirs\n", "y", "t");
        assert_eq!(m.conflicts, 1);
        assert!(
            m.text.contains("mine\n") && m.text.contains("theirs\n"),
            "{}",
            m.text
        );
        // Only theirs changed.
        let m = merge("a\nb\nc\n", "a\nb\nc\n", "a\nc\n", "y", "t");
        assert_eq!(m.text, "a\nc\n");
    }
}
