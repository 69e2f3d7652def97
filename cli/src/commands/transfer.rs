//! `import DIR` and `export DIR`.
//!
//! Import takes a folder of pages (markdown and attachments, nested folders, front matter kept
//! verbatim) or a git repository such as an Otterwiki one, whose history is replayed commit by
//! commit, oldest first, each as one wiki commit keeping the original author name and time in
//! the page records (renames keep the page id, so `zkwiki log` follows them), with its message,
//! e-mail and time zone. Import is idempotent and resumable: each wiki commit of a git import
//! also records, in the wiki's encrypted settings, the last source commit it holds, so a re-run
//! (or a run after an interrupted one) starts after it; a folder is compared page by page.
//! Export writes the current pages back in the same layout (export → import → export is
//! byte-identical), or with `--git` a repository replaying the wiki's history.

use std::path::{Path, PathBuf};

use client::display::escape as esc;
use client::links::WikilinkStyle;
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
use crate::error::{CliError, ErrorKind, Result};
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

/// Stages `changes`; the number of page versions written (a page already as the change leaves
/// it is not written again).
fn apply(d: &mut Draft<'_>, changes: &[Change]) -> client::Result<usize> {
    let mut written = 0;
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
                written += 1;
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
                written += 1;
            }
            Change::Remove { path } => {
                if let Some(id) = d.find(path) {
                    d.remove(&id)?;
                }
            }
        }
    }
    Ok(written)
}

/// What else an import commit records besides its pages, in the same wiki commit.
#[derive(Default)]
struct Extra<'a> {
    /// `(source, last change)`: how far the import from `source` got.
    mark: Option<(&'a str, &'a str)>,
    /// The wikilink style to save as the wiki's setting.
    style: Option<WikilinkStyle>,
}

impl Extra<'_> {
    fn is_empty(&self) -> bool {
        self.mark.is_none() && self.style.is_none()
    }

    fn stage(&self, d: &mut Draft<'_>) -> client::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let current = d.settings()?;
        let style = self.style.filter(|s| *s != current.wikilink_style);
        let mark = match self.mark {
            Some((source, last)) if current.import_mark(source)?.as_deref() != Some(last) => {
                Some((source, last))
            }
            _ => None,
        };
        if style.is_none() && mark.is_none() {
            return Ok(());
        }
        let mut next = current;
        if let Some(style) = style {
            next.wikilink_style = style;
        }
        if let Some((source, last)) = mark {
            next.set_import_mark(source, last)?;
        }
        d.set_settings(&next)
    }
}

/// Commits a batch with what it records besides (`extra`); the index waits for the last one
/// (`index`: [`IndexWrite::Flush`]). The wiki version and the page versions written, or `None`
/// when nothing changed.
fn commit_changes(
    s: &mut Session,
    changes: &[Change],
    extra: &Extra<'_>,
    index: IndexWrite,
) -> Result<Option<(u64, usize)>> {
    if changes.is_empty() && extra.is_empty() && index == IndexWrite::Defer {
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
    s.write(index, &mut |d| {
        let written = apply(d, changes)?;
        extra.stage(d)?;
        Ok(written)
    })
}

/// What an import did, for its summary.
#[derive(Default)]
struct Summary {
    /// Wiki commits written.
    commits: usize,
    /// Page versions written.
    written: usize,
    /// Pages (or page changes) already in the wiki as the source has them.
    unchanged: usize,
    /// Files skipped, each with a warning naming why.
    skipped: usize,
    /// For a git repository: source commits imported now, and imported before.
    source_new: usize,
    source_before: usize,
    /// The wikilink style saved, when the import set it.
    style: Option<WikilinkStyle>,
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
    let history = is_git && !a.no_history;
    let style_before = s.ws.wikilink_style();
    let mut sum = if history {
        import_history(ctx, &mut s, a)?
    } else {
        import_folder(ctx, &mut s, a)?
    };
    sum.style = Some(s.ws.wikilink_style()).filter(|s| *s != style_before);
    let seq = s.ws.head().seq();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "commits": sum.commits, "pages": sum.written, "unchanged": sum.unchanged,
            "skipped": sum.skipped, "seq": seq, "history": history,
            "source_commits": history.then_some(sum.source_new),
            "source_commits_before": history.then_some(sum.source_before),
            "wikilink_style": sum.style.map(WikilinkStyle::as_str),
        }));
    }
    let count = crate::output::count;
    if history && sum.source_new == 0 {
        return ctx.out.line(format!(
            "nothing new: the wiki holds all {} of {} (wiki version {seq})",
            count(sum.source_before, "commit", "commits"),
            a.dir.display()
        ));
    }
    let mut line = format!(
        "imported {} in {} (wiki version {seq})",
        count(sum.written, "page version", "page versions"),
        count(sum.commits, "commit", "commits")
    );
    if history {
        line.push_str(&format!(
            "; {} of the repository new, {} imported before",
            count(sum.source_new, "commit", "commits"),
            sum.source_before
        ));
    } else if sum.unchanged > 0 {
        line.push_str(&format!("; {} already as in the folder", sum.unchanged));
    }
    if sum.skipped > 0 {
        line.push_str(&format!("; {} skipped (see above)", sum.skipped));
    }
    ctx.out.line(line)?;
    if let Some(style) = sum.style {
        ctx.out.line(format!(
            "wikilinks in this wiki are now read as [[{}]]",
            match style {
                WikilinkStyle::LabelFirst => "Label|Target",
                WikilinkStyle::TargetFirst => "Target|Label",
            }
        ))?;
    }
    Ok(())
}

