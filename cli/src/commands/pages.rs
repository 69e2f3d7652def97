//! Page commands: `ls`, `cat`, `put`, `edit`, `mv`, `rm`, `search`.

use std::io::Read;
use std::path::{Path, PathBuf};

use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::ids::PageId;
use data_encoding::BASE64;
use rand_core::OsRng;
use serde_json::{Value, json};

use crate::args::{CatArgs, EditArgs, LsArgs, MvArgs, PutArgs, RmArgs, SearchArgs};
use crate::context::Ctx;
use crate::error::{CliError, ErrorKind, Result};
use crate::remote::{Remote, Writer};
use crate::wiki::{self, check_user_path, format_time, kind_for_path};

fn kind_name(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Markdown => "markdown",
        PageKind::Attachment => "attachment",
        PageKind::Index => "index",
    }
}

fn in_folder(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// `zkwiki ls [FOLDER]`.
pub fn ls(ctx: &Ctx, a: &LsArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let view = remote.read(&who)?;
    let mut pages: Vec<_> = view
        .catalog
        .index
        .pages()
        .iter()
        .filter(|(_, p)| a.prefix.as_deref().is_none_or(|f| in_folder(&p.path, f)))
        .collect();
    pages.sort_by(|x, y| x.1.path.cmp(&y.1.path));
    if ctx.out.json {
        let items: Vec<Value> = pages
            .iter()
            .map(|(id, p)| {
                json!({
                    "path": p.path, "page": id.to_hex(), "kind": kind_name(p.kind),
                    "size": p.size, "author": p.author, "written_at_ms": p.written_at_ms,
                })
            })
            .collect();
        return ctx.out.json_value(&json!({
            "wiki": remote.wiki.to_hex(), "seq": view.verified.snapshot.state.seq, "pages": items
        }));
    }
    for (_, p) in pages {
        if a.long {
            ctx.out.line(format!(
                "{:<10} {:>9} {} {:<16} {}",
                kind_name(p.kind),
                p.size,
                format_time(p.written_at_ms),
                p.author,
                p.path
            ))?;
        } else {
            ctx.out.line(&p.path)?;
        }
    }
    Ok(())
}

/// `zkwiki cat PATH`.
pub fn cat(ctx: &Ctx, a: &CatArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let view = remote.read(&who)?;
    let id = view.catalog.require(&a.path)?;
    let record = view.open(&id)?;
    if ctx.out.json {
        return ctx.out.json_value(&record_json(&id, &record));
    }
    ctx.out.raw(&record.content)
}

/// A page as JSON: text content for markdown, base64 for anything else.
pub fn record_json(id: &PageId, r: &PageRecord) -> Value {
    let mut v = json!({
        "path": r.path, "page": id.to_hex(), "kind": kind_name(r.kind),
        "author": r.author, "written_at_ms": r.written_at_ms, "size": r.content.len(),
    });
    match r.markdown() {
        Some(text) => v["content"] = json!(text),
        None => v["content_base64"] = json!(BASE64.encode(&r.content)),
    }
    v
}

fn read_input(file: Option<&Path>) -> Result<Vec<u8>> {
    match file {
        None => read_stdin(),
        Some(p) if p == Path::new("-") => read_stdin(),
        Some(p) => std::fs::read(p).map_err(|e| CliError::io(p.display(), e)),
    }
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| CliError::io("reading standard input", e))?;
    Ok(buf)
}

fn committed(ctx: &Ctx, seq: Option<u64>, done: &str, path: &str) -> Result<()> {
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "path": path, "seq": seq, "changed": seq.is_some() }));
    }
    match seq {
        Some(s) => ctx.out.line(format!("{done} {path} (wiki version {s})")),
        None => ctx.out.line(format!("{path}: unchanged")),
    }
}

