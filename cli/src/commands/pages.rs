//! Page commands: `ls`, `cat`, `put`, `edit`, `mv`, `rm`, `search`.
//!
//! Every name and path printed comes from other people: it goes through
//! `client::display::escape` ([`esc`]), so a path or author cannot drive the terminal.

use std::io::Read;
use std::path::{Path, PathBuf};

use client::display::escape as esc;
use client::history::Provenance;
use client::workspace::IndexWrite;
use core_crypto::envelope::{PageKind, PageRecord, VersionNote};
use core_crypto::ids::PageId;
use data_encoding::BASE64;
use rand_core::OsRng;
use serde_json::{Value, json};

use crate::args::{CatArgs, EditArgs, LsArgs, MvArgs, PutArgs, RmArgs, SearchArgs};
use crate::context::Ctx;
use crate::error::{CliError, ErrorKind, Result};
use crate::remote::{Remote, Session};
use crate::time::format_time;

fn in_folder(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// Opens the selected wiki for a command (fetch, verify, unlock, catalog).
pub fn open(ctx: &Ctx) -> Result<Session> {
    let remote = Remote::open(ctx)?;
    let session = remote.session_with(&mut || ctx.unlock())?;
    warn_isolated(ctx, &session);
    Ok(session)
}

/// Tells the user about pages a member wrote against the rules (kept out of everything).
pub fn warn_isolated(ctx: &Ctx, s: &Session) {
    for (id, iso) in s.ws.isolated() {
        ctx.out.warn(format!(
            "{}; a writer can remove it with `zkwiki rm --id {id}`",
            iso.describe(id)
        ));
    }
}

/// The isolated pages as JSON.
pub fn isolated_json(s: &Session) -> Vec<Value> {
    s.ws.isolated()
        .iter()
        .map(|(id, iso)| {
            json!({
                "page": id.to_hex(),
                "problem": iso.problem,
                "path": iso.path.as_deref().map(|p| esc(p).into_owned()),
                "written_by": iso.written.as_ref().map(|w| esc(&w.signer).into_owned()),
                "seq": iso.written.as_ref().map(|w| w.seq),
            })
        })
        .collect()
}

/// `zkwiki ls [FOLDER]`.
pub fn ls(ctx: &Ctx, a: &LsArgs) -> Result<()> {
    let mut s = open(ctx)?;
    let mut pages: Vec<(PageId, core_crypto::index::IndexedPage)> =
        s.ws.catalog()
            .iter()
            .filter(|(_, p)| a.prefix.as_deref().is_none_or(|f| in_folder(&p.path, f)))
            .map(|(id, p)| (*id, p.clone()))
            .collect();
    pages.sort_by(|x, y| x.1.path.cmp(&y.1.path));
    if a.long || ctx.out.json {
        let ids: Vec<PageId> = pages.iter().map(|(id, _)| *id).collect();
        s.attribute_all(&ids)?;
    }
    let signer = |s: &Session, id: &PageId| s.ws.provenance(id).map(|p| p.signer.clone());
    if ctx.out.json {
        let items: Vec<Value> = pages
            .iter()
            .map(|(id, p)| {
                json!({
                    "path": esc(&p.path), "page": id.to_hex(), "kind": p.kind.name(),
                    "size": p.size, "signer": signer(&s, id).map(|n| esc(&n).into_owned()),
                    "author_claimed": esc(&p.author), "written_at_ms": p.written_at_ms,
                })
            })
            .collect();
        return ctx.out.json_value(&json!({
            "wiki": s.remote.wiki.to_hex(), "seq": s.ws.head().seq(), "pages": items,
            "isolated": isolated_json(&s),
        }));
    }
    ctx.out.lines(pages.iter().map(|(id, p)| {
        if a.long {
            let by = signer(&s, id).unwrap_or_else(|| "?".to_owned());
            format!(
                "{:<10} {:>9} {} {:<16} {}",
                p.kind.name(),
                p.size,
                format_time(p.written_at_ms),
                esc(&by),
                esc(&p.path)
            )
        } else {
            esc(&p.path).into_owned()
        }
    }))
}

/// `zkwiki cat PATH` (or `--id`).
pub fn cat(ctx: &Ctx, a: &CatArgs) -> Result<()> {
    let mut s = open(ctx)?;
    let id = s.ws.require(&a.path)?;
    let record = s.record(&id)?.clone();
    if ctx.out.json {
        let by = s.provenance(&id)?;
        return ctx.out.json_value(&record_json(&id, &record, by.as_ref()));
    }
    ctx.out.raw(&record.content)
}

/// A page as JSON: text content for markdown, base64 for anything else. `signer` is the member
/// whose key signed the version; `author_claimed` what the record says (e.g. an imported author).
pub fn record_json(id: &PageId, r: &PageRecord, by: Option<&Provenance>) -> Value {
    let mut v = json!({
        "path": esc(&r.path), "page": id.to_hex(), "kind": r.kind.name(),
        "signer": by.map(|p| esc(&p.signer).into_owned()), "seq": by.map(|p| p.seq),
        "author_claimed": esc(&r.author), "written_at_ms": r.written_at_ms, "size": r.content.len(),
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
            .json_value(&json!({ "path": esc(path), "seq": seq, "changed": seq.is_some() }));
    }
    match seq {
        Some(s) => ctx
            .out
            .line(format!("{done} {} (wiki version {s})", esc(path))),
        None => ctx.out.line(format!("{}: unchanged", esc(path))),
    }
}

/// The note of a version written from the command line: its `-m` message.
fn note(message: Option<&str>) -> VersionNote {
    VersionNote {
        message: message.unwrap_or_default().to_owned(),
        ..VersionNote::default()
    }
}

/// `zkwiki put PATH [FILE|-]`.
pub fn put(ctx: &Ctx, a: &PutArgs) -> Result<()> {
    client::policy::check_new(&a.path)?;
    let content = read_input(a.file.as_deref())?;
    if client::policy::kind_for_path(&a.path) == PageKind::Markdown
        && std::str::from_utf8(&content).is_err()
    {
        return Err(
            CliError::usage(format!("{} is not UTF-8 text", esc(&a.path))).with_hint(
                "markdown pages (.md) must be UTF-8; give binary files another extension",
            ),
        );
    }
    let mut s = open(ctx)?;
    let fresh = PageId::random(&mut OsRng);
    let seq = s.write(IndexWrite::WhenDue, &mut |d| {
        d.set_note(note(a.message.as_deref()));
        let id = d.find(&a.path);
        if let Some(id) = id
            && d.current(&id)?.content == content
            && d.current(&id)?.path == a.path
        {
            return Ok(());
        }
        d.put_content(id.unwrap_or(fresh), &a.path, content.clone())
            .map(|_| ())
    })?;
    committed(ctx, seq.map(|(s, ())| s), "wrote", &a.path)
}

/// `zkwiki mv FROM TO`.
pub fn mv(ctx: &Ctx, a: &MvArgs) -> Result<()> {
    client::policy::check_new(&a.to)?;
    let mut s = open(ctx)?;
    if a.update_links {
        // Every page that may hold links is read (together, not one by one on demand); the
        // attachments the catalog names are not.
        let catalog = s.ws.catalog();
        let ids: Vec<PageId> =
            s.ws.snapshot()
                .manifest
                .pages
                .keys()
                .filter(|id| !s.ws.is_index_page(id))
                .filter(|id| {
                    catalog
                        .get(id)
                        .is_none_or(|p| p.kind != PageKind::Attachment)
                })
                .copied()
                .collect();
        s.load(&ids)?;
    }
    let seq = s.write(IndexWrite::WhenDue, &mut |d| {
        let id = d.find(&a.from).ok_or_else(|| {
            client::Error::not_found(format!("no page {:?} in this wiki", esc(&a.from)))
        })?;
        d.set_note(note(a.message.as_deref()));
        if a.update_links {
            return d.rename_updating_links(id, &a.to).map(Some);
        }
        let mut record = d.current(&id)?.clone();
        record.path = a.to.clone();
        d.stamp(&mut record);
        d.put(id, record).map(|_| None)
    })?;
    let update = seq.as_ref().and_then(|(_, u)| u.clone());
    if ctx.out.json
        && let Some(u) = &update
    {
        return ctx.out.json_value(&json!({
            "path": esc(&a.to),
            "seq": seq.map(|(s, _)| s),
            "changed": true,
            "links_updated": u.links,
            "pages_updated": u
                .pages
                .iter()
                .filter_map(|id| s.ws.catalog().get(id))
                .map(|p| esc(&p.path).into_owned())
                .collect::<Vec<_>>(),
            "links_kept": u.kept,
        }));
    }
    committed(
        ctx,
        seq.map(|(s, _)| s),
        &format!("moved {} to", esc(&a.from)),
        &a.to,
    )?;
    if let Some(u) = update {
        ctx.out.line(format!(
            "updated {} link{} in {} page{}{}",
            u.links,
            if u.links == 1 { "" } else { "s" },
            u.pages.len(),
            if u.pages.len() == 1 { "" } else { "s" },
            if u.kept > 0 {
                format!(
                    " ({} left as written: no link in that form can name the new path)",
                    u.kept
                )
            } else {
                String::new()
            }
        ))?;
    }
    Ok(())
}

/// `zkwiki rm PATH` (or `--id PAGE` for a page that cannot be named by a path, such as one a
/// member wrote against the rules).
pub fn rm(ctx: &Ctx, a: &RmArgs) -> Result<()> {
    let mut s = open(ctx)?;
    let target = match (&a.path, &a.id) {
        (_, Some(hex)) => PageId::from_hex(hex)?,
        (Some(path), None) => s.ws.require(path)?,
        (None, None) => {
            return Err(CliError::usage("name a page: PATH or --id PAGE")
                .with_hint("`zkwiki ls` lists paths; warnings name the ids of unreadable pages"));
        }
    };
    let seq = s.write(IndexWrite::WhenDue, &mut |d| d.remove(&target))?;
    let name = a.path.clone().unwrap_or_else(|| target.to_hex());
    committed(ctx, seq.map(|(s, ())| s), "removed", &name)
}

/// `zkwiki search TERMS…`: every word must match; the last also as a prefix (as in the web app
/// and the MCP tool: one search everywhere). Shows each page's matching lines as `path:line:
/// text`, like `rg`; exits 1 when nothing matches.
pub fn search(ctx: &Ctx, a: &SearchArgs) -> Result<()> {
    let mut s = open(ctx)?;
    let query = a.terms.join(" ");
    let started = std::time::Instant::now();
    let hits = s.ws.search(&query, usize::MAX);
    let micros = started.elapsed().as_micros();
    let mut results = Vec::with_capacity(hits.len());
    for h in &hits {
        let mut lines = Vec::new();
        if !a.files_with_matches {
            let record = s.record(&h.page)?;
            if let Some(text) = record.markdown() {
                for (n, line) in client::search::matching_lines(text, &query, a.max_lines) {
                    lines.push((n, line.to_owned()));
                }
            }
        }
        results.push((h, lines));
    }
    if ctx.out.json {
        let items: Vec<Value> = results
            .iter()
            .map(|(h, lines)| {
                json!({
                    "path": esc(&h.path), "page": h.page.to_hex(),
                    "lines": lines.iter().map(|(n, l)| json!({"line": n, "text": esc(l)})).collect::<Vec<_>>(),
                })
            })
            .collect();
        ctx.out
            .json_value(&json!({ "query": query, "hits": items, "search_us": micros }))?;
    } else {
        ctx.out.lines(results.iter().flat_map(|(h, lines)| {
            let path = esc(&h.path);
            let bare = lines.is_empty().then(|| path.clone().into_owned());
            bare.into_iter().chain(
                lines
                    .iter()
                    .map(move |(n, line)| format!("{path}:{n}:{}", esc(line))),
            )
        }))?;
    }
    if hits.is_empty() {
        return Err(CliError::new(ErrorKind::NoMatch, "no page matches"));
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
    client::policy::check_new(&a.path)?;
    if client::policy::kind_for_path(&a.path) != PageKind::Markdown {
        return Err(CliError::usage("`zkwiki edit` edits markdown pages (.md)")
            .with_hint("use `zkwiki put PATH FILE` for other files"));
    }
    let mut s = open(ctx)?;
    let base_id = s.ws.find(&a.path);
    let (base_text, base_hash) = match base_id {
        Some(id) => {
            let record = s.record(&id)?;
            let text = record.markdown().map(str::to_owned).ok_or_else(|| {
                CliError::general(format!("{} is not UTF-8 markdown", esc(&a.path)))
            })?;
            (
                text,
                s.ws.snapshot().manifest.pages.get(&id).map(|e| e.hash),
            )
        }
        None => (String::new(), None),
    };
    let ours = run_editor(&a.path, &base_text)?;
    if ours == base_text {
        ctx.out.note("no changes");
        return committed(ctx, None, "", &a.path);
    }
    let fresh = PageId::random(&mut OsRng);
    let mut outcome = EditOutcome::Written;
    // Others may have written meanwhile: the write starts from the server's head.
    let result = s.refresh().and_then(|()| {
        s.write(IndexWrite::WhenDue, &mut |d| {
            outcome = EditOutcome::Written;
            d.set_note(note(a.message.as_deref()));
            let now_id = base_id
                .filter(|id| d.base_hash(id).is_some())
                .or_else(|| d.find(&a.path));
            let text = match now_id {
                Some(id) if d.base_hash(&id) == base_hash && base_id == Some(id) => ours.clone(),
                Some(id) => {
                    let theirs = d.current(&id)?.markdown().unwrap_or_default().to_owned();
                    let merged =
                        client::merge::merge(&base_text, &ours, &theirs, "yours", "theirs");
                    if merged.conflicts > 0 {
                        outcome = EditOutcome::Conflict;
                        return Ok(());
                    }
                    outcome = EditOutcome::Merged;
                    merged.text
                }
                None => {
                    if base_id.is_some() {
                        outcome = EditOutcome::Recreated;
                    }
                    ours.clone()
                }
            };
            d.put_content(
                now_id.or(base_id).unwrap_or(fresh),
                &a.path,
                text.into_bytes(),
            )
            .map(|_| ())
        })
    });
    let seq = match result {
        Ok(seq) => seq.map(|(s, ())| s),
        Err(e) => {
            // Never lose the user's text.
            let saved = save_conflict(&a.path, &ours)?;
            let hint = format!(
                "your text is saved in {}; once the problem is fixed: `zkwiki put {} {}`",
                saved.display(),
                esc(&a.path),
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
                    esc(&a.path),
                    saved.display()
                ),
            )
            .with_hint(format!(
                "compare with `zkwiki cat {}`, combine them, then `zkwiki put {} {}`",
                esc(&a.path),
                esc(&a.path),
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
