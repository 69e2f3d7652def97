//! `zkwiki mcp --key FILE`: serves the wiki to an agent over MCP on stdio, with every read
//! verified and decrypted, and every write encrypted and signed, on this machine.
//!
//! The server keeps one [`Session`] (the client core's verified workspace and the pages it
//! decrypted). Each call first asks the server for its current signed state (one small HTTP
//! request, which also re-checks the token): unchanged, the kept head answers; moved, the new
//! commits are fetched and verified as extending the kept head, every step between (the core's
//! trail), so a rollback or a fork fails the call instead of serving stale data, even after
//! the seen record was deleted. After its own accepted write the session keeps the head it built.

use std::sync::{Arc, Mutex, MutexGuard};

use client::display::escape as esc;
use client::workspace::IndexWrite;
use core_crypto::envelope::PageRecord;
use core_crypto::ids::{Digest32, PageId, WikiId};
use rand_core::OsRng;

use crate::api::Api;
use crate::args::{GlobalArgs, McpArgs};
use crate::commands::history::{Version, page_versions};
use crate::context::Ctx;
use crate::error::{CliError, ErrorKind, Result};
use crate::mcp::tools::{HistoryEntry, PageSummary, PageText, SearchHit, WriteOutcome};
use crate::mcp::{ToolError, WikiTools};
use crate::remote::{Remote, Session};

/// Serves until the MCP client disconnects.
pub fn serve(ctx: &Ctx, a: &McpArgs) -> Result<()> {
    let global = GlobalArgs {
        json: false,
        quiet: true,
        server: ctx.server_arg.clone(),
        profile: ctx.profile_arg.clone(),
        wiki: ctx.wiki_arg.clone(),
        passphrase_file: ctx.secrets.passphrase_file.clone(),
        key_file: a.key.clone().or_else(|| ctx.key_file.clone()),
    };
    let ctx = Ctx::resolve(&global)?;
    let who = ctx.unlock()?;
    let wiki = ctx.wiki()?;
    let access = ctx.agent_access()?.map(|(_, a)| a);
    let description = match &access {
        Some(a) if a.prefix.is_empty() => format!(
            "Wiki {wiki}; this key may {} the whole wiki.",
            verb(&a.role)
        ),
        Some(a) => format!(
            "Wiki {wiki}; this key may {} pages under `{}` only.",
            verb(&a.role),
            esc(&a.prefix)
        ),
        None => format!("Wiki {wiki}, as {}.", esc(&who.user)),
    };
    // Fail now, not at the first tool call, if the key or the server is wrong.
    let session = Remote::open(&ctx)?.session(&who)?;
    drop(who);
    let tools = AgentTools {
        api: ctx.api()?,
        agent: access.is_some(),
        wiki,
        session: Mutex::new(session),
    };
    crate::mcp::serve_stdio(Arc::new(tools), &description)
        .map_err(|e| CliError::new(ErrorKind::Network, format!("MCP server: {e}")))
}

fn verb(role: &str) -> &'static str {
    if role == "read" {
        "read"
    } else {
        "read and write"
    }
}

/// Builds a page's new text from its current record and version tag (or refuses).
type MakeContent<'a> =
    dyn Fn(Option<&PageRecord>, Option<&str>) -> std::result::Result<String, ToolError> + 'a;

/// [`WikiTools`] over one verified session.
pub struct AgentTools {
    wiki: WikiId,
    /// For the per-call head probe (the key file's token).
    api: Api,
    /// Whether the token is an agent's (for the refusal message).
    agent: bool,
    /// The verified workspace kept between calls.
    session: Mutex<Session>,
}

fn lock<T>(m: &Mutex<T>) -> std::result::Result<MutexGuard<'_, T>, ToolError> {
    m.lock()
        .map_err(|_| ToolError::new("an earlier call failed unexpectedly; restart the MCP server"))
}

/// An auth failure of the head probe is a refused token; say so plainly, with what to do.
fn probe_err(e: CliError, agent: bool) -> ToolError {
    if e.kind != ErrorKind::Auth {
        return tool_err(e);
    }
    let reason = e
        .message
        .strip_prefix("the server refused the session: ")
        .unwrap_or(&e.message);
    ToolError::new(if agent {
        format!(
            "the server refused this key's token ({reason}): it was revoked or has expired; ask the wiki's owner for a new grant"
        )
    } else {
        format!("the server refused the session ({reason}): run `zkwiki login`")
    })
}

fn tool_err(e: impl Into<CliError>) -> ToolError {
    let e = e.into();
    let mut m = e.message;
    if let Some(h) = e.hint {
        m.push_str(" (");
        m.push_str(&h);
        m.push(')');
    }
    ToolError::new(m)
}

fn tag(hash: Digest32) -> String {
    hash.to_hex()[..16].to_owned()
}

fn version_of(s: &Session, id: &PageId) -> String {
    s.ws.snapshot()
        .manifest
        .pages
        .get(id)
        .map(|e| tag(e.hash))
        .unwrap_or_default()
}

