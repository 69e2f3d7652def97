//! `zkwiki mcp --key FILE`: serves the wiki to an agent over MCP on stdio, with every read
//! verified and decrypted, and every write encrypted and signed, on this machine.

use std::sync::Arc;

use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::ids::PageId;
use core_crypto::keyring::Role;
use rand_core::OsRng;

use crate::args::{GlobalArgs, McpArgs};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, ErrorKind, Result};
use crate::mcp::tools::{HistoryEntry, PageSummary, PageText, SearchHit, WriteOutcome};
use crate::mcp::{ToolError, WikiTools};
use crate::remote::{Remote, Writer};
use crate::wiki;

/// Serves until the MCP client disconnects.
pub fn serve(ctx: &Ctx, a: &McpArgs) -> Result<()> {
    let global = GlobalArgs {
        json: false,
        quiet: true,
        server: ctx.server_arg.clone(),
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
            a.prefix
        ),
        None => format!("Wiki {wiki}, as {}.", who.user),
    };
    // Fail now, not at the first tool call, if the key or the server is wrong.
    {
        let remote = Remote::open(&ctx)?;
        remote.read(&who)?;
    }
    let tools = AgentTools { ctx, who };
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

/// [`WikiTools`] over the CLI's verified remote.
pub struct AgentTools {
    ctx: Ctx,
    who: Unlocked,
}

fn tool_err(e: CliError) -> ToolError {
    let mut m = e.message;
    if let Some(h) = e.hint {
        m.push_str(" (");
        m.push_str(&h);
        m.push(')');
    }
    ToolError::new(m)
}

fn version_of(view_manifest: &core_crypto::state::Manifest, id: &PageId) -> String {
    view_manifest
        .pages
        .get(id)
        .map(|e| e.hash.to_hex()[..16].to_owned())
        .unwrap_or_default()
}

impl AgentTools {
    fn remote(&self) -> std::result::Result<Remote<'_>, ToolError> {
        Remote::open(&self.ctx).map_err(tool_err)
    }

    /// Refuses writes early and clearly for a read-only key (other clients would reject them
    /// anyway: the keyring gives this key the reader role).
    fn check_can_write(
        &self,
        w: &Writer<'_, '_>,
        path: &str,
    ) -> std::result::Result<(), ToolError> {
        let me = w
            .snapshot
            .keyring
            .member_by_signing_key(&self.who.identity.public().ed25519);
        match me.map(|m| m.role) {
            Some(Role::Owner | Role::Writer) => {}
            _ => {
                return Err(ToolError::new(
                    "this key is read-only: the wiki's owner granted read access, so writes are refused (and would be rejected by every client)",
                ));
            }
        }
        if let Some(prefix) = w.keys.prefix()
            && !core_crypto::path::in_prefix(path, prefix)
        {
            return Err(ToolError::new(format!(
                "this key may only write pages under `{prefix}`; choose a path there"
            )));
        }
        wiki::check_user_path(path).map_err(tool_err)
    }

    fn write(
        &self,
        path: &str,
        make: &MakeContent<'_>,
    ) -> std::result::Result<WriteOutcome, ToolError> {
        let remote = self.remote()?;
        let mut w = Writer::begin(&remote, &self.who).map_err(tool_err)?;
        self.check_can_write(&w, path)?;
        let scoped = w.keys.prefix().is_some();
        let mut refusal: Option<ToolError> = None;
        let mut written: Option<PageId> = None;
        let seq = w
            .commit(!scoped, &mut |stage| {
                let existing = stage.find(path);
                let old = match existing {
                    Some(id) => Some(stage.open(&id)?),
                    None => None,
                };
                let current = existing
                    .and_then(|id| stage.base_hash(&id))
                    .map(|h| h.to_hex()[..16].to_owned());
                let content = match make(old.as_ref(), current.as_deref()) {
                    Ok(c) => c,
                    Err(e) => {
                        refusal = Some(e);
                        return Err(CliError::new(ErrorKind::Conflict, "refused"));
                    }
                };
                let id = existing.unwrap_or_else(|| PageId::random(&mut OsRng));
                let record = PageRecord {
                    kind: PageKind::Markdown,
                    path: path.to_owned(),
                    author: self.who.user.clone(),
                    written_at_ms: wiki::now_ms(),
                    content: content.into_bytes(),
                };
                stage.put(id, &record)?;
                written = Some(id);
                Ok(())
            })
            .map_err(|e| refusal.take().unwrap_or_else(|| tool_err(e)))?;
        let id = written.ok_or_else(|| ToolError::new("nothing was written"))?;
        Ok(WriteOutcome {
            path: path.to_owned(),
            version: version_of(&w.snapshot.manifest, &id),
            seq: seq.unwrap_or(w.snapshot.state.seq),
        })
    }
}

impl WikiTools for AgentTools {
    fn list_pages(&self, prefix: Option<&str>) -> std::result::Result<Vec<PageSummary>, ToolError> {
        let remote = self.remote()?;
        let view = remote.read(&self.who).map_err(tool_err)?;
        let mut out: Vec<PageSummary> = view
            .catalog
            .index
            .pages()
            .values()
            .filter(|p| prefix.is_none_or(|f| p.path.starts_with(f)))
            .map(|p| PageSummary {
                path: p.path.clone(),
                size: p.size as u32,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn read_page(&self, path: &str) -> std::result::Result<PageText, ToolError> {
        let remote = self.remote()?;
        let view = remote.read(&self.who).map_err(tool_err)?;
        let id = view.catalog.find(path).ok_or_else(|| {
            ToolError::new(format!(
                "no page {path:?} (or this key cannot read it); list_pages shows what exists"
            ))
        })?;
        let record = view.open(&id).map_err(tool_err)?;
        Ok(PageText {
            path: record.path.clone(),
            content: String::from_utf8_lossy(&record.content).into_owned(),
            author: record.author.clone(),
            written_at_ms: record.written_at_ms,
            version: version_of(&view.verified.snapshot.manifest, &id),
        })
    }

    fn write_page(
        &self,
        path: &str,
        content: &str,
        base_version: Option<&str>,
    ) -> std::result::Result<WriteOutcome, ToolError> {
        self.write(path, &|_, current| match (base_version, current) {
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
        self.write(path, &|old, _| {
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
        let remote = self.remote()?;
        let view = remote.read(&self.who).map_err(tool_err)?;
        let pages = view.catalog.index.pages();
        Ok(view
            .catalog
            .index
            .search(query)
            .into_iter()
            .filter_map(|id| {
                pages.get(&id).map(|p| SearchHit {
                    path: p.path.clone(),
                })
            })
            .take(limit)
            .collect())
    }

    fn page_history(
        &self,
        path: &str,
        limit: usize,
    ) -> std::result::Result<Vec<HistoryEntry>, ToolError> {
        let remote = self.remote()?;
        let view = remote.read(&self.who).map_err(tool_err)?;
        let id = view
            .catalog
            .find(path)
            .ok_or_else(|| ToolError::new(format!("no page {path:?}")))?;
        crate::commands::history::page_versions(&remote, &view, &id, limit)
            .map_err(tool_err)
            .map(|versions| {
                versions
                    .into_iter()
                    .map(|(seq, record, hash)| HistoryEntry {
                        seq,
                        author: record.as_ref().map(|r| r.author.clone()),
                        written_at_ms: record.as_ref().map(|r| r.written_at_ms),
                        version: hash.map(|h| h.to_hex()[..16].to_owned()),
                    })
                    .collect()
            })
    }
}