/// `zkwiki put PATH [FILE|-]`.
pub fn put(ctx: &Ctx, a: &PutArgs) -> Result<()> {
    check_user_path(&a.path)?;
    let content = read_input(a.file.as_deref())?;
    let kind = kind_for_path(&a.path);
    if kind == PageKind::Markdown && std::str::from_utf8(&content).is_err() {
        return Err(CliError::usage(format!("{} is not UTF-8 text", a.path))
            .with_hint("markdown pages (.md) must be UTF-8; give binary files another extension"));
    }
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let mut writer = Writer::begin(&remote, &who)?;
    let fresh_id = PageId::random(&mut OsRng);
    let seq = writer.commit(true, &mut |stage| {
        let id = stage.find(&a.path);
        if let Some(id) = id
            && stage.open(&id)?.content == content
        {
            return Ok(());
        }
        let record = PageRecord {
            kind,
            path: a.path.clone(),
            author: who.user.clone(),
            written_at_ms: wiki::now_ms(),
            content: content.clone(),
        };
        stage.put(id.unwrap_or(fresh_id), &record)
    })?;
    committed(ctx, seq, "wrote", &a.path)
}

/// `zkwiki mv FROM TO`.
pub fn mv(ctx: &Ctx, a: &MvArgs) -> Result<()> {
    check_user_path(&a.to)?;
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let mut writer = Writer::begin(&remote, &who)?;
    let seq = writer.commit(true, &mut |stage| {
        let id = stage
            .find(&a.from)
            .ok_or_else(|| CliError::not_found(format!("no page {:?} in this wiki", a.from)))?;
        if stage.find(&a.to).is_some() {
            return Err(CliError::usage(format!("a page {:?} already exists", a.to))
                .with_hint("remove it first, or choose another name"));
        }
        let mut record = stage.open(&id)?;
        record.path = a.to.clone();
        record.author = who.user.clone();
        record.written_at_ms = wiki::now_ms();
        stage.put(id, &record)
    })?;
    committed(ctx, seq, &format!("moved {} to", a.from), &a.to)
}

/// `zkwiki rm PATH`.
pub fn rm(ctx: &Ctx, a: &RmArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let mut writer = Writer::begin(&remote, &who)?;
    let seq = writer.commit(true, &mut |stage| {
        let id = stage
            .find(&a.path)
            .ok_or_else(|| CliError::not_found(format!("no page {:?} in this wiki", a.path)))?;
        stage.remove(&id)
    })?;
    committed(ctx, seq, "removed", &a.path)
}

/// `zkwiki search TERMS…`.
pub fn search(ctx: &Ctx, a: &SearchArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let view = remote.read(&who)?;
    let query = a.terms.join(" ");
    let started = std::time::Instant::now();
    let hits = view.catalog.index.search(&query);
    let micros = started.elapsed().as_micros();
    let pages = view.catalog.index.pages();
    if ctx.out.json {
        let items: Vec<Value> = hits
            .iter()
            .filter_map(|id| {
                pages
                    .get(id)
                    .map(|p| json!({ "path": p.path, "page": id.to_hex() }))
            })
            .collect();
        return ctx
            .out
            .json_value(&json!({ "query": query, "hits": items, "search_us": micros }));
    }
    if hits.is_empty() {
        ctx.out.note(format!("no page contains {query:?}"));
    }
    for id in hits {
        if let Some(p) = pages.get(&id) {
            ctx.out.line(&p.path)?;
        }
    }
    Ok(())
}

/// What `edit` ended with.
enum EditOutcome {
    Written,
    Merged,
    Recreated,
    Conflict,
}