impl AgentTools {
    /// The session at the server's current head: the kept one while the server's state is the
    /// same, else brought forward (every step between verified).
    fn current(&self) -> std::result::Result<MutexGuard<'_, Session>, ToolError> {
        let mut s = lock(&self.session)?;
        let state = self
            .api
            .head_state(&self.wiki.to_hex())
            .map_err(|e| probe_err(e, self.agent))?;
        if Digest32::of(&state) != s.ws.head().state_hash() {
            s.refresh().map_err(tool_err)?;
        }
        Ok(s)
    }

    fn write(
        &self,
        path: &str,
        make: &MakeContent<'_>,
    ) -> std::result::Result<WriteOutcome, ToolError> {
        let mut s = self.current()?;
        let fresh = PageId::random(&mut OsRng);
        let mut refusal: Option<ToolError> = None;
        let result = s.write(IndexWrite::WhenDue, &mut |d| {
            let existing = d.find(path);
            let old = match existing {
                Some(id) => Some(d.current(&id)?.clone()),
                None => None,
            };
            let current = existing.and_then(|id| d.base_hash(&id)).map(tag);
            let content = match make(old.as_ref(), current.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    refusal = Some(e);
                    return Err(client::Error::new(client::Kind::Conflict, "refused"));
                }
            };
            let id = existing.unwrap_or(fresh);
            d.put_content(id, path, content.into_bytes())?;
            Ok(id)
        });
        let (seq, id) = match result {
            Ok(Some(done)) => done,
            Ok(None) => return Err(ToolError::new("nothing was written")),
            Err(e) => return Err(refusal.take().unwrap_or_else(|| tool_err(e))),
        };
        Ok(WriteOutcome {
            path: path.to_owned(),
            version: version_of(&s, &id),
            seq,
        })
    }
}

impl WikiTools for AgentTools {
    fn list_pages(&self, prefix: Option<&str>) -> std::result::Result<Vec<PageSummary>, ToolError> {
        let s = self.current()?;
        let mut out: Vec<PageSummary> =
            s.ws.catalog()
                .values()
                .filter(|p| prefix.is_none_or(|f| p.path.starts_with(f)))
                .map(|p| PageSummary {
                    path: esc(&p.path).into_owned(),
                    size: p.size as u32,
                })
                .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn read_page(&self, path: &str) -> std::result::Result<PageText, ToolError> {
        let mut s = self.current()?;
        let id = s.ws.find(path).ok_or_else(|| {
            ToolError::new(format!(
                "no page {:?} (or this key cannot read it); list_pages shows what exists",
                esc(path)
            ))
        })?;
        let record = s.record(&id).map_err(tool_err)?.clone();
        let signer = s.provenance(&id).map_err(tool_err)?.map(|p| p.signer);
        Ok(PageText {
            path: esc(&record.path).into_owned(),
            content: String::from_utf8_lossy(&record.content).into_owned(),
            signer: signer.map(|n| esc(&n).into_owned()),
            author_claimed: esc(&record.author).into_owned(),
            written_at_ms: record.written_at_ms,
            version: version_of(&s, &id),
        })
    }

    fn write_page(
        &self,
        path: &str,
        content: &str,
        base_version: Option<&str>,
    ) -> std::result::Result<WriteOutcome, ToolError> {
        let path = client::policy::markdown_path(path);
        self.write(&path, &|_, current| match (base_version, current) {
            (Some(base), Some(now)) if base != now => Err(ToolError::new(format!(
                "the page changed since you read it (you read version {base}, it is now {now}); read_page again, merge your change, and write with the new base_version"
            ))),
            (Some(base), None) => Err(ToolError::new(format!(
                "the page was deleted since you read it (version {base}); write without base_version to recreate it"
            ))),
            _ => Ok(content.to_owned()),
        })
    }

    fn append_page(&self, path: &str, text: &str) -> std::result::Result<WriteOutcome, ToolError> {
        let path = client::policy::markdown_path(path);
        self.write(&path, &|old, _| {
            let mut content = old
                .map(|r| String::from_utf8_lossy(&r.content).into_owned())
                .unwrap_or_default();
            if !content.is_empty() && !content.ends_with('\n') {
                content.push('\n');
            }
            content.push_str(text);
            Ok(content)
        })
    }

    fn search(&self, query: &str, limit: usize) -> std::result::Result<Vec<SearchHit>, ToolError> {
        let s = self.current()?;
        Ok(s.ws
            .search(query, limit)
            .into_iter()
            .map(|h| SearchHit {
                path: esc(&h.path).into_owned(),
            })
            .collect())
    }

    fn page_history(
        &self,
        path: &str,
        limit: usize,
    ) -> std::result::Result<Vec<HistoryEntry>, ToolError> {
        let mut s = self.current()?;
        let id =
            s.ws.find(path)
                .ok_or_else(|| ToolError::new(format!("no page {:?}", esc(path))))?;
        let versions = page_versions(&mut s, &id, limit).map_err(tool_err)?;
        Ok(versions
            .into_iter()
            .map(|v| {
                let record = match &v.version {
                    Some(Version::Record(r)) => Some(r),
                    _ => None,
                };
                HistoryEntry {
                    seq: v.seq,
                    signer: esc(&v.signer).into_owned(),
                    author_claimed: record.map(|r| esc(&r.author).into_owned()),
                    written_at_ms: record.map(|r| r.written_at_ms),
                    version: v.hash.map(tag),
                    unreadable: match (&v.version, v.hash) {
                        (Some(Version::Unreadable(why)), _) => Some(why.clone()),
                        (None, Some(_)) => {
                            Some("written under a key this agent does not hold".to_owned())
                        }
                        _ => None,
                    },
                }
            })
            .collect())
    }
}
