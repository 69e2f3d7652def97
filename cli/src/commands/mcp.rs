//! `zkwiki mcp --key FILE`: serves the wiki to an agent over MCP on stdio, with every read
//! verified and decrypted, and every write encrypted and signed, on this machine.
//!
//! The session keeps the last verified head (keyring, state, manifest, envelopes, keys, catalog)
//! and the pages it decrypted. Each call first asks the server for its current signed state (one
//! small HTTP request, which also re-checks the token): unchanged, the kept head answers; moved,
//! the new commits are fetched and verified as extending the kept head
//! ([`Remote::fetch_verified_from`]), so a rollback or a fork fails the call instead of serving
//! stale data. After its own accepted write the session adopts the head it built.

use std::sync::{Arc, Mutex, MutexGuard};

use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::keyring::{Role, WikiKeys};
use rand_core::OsRng;

use crate::api::Api;
use crate::args::{GlobalArgs, McpArgs};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, ErrorKind, Result};
use crate::mcp::cache::ByteLru;
use crate::mcp::tools::{HistoryEntry, PageSummary, PageText, SearchHit, WriteOutcome};
use crate::mcp::{ToolError, WikiTools};
use crate::remote::{ReadView, Remote, Writer};
use crate::repo::Verified;
use crate::wiki::{self, Catalog};

