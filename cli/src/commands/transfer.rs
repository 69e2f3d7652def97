//! `import DIR` and `export DIR`.
//!
//! Import takes a folder of pages (markdown and attachments, nested folders, front matter kept
//! verbatim) or a git repository such as an Otterwiki one, whose history is replayed commit by
//! commit, oldest first, each as one wiki commit keeping the original author name and time in
//! the page records (renames keep the page id, so `zkwiki log` follows them). Export writes the
//! current pages back in the same layout; export → import → export is byte-identical.

use std::path::{Path, PathBuf};

use client::display::escape as esc;
use client::policy::{check_new, kind_for_path};
use client::workspace::{Draft, IndexWrite};
use core_crypto::envelope::{
    MAX_AUTHOR_LEN, MAX_CONTENT_LEN, MAX_EMAIL_LEN, MAX_MESSAGE_LEN, MAX_TZ_OFFSET_MINUTES,
    PageKind, PageRecord, VersionNote,
};
use core_crypto::ids::PageId;
use rand_core::OsRng;
use serde_json::json;

use crate::args::{ExportArgs, ImportArgs};
use crate::config::is_nonempty_dir;
use crate::context::Ctx;
use crate::error::{CliError, Result};
use crate::fsutil;
use crate::git::Git;
use crate::remote::Session;

/// Content bytes per commit when importing a folder.
const CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Pages per commit when importing a folder.
const CHUNK_PAGES: usize = 2000;

/// One change to apply.
enum Change {
    Put {
        path: String,
        content: Vec<u8>,
        author: String,
        written_at_ms: i64,
        note: VersionNote,
    },
    Rename {
        from: String,
        to: String,
        content: Vec<u8>,
        author: String,
        written_at_ms: i64,
        note: VersionNote,
    },
    Remove {
        path: String,
    },
}

fn wiki_path(into: Option<&str>, rel: &str) -> String {
    match into.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}/{rel}"),
        None => rel.to_owned(),
    }
}

