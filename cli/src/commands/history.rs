//! `zkwiki log [PATH]`: the wiki's history from the verified mirror. Every step back is a
//! verified transition (the client core's history walker), so what is shown is the history the
//! members signed; each version names the member whose key signed it, and the record's author
//! only as a claim when it differs (an imported author, or a member claiming another's name).
//! A page keeps its id across renames, so a page's history follows them naturally.

use client::display::escape as esc;
use client::history::{Point, open_version};
use client::workspace::record_problem;
use core_crypto::envelope::PageRecord;
use core_crypto::ids::{Digest32, PageId};
use core_crypto::state::ManifestEntry;
use serde_json::{Value, json};

use crate::args::LogArgs;
use crate::context::Ctx;
use crate::error::{CliError, Result};
use crate::remote::Session;
use crate::repo::GitWiki;
use crate::time::format_time;

/// A page version as history shows it: readable, or written against the rules.
pub enum Version {
    /// The record (it keeps the rules).
    Record(PageRecord),
    /// Why it cannot be shown.
    Unreadable(String),
}

impl Version {
    fn record(&self) -> Option<&PageRecord> {
        match self {
            Self::Record(r) => Some(r),
            Self::Unreadable(_) => None,
        }
    }
}

/// Opens `page` as the verified `entry` at state `seq` says it was.
fn open_at(
    gw: &GitWiki,
    s: &Session,
    head_seq: u64,
    seq: u64,
    page: &PageId,
    entry: &ManifestEntry,
) -> Result<Option<Version>> {
    if s.ws.is_index_page(page) {
        return Ok(None);
    }
    let Some(envelope) = gw.envelope_at(head_seq, seq, page)? else {
        return Err(CliError::integrity(format!(
            "history: page {page} is missing from the commit of state {seq}"
        )));
    };
    if entry.check_envelope(&envelope).is_err() {
        return Err(CliError::integrity(format!(
            "history: page {page} at state {seq} is not the version that state signs"
        )));
    }
    Ok(Some(
        match open_version(s.ws.keys(), page, entry, &envelope) {
            Ok((record, prefix)) => match record_problem(&record, prefix) {
                None => Version::Record(record),
                Some(p) => Version::Unreadable(p),
            },
            Err(e) if e.kind == client::Kind::Access && !s.ws.keys().is_whole_wiki() => {
                return Ok(None);
            }
            Err(e) => Version::Unreadable(e.message),
        },
    ))
}

/// The versions of the page that had `entry` in `older`, if any.
fn older_version(
    gw: &GitWiki,
    s: &Session,
    head_seq: u64,
    older: Option<&Point>,
    page: &PageId,
) -> Result<Option<Version>> {
    match older.and_then(|o| o.manifest.pages.get(page).map(|e| (o.seq(), *e))) {
        Some((seq, entry)) => open_at(gw, s, head_seq, seq, page, &entry),
        None => Ok(None),
    }
}

fn action(new: Option<&Version>, old: Option<&Version>) -> &'static str {
    match (
        new.and_then(Version::record),
        old.and_then(Version::record),
        new,
    ) {
        (_, _, Some(Version::Unreadable(_))) => "unreadable",
        (Some(_), None, _) if old.is_none() => "created",
        (None, _, None) => "removed",
        (Some(n), Some(o), _) if n.path != o.path => "renamed",
        _ => "changed",
    }
}

fn change_json(new: Option<&Version>, old: Option<&Version>) -> Value {
    let path = |v: Option<&Version>| {
        v.and_then(Version::record)
            .map(|r| esc(&r.path).into_owned())
    };
    let mut v = json!({
        "action": action(new, old),
        "path": path(new).or_else(|| path(old)),
        "previous_path": match (path(new), path(old)) {
            (Some(n), Some(o)) if n != o => Some(o),
            _ => None,
        },
    });
    if let Some(Version::Unreadable(why)) = new {
        v["problem"] = json!(why);
    }
    if let Some(r) = new.and_then(Version::record) {
        v["written_at_ms"] = json!(r.written_at_ms);
    }
    v
}

/// One version of one page, for `log PATH` and the MCP `page_history` tool.
pub struct PageVersion {
    /// The state that wrote it.
    pub seq: u64,
    /// The member whose key signed that state.
    pub signer: String,
    /// The version (none where the page was removed).
    pub version: Option<Version>,
    /// Its envelope hash (none where removed).
    pub hash: Option<Digest32>,
    /// The version before (for renames).
    pub previous: Option<Version>,
}

