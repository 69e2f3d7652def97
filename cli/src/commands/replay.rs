//! `zkwiki export --git DIR`: the wiki's history as a git repository, so moving to a plain git
//! wiki (Otterwiki) keeps it. Each wiki version that changed pages becomes one commit, oldest
//! first, written with `git fast-import`: its author, e-mail, time, time zone and message are
//! the ones its records claim (an imported commit's, or what a member wrote with `-m`); the
//! member who signed it is the committer. Versions that changed only zkwiki's own records
//! (search index, settings) are not commits. A version that only removed pages has no record
//! to take an author from: it is written as its signer at the previous commit's time.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use core_crypto::envelope::PageRecord;

use super::history::{Version, older_version, open_at};
use crate::context::Ctx;
use crate::error::{CliError, Result};
use crate::git::Git;
use crate::remote::Session;

/// One wiki version as a commit.
struct Replayed {
    seq: u64,
    signer: String,
    /// Pages written (their new path and content).
    written: Vec<PageRecord>,
    /// Paths that stop existing (removed pages, old paths of renamed ones).
    gone: Vec<String>,
}

/// Reads the verified history, oldest first, keeping the versions that changed pages.
fn read_history(ctx: &Ctx, s: &mut Session) -> Result<Vec<Replayed>> {
    let gw = s.repo()?.clone();
    let gw = &gw;
    let s = &*s;
    let head = s.ws.head().clone();
    let head_seq = head.seq();
    let bar = ctx.out.progress(head_seq, "reading history");
    let mut out = Vec::new();
    gw.walk_with(&head, &mut |step, older| {
        bar.inc(1);
        let mut r = Replayed {
            seq: step.seq,
            signer: step.signer_name.clone(),
            written: Vec::new(),
            gone: Vec::new(),
        };
        for (id, entry) in &step.changed {
            match open_at(gw, s, head_seq, step.seq, id, entry)? {
                Some(Version::Record(record)) => {
                    if let Some(Version::Record(old)) = older_version(gw, s, head_seq, older, id)?
                        && old.path != record.path
                    {
                        r.gone.push(old.path);
                    }
                    r.written.push(record);
                }
                Some(Version::Unreadable(why)) => ctx.out.warn(format!(
                    "wiki version {}: left out a page version that cannot be read: {why}",
                    step.seq
                )),
                None => {}
            }
        }
        for id in &step.removed {
            if let Some(Version::Record(old)) = older_version(gw, s, head_seq, older, id)? {
                r.gone.push(old.path);
            }
        }
        if !r.written.is_empty() || !r.gone.is_empty() {
            out.push(r);
        }
        Ok(true)
    })?;
    bar.finish_and_clear();
    out.reverse();
    Ok(out)
}

/// A name or e-mail as git's ident allows (no `<`, `>` or line breaks).
fn ident(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A path quoted for fast-import (C style, always quoted).
fn quoted(path: &str) -> String {
    let mut out = String::from("\"");
    for c in path.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `+HHMM` from minutes east of UTC.
fn zone(minutes: Option<i16>) -> String {
    let m = minutes.unwrap_or(0);
    let sign = if m < 0 { '-' } else { '+' };
    let a = m.unsigned_abs();
    format!("{sign}{:02}{:02}", a / 60, a % 60)
}

fn data(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

/// The commit message: the one its records share (or the first), else what changed.
fn message(r: &Replayed) -> String {
    if let Some(m) = r
        .written
        .iter()
        .map(|w| w.note.message.as_str())
        .find(|m| !m.is_empty())
    {
        return m.to_owned();
    }
    let paths: Vec<&str> = r
        .written
        .iter()
        .map(|w| w.path.as_str())
        .chain(r.gone.iter().map(String::as_str))
        .collect();
    match paths.as_slice() {
        [one] => format!("zkwiki version {}: {one}", r.seq),
        many => format!("zkwiki version {}: {} pages", r.seq, many.len()),
    }
}

/// The fast-import stream of the whole history.
fn stream(history: &[Replayed]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last_time = (0i64, None);
    for (n, r) in history.iter().enumerate() {
        // The newest record speaks for the commit (one import commit: all the same).
        let newest = r.written.iter().max_by_key(|w| w.written_at_ms);
        let (name, mail, time) = match newest {
            Some(w) => {
                let time = (w.written_at_ms.div_euclid(1000), w.note.tz_offset_minutes);
                (ident(&w.author), ident(&w.note.author_email), time)
            }
            None => (ident(&r.signer), String::new(), last_time),
        };
        last_time = time;
        let when = format!("{} {}", time.0, zone(time.1));
        out.extend_from_slice(b"commit refs/heads/main\n");
        out.extend_from_slice(format!("mark :{}\n", n + 1).as_bytes());
        out.extend_from_slice(format!("author {name} <{mail}> {when}\n").as_bytes());
        out.extend_from_slice(format!("committer {} <> {when}\n", ident(&r.signer)).as_bytes());
        data(&mut out, message(r).as_bytes());
        for path in &r.gone {
            if !r.written.iter().any(|w| w.path == *path) {
                out.extend_from_slice(format!("D {}\n", quoted(path)).as_bytes());
            }
        }
        for w in &r.written {
            out.extend_from_slice(format!("M 100644 inline {}\n", quoted(&w.path)).as_bytes());
            data(&mut out, &w.content);
        }
        out.push(b'\n');
    }
    out.extend_from_slice(b"done\n");
    out
}

/// Writes the wiki's history as a git repository at `dir` (new or empty) with its files checked
/// out; returns the number of commits.
pub fn export_git(ctx: &Ctx, s: &mut Session, dir: &Path) -> Result<usize> {
    let history = read_history(ctx, s)?;
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir.display(), e))?;
    let repo = Git::at(dir);
    repo.run(["init", "-q", "-b", "main"], "creating the repository")?;
    let mut child = repo
        .command(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::general(format!("cannot run git fast-import: {e}")))?;
    let bytes = stream(&history);
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&bytes))
        .transpose();
    let out = child
        .wait_with_output()
        .map_err(|e| CliError::general(format!("git fast-import: {e}")))?;
    if !out.status.success() || written.is_err() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(CliError::general(format!(
            "writing the history with git fast-import failed: {}",
            why.lines().next().unwrap_or("(no message)")
        )));
    }
    if !history.is_empty() {
        repo.run(["checkout", "-q", "-f", "main"], "checking out the pages")?;
    }
    Ok(history.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_idents_and_paths() {
        assert_eq!(zone(Some(330)), "+0530");
        assert_eq!(zone(Some(-180)), "-0300");
        assert_eq!(zone(None), "+0000");
        assert_eq!(ident(" Eve <e@x>\nx "), "Eve e@x\nx".replace('\n', ""));
        assert_eq!(quoted("a \"b\"\\c.md"), "\"a \\\"b\\\"\\\\c.md\"");
    }
}