/// The style `--wikilink-style` names.
fn style_arg(a: &ImportArgs) -> Option<WikilinkStyle> {
    a.wikilink_style.as_deref().and_then(WikilinkStyle::parse)
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

fn import_folder(ctx: &Ctx, s: &mut Session, a: &ImportArgs) -> Result<Summary> {
    let mut files = Vec::new();
    walk(&a.dir, &a.dir, &mut files)?;
    let bar = ctx.out.progress(files.len() as u64, "importing");
    let mut sum = Summary::default();
    let mut chunk = Vec::new();
    let mut chunk_bytes = 0;
    let extra = Extra {
        style: style_arg(a),
        ..Extra::default()
    };
    let author = s.ws.my_name().to_owned();
    let mut pages = 0;
    let mut commit = |s: &mut Session, chunk: &mut Vec<Change>, index| {
        if let Some((_, written)) = commit_changes(s, chunk, &extra, index)? {
            sum.commits += 1;
            sum.written += written;
        }
        chunk.clear();
        Ok::<_, CliError>(())
    };
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
            sum.skipped += 1;
            continue;
        };
        let path = wiki_path(a.into.as_deref(), &rel.join("/"));
        let meta = std::fs::metadata(file).map_err(|e| CliError::io(file.display(), e))?;
        if meta.len() as usize > MAX_CONTENT_LEN {
            ctx.out
                .warn(format!("skipped {:?}: larger than 16 MiB", esc(&path)));
            sum.skipped += 1;
            continue;
        }
        let content = std::fs::read(file).map_err(|e| CliError::io(file.display(), e))?;
        if let Some(why) = refusal(&path, &content) {
            ctx.out.warn(format!("skipped {:?}: {why}", esc(&path)));
            sum.skipped += 1;
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
            commit(s, &mut chunk, IndexWrite::Defer)?;
            chunk_bytes = 0;
        }
    }
    // The last batch, whatever the last file was (skipped or not), with the index.
    commit(s, &mut chunk, IndexWrite::Flush)?;
    bar.finish_and_clear();
    sum.unchanged = pages - sum.written;
    Ok(sum)
}

struct SourceCommit {
    id: String,
    parent: Option<String>,
    author: String,
    email: String,
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

/// The repository's first-parent history from its first commit to HEAD, oldest first.
fn source_commits(src: &Git) -> Result<Vec<SourceCommit>> {
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
    Ok(String::from_utf8_lossy(&log)
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
                email: email.to_owned(),
                time_ms,
                note: VersionNote {
                    message: truncate(message, MAX_MESSAGE_LEN),
                    author_email: truncate(email, MAX_EMAIL_LEN),
                    tz_offset_minutes: tz,
                },
            })
        })
        .collect())
}