fn record(
    path: &str,
    content: &[u8],
    author: &str,
    written_at_ms: i64,
    note: &VersionNote,
) -> PageRecord {
    PageRecord {
        kind: kind_for_path(path),
        path: path.to_owned(),
        author: truncate(author, MAX_AUTHOR_LEN),
        written_at_ms,
        note: note.clone(),
        content: content.to_vec(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Why a file cannot become a page (named in the import's warnings), if it cannot.
fn refusal(path: &str, content: &[u8]) -> Option<String> {
    if let Err(e) = check_new(path) {
        return Some(e.message);
    }
    if content.len() > MAX_CONTENT_LEN {
        return Some("larger than 16 MiB".to_owned());
    }
    if kind_for_path(path) == PageKind::Markdown && std::str::from_utf8(content).is_err() {
        return Some("a markdown file (.md) that is not UTF-8 text".to_owned());
    }
    None
}

fn apply(d: &mut Draft<'_>, changes: &[Change]) -> client::Result<()> {
    for c in changes {
        match c {
            Change::Put {
                path,
                content,
                author,
                written_at_ms,
                note,
            } => {
                let id = d.find(path);
                if let Some(id) = id
                    && d.base_hash(&id).is_some()
                    && d.current(&id)
                        .is_ok_and(|r| r.content == *content && r.path == *path)
                {
                    continue;
                }
                let id = id.unwrap_or_else(|| PageId::random(&mut OsRng));
                d.put(id, record(path, content, author, *written_at_ms, note))?;
            }
            Change::Rename {
                from,
                to,
                content,
                author,
                written_at_ms,
                note,
            } => {
                let id = d
                    .find(from)
                    .or_else(|| d.find(to))
                    .unwrap_or_else(|| PageId::random(&mut OsRng));
                d.put(id, record(to, content, author, *written_at_ms, note))?;
            }
            Change::Remove { path } => {
                if let Some(id) = d.find(path) {
                    d.remove(&id)?;
                }
            }
        }
    }
    Ok(())
}

/// Commits a batch; the index waits for the last one (`index`: [`IndexWrite::Flush`]).
fn commit_changes(s: &mut Session, changes: &[Change], index: IndexWrite) -> Result<Option<u64>> {
    if changes.is_empty() && index == IndexWrite::Defer {
        return Ok(None);
    }
    // Load the pages the batch names first, so the change runs once.
    let ids: Vec<PageId> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Put { path, .. } | Change::Remove { path } => s.ws.find(path),
            Change::Rename { from, .. } => s.ws.find(from),
        })
        .collect();
    s.load(&ids)?;
    Ok(s.write(index, &mut |d| apply(d, changes))?
        .map(|(seq, ())| seq))
}

/// `zkwiki import DIR`.
pub fn import(ctx: &Ctx, a: &ImportArgs) -> Result<()> {
    if !a.dir.is_dir() {
        return Err(CliError::not_found(format!(
            "{} is not a folder",
            a.dir.display()
        )));
    }
    if let Some(p) = &a.into {
        check_new(p.trim_matches('/'))?;
    }
    let mut s = super::pages::open(ctx)?;
    let is_git = a.dir.join(".git").exists() && Git::at(&a.dir).is_repo();
    let (commits, pages) = if is_git && !a.no_history {
        import_history(ctx, &mut s, a)?
    } else {
        import_folder(ctx, &mut s, a)?
    };
    let seq = s.ws.head().seq();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "commits": commits, "pages": pages, "seq": seq, "history": is_git && !a.no_history,
        }));
    }
    ctx.out.line(format!(
        "imported {} in {} (wiki version {seq})",
        crate::output::count(pages, "page version", "page versions"),
        crate::output::count(commits, "commit", "commits")
    ))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CliError::io(dir.display(), e))?
        .filter_map(std::result::Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let ft = entry
            .file_type()
            .map_err(|e| CliError::io(path.display(), e))?;
        if dir == root && (name == ".git" || name == ".zkwiki") {
            continue;
        }
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn import_folder(ctx: &Ctx, s: &mut Session, a: &ImportArgs) -> Result<(usize, usize)> {
    let mut files = Vec::new();
    walk(&a.dir, &a.dir, &mut files)?;
    let bar = ctx.out.progress(files.len() as u64, "importing");
    let (mut commits, mut pages) = (0, 0);
    let mut chunk = Vec::new();
    let mut chunk_bytes = 0;
    let author = s.ws.my_name().to_owned();
    for file in &files {
        bar.inc(1);
        let rel = file
            .strip_prefix(&a.dir)
            .map_err(|_| CliError::general("walking the folder"))?;
        let Some(rel) = rel
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
        else {
            ctx.out
                .warn(format!("skipped {} (name is not UTF-8)", file.display()));
            continue;
        };
        let path = wiki_path(a.into.as_deref(), &rel.join("/"));
        let meta = std::fs::metadata(file).map_err(|e| CliError::io(file.display(), e))?;
        if meta.len() as usize > MAX_CONTENT_LEN {
            ctx.out
                .warn(format!("skipped {:?}: larger than 16 MiB", esc(&path)));
            continue;
        }
        let content = std::fs::read(file).map_err(|e| CliError::io(file.display(), e))?;
        if let Some(why) = refusal(&path, &content) {
            ctx.out.warn(format!("skipped {:?}: {why}", esc(&path)));
            continue;
        }
        let written_at_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(crate::time::now_ms, |d| {
                i64::try_from(d.as_millis()).unwrap_or(0)
            });
        chunk_bytes += content.len();
        chunk.push(Change::Put {
            path,
            content,
            author: author.clone(),
            written_at_ms,
            note: VersionNote::default(),
        });
        pages += 1;
        if chunk_bytes >= CHUNK_BYTES || chunk.len() >= CHUNK_PAGES {
            if commit_changes(s, &chunk, IndexWrite::Defer)?.is_some() {
                commits += 1;
            }
            chunk.clear();
            chunk_bytes = 0;
        }
    }
    // The last batch, whatever the last file was (skipped or not), with the index.
    if commit_changes(s, &chunk, IndexWrite::Flush)?.is_some() {
        commits += 1;
    }
    bar.finish_and_clear();
    Ok((commits, pages))
}

struct SourceCommit {
    id: String,
    parent: Option<String>,
    author: String,
    time_ms: i64,
    note: VersionNote,
}

/// Git's `+HHMM` / `-HHMM` as minutes east of UTC (none when out of the record's range).
fn git_tz(text: &str) -> Option<i16> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (
        digits[..2].parse::<i16>().ok()?,
        digits[2..].parse::<i16>().ok()?,
    );
    let minutes = sign * (h * 60 + m);
    (minutes.abs() <= MAX_TZ_OFFSET_MINUTES).then_some(minutes)
}

fn import_history(ctx: &Ctx, s: &mut Session, a: &ImportArgs) -> Result<(usize, usize)> {
    let src = Git::at(&a.dir);
    // One NUL-terminated record per commit (the message may span lines).
    let log = src.run(
        [
            "log",
            "-z",
            "--reverse",
            "--first-parent",
            "--date=format:%z",
            "--format=%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%ad%x1f%B",
            "HEAD",
        ],
        "reading the repository's history",
    )?;
    let commits: Vec<SourceCommit> = String::from_utf8_lossy(&log)
        .split('\0')
        .filter_map(|l| {
            let mut f = l.splitn(7, '\x1f');
            let id = f.next()?.trim().to_owned();
            let parent = f
                .next()?
                .split(' ')
                .next()
                .filter(|p| !p.is_empty())
                .map(str::to_owned);
            let author = f.next()?.to_owned();
            let email = f.next()?;
            let time_ms = f.next()?.trim().parse::<i64>().ok()? * 1000;
            let tz = git_tz(f.next()?.trim());
            let message = f.next()?.trim_end();
            Some(SourceCommit {
                id,
                parent,
                author,
                time_ms,
                note: VersionNote {
                    message: truncate(message, MAX_MESSAGE_LEN),
                    author_email: truncate(email, MAX_EMAIL_LEN),
                    tz_offset_minutes: tz,
                },
            })
        })
        .collect();
    let bar = ctx.out.progress(commits.len() as u64, "replaying");
    let (mut done, mut pages) = (0, 0);
    for (i, c) in commits.iter().enumerate() {
        bar.inc(1);
        let changes = commit_changes_of(ctx, &src, c, a.into.as_deref())?;
        pages += changes
            .iter()
            .filter(|c| !matches!(c, Change::Remove { .. }))
            .count();
        let index = if i + 1 == commits.len() {
            IndexWrite::Flush
        } else {
            IndexWrite::Defer
        };
        if commit_changes(s, &changes, index)?.is_some() {
            done += 1;
        }
    }
    if commits.is_empty() {
        commit_changes(s, &[], IndexWrite::Flush)?;
    }
    bar.finish_and_clear();
    Ok((done, pages))
}