/// `zkwiki edit PATH`.
pub fn edit(ctx: &Ctx, a: &EditArgs) -> Result<()> {
    check_user_path(&a.path)?;
    if kind_for_path(&a.path) != PageKind::Markdown {
        return Err(CliError::usage("`zkwiki edit` edits markdown pages (.md)")
            .with_hint("use `zkwiki put PATH FILE` for other files"));
    }
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let view = remote.read(&who)?;
    let base_id = view.catalog.find(&a.path);
    let (base_text, base_hash) = match base_id {
        Some(id) => {
            let record = view.open(&id)?;
            let text = record
                .markdown()
                .map(str::to_owned)
                .ok_or_else(|| CliError::general(format!("{} is not UTF-8 markdown", a.path)))?;
            (
                text,
                view.verified
                    .snapshot
                    .manifest
                    .pages
                    .get(&id)
                    .map(|e| e.hash),
            )
        }
        None => (String::new(), None),
    };
    drop(view);
    let ours = run_editor(&a.path, &base_text)?;
    if ours == base_text {
        ctx.out.note("no changes");
        return committed(ctx, None, "", &a.path);
    }
    let fresh_id = PageId::random(&mut OsRng);
    let mut outcome = EditOutcome::Written;
    let result = Writer::begin(&remote, &who).and_then(|mut writer| {
        writer.commit(true, &mut |stage| {
            outcome = EditOutcome::Written;
            let now_id = base_id
                .filter(|id| stage.base_hash(id).is_some())
                .or_else(|| stage.find(&a.path));
            let text = match now_id {
                Some(id) if stage.base_hash(&id) == base_hash && base_id == Some(id) => {
                    ours.clone()
                }
                Some(id) => {
                    let theirs = stage.open(&id)?;
                    let theirs = theirs.markdown().unwrap_or_default();
                    match diffy::merge(&base_text, &ours, theirs) {
                        Ok(merged) => {
                            outcome = EditOutcome::Merged;
                            merged
                        }
                        Err(_) => {
                            outcome = EditOutcome::Conflict;
                            return Ok(());
                        }
                    }
                }
                None => {
                    if base_id.is_some() {
                        outcome = EditOutcome::Recreated;
                    }
                    ours.clone()
                }
            };
            let record = PageRecord {
                kind: PageKind::Markdown,
                path: a.path.clone(),
                author: who.user.clone(),
                written_at_ms: wiki::now_ms(),
                content: text.into_bytes(),
            };
            stage.put(now_id.or(base_id).unwrap_or(fresh_id), &record)
        })
    });
    let seq = match result {
        Ok(seq) => seq,
        Err(e) => {
            // Never lose the user's text.
            let saved = save_conflict(&a.path, &ours)?;
            let hint = format!(
                "your text is saved in {}; once the problem is fixed: `zkwiki put {} {}`",
                saved.display(),
                a.path,
                saved.display()
            );
            return Err(e.with_hint(hint));
        }
    };
    match outcome {
        EditOutcome::Conflict => {
            let saved = save_conflict(&a.path, &ours)?;
            Err(CliError::new(
                ErrorKind::Conflict,
                format!(
                    "{} was changed by someone else while you edited, and the changes overlap; nothing was written; your text is saved in {}",
                    a.path,
                    saved.display()
                ),
            )
            .with_hint(format!(
                "compare with `zkwiki cat {}`, combine them, then `zkwiki put {} {}`",
                a.path,
                a.path,
                saved.display()
            )))
        }
        EditOutcome::Merged => {
            ctx.out
                .note("the page changed while you edited; both changes were merged");
            committed(ctx, seq, "merged and wrote", &a.path)
        }
        EditOutcome::Recreated => {
            ctx.out
                .warn("the page was deleted while you edited; it was written again");
            committed(ctx, seq, "wrote", &a.path)
        }
        EditOutcome::Written => committed(ctx, seq, "wrote", &a.path),
    }
}

fn run_editor(path: &str, text: &str) -> Result<String> {
    let dir = tempfile::Builder::new()
        .prefix("zkwiki-edit-")
        .tempdir()
        .map_err(|e| CliError::io("creating a temporary folder", e))?;
    let name = path.rsplit('/').next().unwrap_or("page.md");
    let file = dir.path().join(name);
    crate::fsutil::write_atomic(&file, text.as_bytes(), true)
        .map_err(|e| CliError::io(file.display(), e))?;
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".to_owned());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&file)
        .status()
        .map_err(|e| CliError::general(format!("cannot start the editor {editor:?}: {e}")))?;
    if !status.success() {
        return Err(CliError::general(format!(
            "the editor {editor:?} exited with {status}; nothing was written"
        )));
    }
    let bytes = std::fs::read(&file).map_err(|e| CliError::io(file.display(), e))?;
    String::from_utf8(bytes)
        .map_err(|_| CliError::usage("the edited text is not UTF-8; nothing was written"))
}

fn save_conflict(path: &str, ours: &str) -> Result<PathBuf> {
    let name = path.rsplit('/').next().unwrap_or("page.md");
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_owned(), format!(".{e}")),
        None => (name.to_owned(), String::new()),
    };
    for n in 0..1000 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let candidate = PathBuf::from(format!("{stem}.mine{suffix}{ext}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(ours.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| CliError::io(candidate.display(), e))?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(CliError::io(candidate.display(), e)),
        }
    }
    Err(CliError::general(
        "cannot find a free file name for your text",
    ))
}