/// The versions of one page, newest first, at most `limit`, from a verified history walk.
pub fn page_versions(s: &mut Session, page: &PageId, limit: usize) -> Result<Vec<PageVersion>> {
    let gw = s.repo()?.clone();
    let gw = &gw;
    let s = &*s;
    let head = s.ws.head().clone();
    let head_seq = head.seq();
    let mut out = Vec::new();
    gw.walk_with(&head, &mut |step, older| {
        let changed = step.changed.iter().find(|(id, _)| id == page);
        let removed = step.removed.contains(page);
        if changed.is_none() && !removed {
            return Ok(true);
        }
        let version = match changed {
            Some((_, entry)) => open_at(gw, s, head_seq, step.seq, page, entry)?,
            None => None,
        };
        let previous = older_version(gw, s, head_seq, older, page)?;
        out.push(PageVersion {
            seq: step.seq,
            signer: step.signer_name.clone(),
            hash: changed.map(|(_, e)| e.hash),
            version,
            previous,
        });
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// Finds a page by a path it had at some point of history (not current any more).
pub fn find_in_history(s: &mut Session, path: &str) -> Result<Option<PageId>> {
    let gw = s.repo()?.clone();
    let gw = &gw;
    let s = &*s;
    let head = s.ws.head().clone();
    let head_seq = head.seq();
    let mut found = None;
    gw.walk_with(&head, &mut |step, older| {
        for (id, entry) in &step.changed {
            if let Some(Version::Record(r)) = open_at(gw, s, head_seq, step.seq, id, entry)?
                && r.path == path
            {
                found = Some(*id);
                return Ok(false);
            }
        }
        for id in &step.removed {
            if let Some(Version::Record(r)) = older_version(gw, s, head_seq, older, id)?
                && r.path == path
            {
                found = Some(*id);
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(found)
}

/// `zkwiki log [PATH]`.
pub fn log(ctx: &Ctx, a: &LogArgs) -> Result<()> {
    let mut s = super::pages::open(ctx)?;
    let mut entries: Vec<Value> = Vec::new();
    match &a.path {
        Some(path) => {
            let page = match s.ws.find(path) {
                Some(id) => id,
                None => find_in_history(&mut s, path)?.ok_or_else(|| {
                    CliError::not_found(format!(
                        "no page {:?} in this wiki or its history",
                        esc(path)
                    ))
                })?,
            };
            for v in page_versions(&mut s, &page, a.limit)? {
                let mut e = change_json(v.version.as_ref(), v.previous.as_ref());
                let record = v.version.as_ref().and_then(Version::record);
                e["seq"] = json!(v.seq);
                e["page"] = json!(page.to_hex());
                e["signer"] = json!(esc(&v.signer));
                e["author_claimed"] = json!(record.map(|r| esc(&r.author).into_owned()));
                e["written_at_ms"] = json!(record.map(|r| r.written_at_ms));
                e["size"] = json!(record.map(|r| r.content.len()));
                e["version"] = json!(v.hash.map(|h| h.to_hex()[..16].to_owned()));
                entries.push(e);
            }
        }
        None => {
            let gw = s.repo()?.clone();
            let gw = &gw;
            let head = s.ws.head().clone();
            let head_seq = head.seq();
            let limit = a.limit;
            gw.walk_with(&head, &mut |step, older| {
                let mut changes = Vec::new();
                for (id, entry) in &step.changed {
                    let Some(new) = open_at(gw, &s, head_seq, step.seq, id, entry)? else {
                        continue;
                    };
                    let old = older_version(gw, &s, head_seq, older, id)?;
                    changes.push(change_json(Some(&new), old.as_ref()));
                }
                for id in &step.removed {
                    if let Some(old) = older_version(gw, &s, head_seq, older, id)? {
                        changes.push(change_json(None, Some(&old)));
                    }
                }
                let written_at_ms = changes
                    .iter()
                    .filter_map(|c| c["written_at_ms"].as_i64())
                    .max();
                entries.push(json!({
                    "seq": step.seq,
                    "signer": esc(&step.signer_name),
                    "written_at_ms": written_at_ms,
                    "keyring_changed": step.keyring_changed,
                    "changes": changes,
                }));
                Ok(entries.len() < limit)
            })?;
        }
    }
    if ctx.out.json {
        return ctx.out.json_value(&json!({ "entries": entries }));
    }
    for e in &entries {
        print_entry(ctx, e)?;
    }
    Ok(())
}

fn print_entry(ctx: &Ctx, e: &Value) -> Result<()> {
    let seq = e["seq"].as_u64().unwrap_or(0);
    let signer = e["signer"].as_str().unwrap_or("?");
    let when = e["written_at_ms"]
        .as_i64()
        .map_or_else(|| "-".repeat(19), format_time);
    if let Some(changes) = e["changes"].as_array() {
        let mut line = format!("{seq:>6}  {when}  {signer}");
        if e["keyring_changed"].as_bool() == Some(true) {
            line.push_str("  [members changed]");
        }
        ctx.out.line(line)?;
        for c in changes {
            ctx.out.line(format!("        {}", describe(c)))?;
        }
        return Ok(());
    }
    let claim = match e["author_claimed"].as_str() {
        Some(a) if a != signer => format!(" (written as {a:?})"),
        _ => String::new(),
    };
    ctx.out.line(format!(
        "{seq:>6}  {when}  {signer:<16} {}{claim}",
        describe(e)
    ))
}

fn describe(c: &Value) -> String {
    let path = c["path"].as_str().unwrap_or("?");
    match (
        c["action"].as_str().unwrap_or("?"),
        c["previous_path"].as_str(),
    ) {
        ("renamed", Some(prev)) => format!("renamed {prev} -> {path}"),
        ("unreadable", _) => format!(
            "wrote an unreadable version: {}",
            c["problem"].as_str().unwrap_or("?")
        ),
        (act, _) => format!("{act} {path}"),
    }
}