/// Whether a repository file is left out of an import by name (git's own, zkwiki's, refused).
fn left_out(path: &str, into: Option<&str>) -> bool {
    path.split('/').any(|s| s == ".git")
        || path.starts_with(".zkwiki/")
        || check_new(&wiki_path(into, path)).is_err()
}

/// The newest of `commits` whose files are exactly the wiki's pages (under `into`), byte for
/// byte: where a wiki imported before imports were recorded stands. None when the wiki has no
/// page there.
fn holding(
    s: &mut Session,
    src: &Git,
    commits: &[SourceCommit],
    into: Option<&str>,
) -> Result<Option<usize>> {
    let prefix = match into.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}/"),
        None => String::new(),
    };
    let ids: Vec<PageId> =
        s.ws.catalog()
            .iter()
            .filter(|(_, p)| p.path.starts_with(&prefix) && p.kind != PageKind::Index)
            .map(|(id, _)| *id)
            .collect();
    if ids.is_empty() {
        return Ok(None);
    }
    s.load(&ids)?;
    let mut wiki = std::collections::BTreeMap::new();
    for id in &ids {
        let r = s.ws.record(id)?;
        wiki.insert(r.path[prefix.len()..].to_owned(), r.content.clone());
    }
    let mut trees_seen = std::collections::BTreeSet::new();
    for (i, c) in commits.iter().enumerate().rev() {
        let files: Vec<_> = src
            .ls_tree(&c.id)?
            .into_iter()
            .filter(|e| e.kind == "blob" && !left_out(&e.path, into))
            .collect();
        if files.len() != wiki.len() || files.iter().any(|f| !wiki.contains_key(&f.path)) {
            continue;
        }
        let key: Vec<&str> = files.iter().map(|f| f.oid.as_str()).collect();
        if !trees_seen.insert(key.join(" ")) {
            continue;
        }
        let blobs = src.read_blobs(&files.iter().map(|f| f.oid.clone()).collect::<Vec<_>>())?;
        if files
            .iter()
            .zip(&blobs)
            .all(|(f, b)| b.as_deref() == wiki.get(&f.path).map(Vec::as_slice))
        {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The author e-mail Otterwiki gives the first commit of every repository it creates.
const OTTERWIKI_ROBOT: &str = "noreply@otterwiki";

fn import_history(ctx: &Ctx, s: &mut Session, a: &ImportArgs) -> Result<Summary> {
    let src = Git::at(&a.dir);
    let commits = source_commits(&src)?;
    let mut sum = Summary::default();
    let Some(first) = commits.first() else {
        commit_changes(s, &[], &Extra::default(), IndexWrite::Flush)?;
        return Ok(sum);
    };
    // Every copy of a repository has the same first commit: the source's name.
    let source = format!("git:{}", first.id);
    // Only whole-wiki members read and write the settings the progress is kept in.
    let recorded = s.ws.keys().is_whole_wiki();
    if !recorded {
        ctx.out.warn(
            "only a member with access to the whole wiki can record how far an import got: \
             importing this repository again replays it from its first commit",
        );
    }
    let mark = match s.ws.settings() {
        Some(st) => st.import_mark(&source)?,
        None => None,
    };
    let start = match mark {
        Some(last) if recorded => {
            let at =
                commits.iter().position(|c| c.id == last).ok_or_else(|| {
                    CliError::new(ErrorKind::Conflict, format!(
                    "this wiki holds {} up to its commit {}, which the repository's history \
                     (the first parents of HEAD) no longer contains",
                    a.dir.display(),
                    esc(&last[..last.len().min(12)])
                ))
                .with_hint(
                    "its history was rewritten: import it into a new wiki, or import only its \
                     current files with --no-history",
                )
                })?;
            at + 1
        }
        // Not recorded: a wiki imported before imports were recorded may hold the repository
        // already; then resume after the commit it holds.
        _ if recorded => match holding(s, &src, &commits, a.into.as_deref())? {
            Some(at) => {
                ctx.out.note(format!(
                    "this wiki already holds {} as of its commit {}: importing what came after",
                    a.dir.display(),
                    &commits[at].id[..12.min(commits[at].id.len())]
                ));
                at + 1
            }
            None => 0,
        },
        _ => 0,
    };
    sum.source_before = start;
    let todo = &commits[start..];
    sum.source_new = todo.len();
    // The wikilink style: as asked, else Otterwiki's default for an Otterwiki repository
    // imported for the first time by a member who may write the settings (a folder-scoped
    // member's import is not stopped by it).
    let otterwiki = first.email == OTTERWIKI_ROBOT;
    let style = style_arg(a)
        .or_else(|| (otterwiki && start == 0 && recorded).then_some(WikilinkStyle::LabelFirst));
    let bar = ctx.out.progress(todo.len() as u64, "replaying");
    // A source commit that changes nothing here (only skipped files) moves the mark with the
    // next one that does, or with the last.
    for (i, c) in todo.iter().enumerate() {
        bar.inc(1);
        let changes = commit_changes_of(ctx, &src, c, a.into.as_deref(), &mut sum.skipped)?;
        let last = i + 1 == todo.len();
        if changes.is_empty() && !last {
            continue;
        }
        let extra = Extra {
            mark: recorded.then_some((source.as_str(), c.id.as_str())),
            style: if i == 0 { style } else { None },
        };
        let index = if last {
            IndexWrite::Flush
        } else {
            IndexWrite::Defer
        };
        if let Some((_, written)) = commit_changes(s, &changes, &extra, index)? {
            sum.commits += 1;
            sum.written += written;
            sum.unchanged += changes
                .iter()
                .filter(|c| !matches!(c, Change::Remove { .. }))
                .count()
                .saturating_sub(written);
        }
    }
    if todo.is_empty() {
        // Records the mark when it was not (a wiki found holding the repository).
        let last = commits.last().map(|c| c.id.as_str()).unwrap_or_default();
        let extra = Extra {
            mark: recorded.then_some((source.as_str(), last)),
            ..Extra::default()
        };
        commit_changes(s, &[], &extra, IndexWrite::Flush)?;
    }
    bar.finish_and_clear();
    Ok(sum)
}

fn commit_changes_of(
    ctx: &Ctx,
    src: &Git,
    c: &SourceCommit,
    into: Option<&str>,
    skipped: &mut usize,
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
            *skipped += 1;
            continue;
        };
        if let Some(why) = refusal(&path, &content) {
            ctx.out.warn(format!("skipped {:?}: {why}", esc(&to)));
            *skipped += 1;
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

/// `zkwiki export DIR` (`--git`: a repository replaying the history).
pub fn export(ctx: &Ctx, a: &ExportArgs) -> Result<()> {
    if a.dir.is_file() || is_nonempty_dir(&a.dir) {
        return Err(CliError::usage(format!(
            "{} already exists and is not empty",
            a.dir.display()
        ))
        .with_hint("choose another folder"));
    }
    let mut s = super::pages::open(ctx)?;
    // Written beside, then moved into place: an interrupted export leaves nothing half-done.
    let tmp = fsutil::temp_dir_beside(&a.dir).map_err(|e| CliError::io(a.dir.display(), e))?;
    let commits = if a.git {
        Some(super::replay::export_git(ctx, &mut s, tmp.path())?)
    } else {
        let bar = ctx.out.progress(s.ws.catalog().len() as u64, "decrypting");
        s.load_all(&mut |n| bar.inc(n as u64))?;
        bar.finish_and_clear();
        super::clone::write_pages(ctx, tmp.path(), &s.ws)?;
        None
    };
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
            .json_value(&json!({ "dir": a.dir, "pages": pages, "seq": seq, "commits": commits }));
    }
    let count = crate::output::count;
    ctx.out.line(match commits {
        Some(n) => format!(
            "exported {} in a git repository of {} (wiki version {seq}) to {}",
            count(pages, "page", "pages"),
            count(n, "commit", "commits"),
            a.dir.display()
        ),
        None => format!(
            "exported {} (wiki version {seq}) to {}",
            count(pages, "page", "pages"),
            a.dir.display()
        ),
    })
}