/// Decrypted pages kept per session (by plaintext bytes).
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;

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
    let head = {
        let remote = Remote::open(&ctx)?;
        Head::from_view(remote.read(&who)?)
    };
    let tools = AgentTools {
        api: ctx.api()?,
        agent: access.is_some(),
        wiki,
        ctx,
        who,
        pages: Mutex::new(PageCache {
            keyring: head.keyring_hash(),
            lru: ByteLru::new(PAGE_CACHE_BYTES),
        }),
        head: Mutex::new(Some(Arc::new(head))),
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

/// [`WikiTools`] over the CLI's verified remote.
pub struct AgentTools {
    ctx: Ctx,
    who: Unlocked,
    wiki: WikiId,
    /// For the per-call head probe (the key file's token).
    api: Api,
    /// Whether the token is an agent's (for the refusal message).
    agent: bool,
    /// The last verified head; `None` after an error that left nothing trustworthy to keep.
    head: Mutex<Option<Arc<Head>>>,
    /// Decrypted pages of the current keyring.
    pages: Mutex<PageCache>,
}

/// A verified, unlocked head kept between calls.
struct Head {
    verified: Verified,
    keys: Arc<WikiKeys>,
    catalog: Catalog,
}

impl Head {
    fn from_view(view: ReadView) -> Self {
        Self {
            verified: view.verified,
            keys: Arc::new(view.keys),
            catalog: view.catalog,
        }
    }

    fn keyring_hash(&self) -> Digest32 {
        self.verified.snapshot.keyring.hash()
    }
}

/// Pages decrypted under one keyring version, keyed by page id and envelope hash (so a new
/// version of a page is a new key, and an envelope is never served for another page id).
struct PageCache {
    keyring: Digest32,
    lru: ByteLru<(PageId, Digest32), PageRecord>,
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

    /// The current verified head: the kept one while the server's state is the same, else the
    /// new head, verified as extending the kept one.
    fn current(&self) -> std::result::Result<Arc<Head>, ToolError> {
        let mut slot = lock(&self.head)?;
        let state = self
            .api
            .head_state(&self.wiki.to_hex())
            .map_err(|e| probe_err(e, self.agent))?;
        if let Some(h) = slot.as_ref()
            && Digest32::of(&state) == h.verified.snapshot.state.hash()
        {
            return Ok(Arc::clone(h));
        }
        let remote = self.remote()?;
        let prev = slot.as_ref().map(|h| &h.verified);
        let next = Head::from_view(remote.read_from(&self.who, prev).map_err(tool_err)?);
        let next = Arc::new(next);
        *slot = Some(Arc::clone(&next));
        Ok(next)
    }

    /// Opens a page of `head`, from the session's cache when it was decrypted before.
    fn open(&self, head: &Head, id: &PageId) -> std::result::Result<Arc<PageRecord>, ToolError> {
        let hash = head
            .verified
            .snapshot
            .manifest
            .pages
            .get(id)
            .map(|e| e.hash)
            .ok_or_else(|| ToolError::new(format!("page {id} is not in the signed manifest")))?;
        let keyring = head.keyring_hash();
        {
            let mut cache = lock(&self.pages)?;
            // Never serve a page decrypted under another keyring (revocation, rotation).
            if cache.keyring != keyring {
                cache.lru.clear();
                cache.keyring = keyring;
            }
            if let Some(record) = cache.lru.get(&(*id, hash)) {
                return Ok(record);
            }
        }
        let record = Arc::new(
            wiki::open(
                &head.verified.snapshot,
                &head.verified.blobs,
                &head.keys,
                id,
            )
            .map_err(tool_err)?,
        );
        let size = record.content.len() + record.path.len() + record.author.len() + 64;
        let mut cache = lock(&self.pages)?;
        if cache.keyring == keyring {
            cache.lru.insert((*id, hash), Arc::clone(&record), size);
        }
        Ok(record)
    }

    /// Keeps the head this session's accepted write produced, so the next call needs no fetch.
    /// Pages whose signed entry did not change keep their git blob ids (same hash, same bytes).
    fn adopt(&self, base: &Head, w: Writer<'_, '_>) -> std::result::Result<(), ToolError> {
        let mut slot = lock(&self.head)?;
        if w.snapshot.keyring.hash() != base.keyring_hash() {
            // A retry picked up a keyring change: the kept chain no longer matches; start over.
            *slot = None;
            return Ok(());
        }
        let Writer {
            snapshot,
            blobs,
            keys,
            catalog,
            ..
        } = w;
        let page_oids = base
            .verified
            .page_oids
            .iter()
            .filter(|(id, _)| {
                snapshot.manifest.pages.get(id) == base.verified.snapshot.manifest.pages.get(id)
            })
            .map(|(id, oid)| (*id, oid.clone()))
            .collect();
        *slot = Some(Arc::new(Head {
            verified: Verified {
                snapshot,
                blobs,
                keyring_versions: base.verified.keyring_versions.clone(),
                // Not known here (the commit answer is not kept); nothing reads it from a kept
                // head: the next fetch starts from the mirror's ref.
                commit: String::new(),
                page_oids,
            },
            keys: Arc::new(keys),
            catalog,
        }));
        Ok(())
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
        let head = self.current()?;
        let remote = self.remote()?;
        // The writer needs its own keys; unlocking is one key unwrap, far cheaper than a fetch.
        let keys = head
            .verified
            .snapshot
            .keyring
            .unlock(&self.who.identity)
            .map_err(|e| tool_err(e.into()))?;
        let view = ReadView {
            verified: Verified {
                snapshot: head.verified.snapshot.clone(),
                blobs: head.verified.blobs.clone(),
                keyring_versions: Vec::new(),
                commit: String::new(),
                page_oids: Default::default(),
            },
            keys,
            catalog: head.catalog.clone(),
        };
        let mut w = Writer::from_view(&remote, &self.who, view);
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
        let outcome = WriteOutcome {
            path: path.to_owned(),
            version: version_of(&w.snapshot.manifest, &id),
            seq: seq.unwrap_or(w.snapshot.state.seq),
        };
        self.adopt(&head, w)?;
        Ok(outcome)
    }
}

impl WikiTools for AgentTools {
    fn list_pages(&self, prefix: Option<&str>) -> std::result::Result<Vec<PageSummary>, ToolError> {
        let view = self.current()?;
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
        let view = self.current()?;
        let id = view.catalog.find(path).ok_or_else(|| {
            ToolError::new(format!(
                "no page {path:?} (or this key cannot read it); list_pages shows what exists"
            ))
        })?;
        let record = self.open(&view, &id)?;
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
        let view = self.current()?;
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
        // History walks the mirror's commits, so it reads the head in full; the probe first keeps
        // the refusal and rollback answers the same as every other tool's.
        self.current()?;
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