fn commit_changes_of(
    ctx: &Ctx,
    src: &Git,
    c: &SourceCommit,
    into: Option<&str>,
) -> Result<Vec<Change>> {
    let mut args = vec![
        "diff-tree",
        "-r",
        "-z",
        "-M",
        "--name-status",
        "--no-commit-id",
    ];
    let (parent, root);
    match &c.parent {
        Some(p) => {
            parent = p.clone();
            args.push(&parent);
        }
        None => {
            root = "--root".to_owned();
            args.push(&root);
        }
    }
    args.push(&c.id);
    let out = src.run(args, "reading a commit's changes")?;
    let tokens: Vec<String> = out
        .split(|&b| b == 0)
        .filter(|t| !t.is_empty())
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    let mut raw = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let status = tokens[i].clone();
        let two = status.starts_with('R') || status.starts_with('C');
        let (from, to) = if two {
            (tokens.get(i + 1).cloned(), tokens.get(i + 2).cloned())
        } else {
            (None, tokens.get(i + 1).cloned())
        };
        i += if two { 3 } else { 2 };
        let Some(to) = to else { break };
        raw.push((status, from, to));
    }
    let mut specs = Vec::new();
    for (status, _, to) in &raw {
        if !status.starts_with('D') {
            specs.push(format!("{}:{to}", c.id));
        }
    }
    let mut blobs = src.read_blobs(&specs)?.into_iter();
    let mut changes = Vec::new();
    for (status, from, to) in raw {
        let hidden = |p: &str| p.split('/').any(|s| s == ".git") || p.starts_with(".zkwiki/");
        if status.starts_with('D') {
            if !hidden(&to) {
                changes.push(Change::Remove {
                    path: wiki_path(into, &to),
                });
            }
            continue;
        }
        let content = blobs.next().flatten();
        let path = wiki_path(into, &to);
        if hidden(&to) {
            continue;
        }
        let Some(content) = content else {
            ctx.out
                .warn(format!("skipped {:?}: not a file (a submodule?)", esc(&to)));
            continue;
        };
        if let Some(why) = refusal(&path, &content) {
            ctx.out.warn(format!("skipped {:?}: {why}", esc(&to)));
            continue;
        }
        match (status.starts_with('R'), from) {
            (true, Some(from)) => changes.push(Change::Rename {
                from: wiki_path(into, &from),
                to: path,
                content,
                author: c.author.clone(),
                written_at_ms: c.time_ms,
                note: c.note.clone(),
            }),
            _ => changes.push(Change::Put {
                path,
                content,
                author: c.author.clone(),
                written_at_ms: c.time_ms,
                note: c.note.clone(),
            }),
        }
    }
    Ok(changes)
}

/// `zkwiki export DIR`.
pub fn export(ctx: &Ctx, a: &ExportArgs) -> Result<()> {
    if a.dir.is_file() || is_nonempty_dir(&a.dir) {
        return Err(CliError::usage(format!(
            "{} already exists and is not empty",
            a.dir.display()
        ))
        .with_hint("choose another folder"));
    }
    let mut s = super::pages::open(ctx)?;
    let bar = ctx.out.progress(s.ws.catalog().len() as u64, "decrypting");
    s.load_all(&mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    let tmp = fsutil::temp_dir_beside(&a.dir).map_err(|e| CliError::io(a.dir.display(), e))?;
    super::clone::write_pages(ctx, tmp.path(), &s.ws)?;
    if a.dir.exists() {
        std::fs::remove_dir(&a.dir).map_err(|e| CliError::io(a.dir.display(), e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &a.dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        CliError::io(a.dir.display(), e)
    })?;
    let (pages, seq) = (s.ws.catalog().len(), s.ws.head().seq());
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "dir": a.dir, "pages": pages, "seq": seq }));
    }
    ctx.out.line(format!(
        "exported {} (wiki version {seq}) to {}",
        crate::output::count(pages, "page", "pages"),
        a.dir.display()
    ))
}
