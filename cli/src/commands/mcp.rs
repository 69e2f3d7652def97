//! `zkwiki mcp --key FILE`: serves the wiki to an agent over MCP (stdio, or streamable HTTP with
//! `--http`), with every read verified and decrypted, and every write encrypted and signed, on
//! this machine.
//!
//! The server starts without the wiki server: it answers `initialize` and `tools/list` from
//! what is local (the key file), and opens the wiki on the first call that needs it. A call
//! made while the wiki server is down or refuses the token fails on its own, with a message
//! that says so; a later call opens the wiki once the server is back.
//!
//! Once open, the server keeps one [`Session`] (the client core's verified workspace and the
//! pages it decrypted). Each call first asks the server for its current signed state (one small
//! HTTP request, which also re-checks the token): unchanged, the kept head answers; moved, the
//! new commits are fetched and verified as extending the kept head, every step between (the
//! core's trail), so a rollback or a fork fails the call instead of serving stale data, even
//! after the seen record was deleted. After its own accepted write the session keeps the head
//! it built.

use std::sync::{Arc, Mutex, MutexGuard};

use client::display::escape as esc;
use client::workspace::IndexWrite;
use client::{Workspace, links};
use core_crypto::envelope::{PageKind as RecordKind, PageRecord};
use core_crypto::ids::{Digest32, PageId, WikiId};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::args::{GlobalArgs, McpArgs};
use crate::commands::history::{Version, find_in_history, page_versions};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, ErrorKind, Result};
use crate::mcp::tools::{
    Backlink, Backlinks, DeleteOutcome, HistoryEntry, MoveOutcome, PageHistory, PageKind, PageList,
    PageSummary, PageText, RawPage, SearchHit, SearchResults, WriteOutcome,
};
use crate::mcp::{ToolError, WikiTools, http, resource_uri};
use crate::remote::{Remote, Session};

/// Serves until the MCP client disconnects (stdio) or the process is interrupted (HTTP).
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
    // Everything up to the first tool call is local: the key (or the passphrase), the wiki id,
    // the server's address. The wiki server is not asked until a call needs it.
    let http_token = match a.http {
        Some(addr) => Some(http_token(a, addr)?),
        None => None,
    };
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
    let tools = AgentTools {
        remote: Remote::open(&ctx)?,
        agent: access.is_some(),
        wiki,
        who,
        session: Mutex::new(None),
    };
    let wiki_hex = wiki.to_hex();
    let served = match (a.http, http_token) {
        (Some(addr), Some((token, generated))) => http::serve_http(
            Arc::new(tools),
            &wiki_hex,
            &description,
            addr,
            token,
            |bound, token| {
                eprintln!(
                    "zkwiki mcp: serving MCP over streamable HTTP at http://{bound}{}",
                    http::ENDPOINT
                );
                if generated {
                    eprintln!(
                        "zkwiki mcp: bearer token (shown only now; clients send `Authorization: Bearer TOKEN`): {}",
                        token
                    );
                }
            },
        ),
        _ => crate::mcp::serve_stdio(Arc::new(tools), &wiki_hex, &description),
    };
    served.map_err(|e| CliError::new(ErrorKind::Network, format!("MCP server: {e}")))
}

/// The bearer token for `--http` (and whether it was generated here), after refusing an
/// address that is not loopback unless that was asked for.
fn http_token(a: &McpArgs, addr: std::net::SocketAddr) -> Result<(Zeroizing<String>, bool)> {
    if !addr.ip().is_loopback() && !a.http_allow_non_loopback {
        return Err(CliError::usage(format!(
            "refusing to serve MCP on {addr}: not a loopback address"
        ))
        .with_hint(
            "use 127.0.0.1:PORT, or add --http-allow-non-loopback if others on the network should reach it (plain HTTP: put TLS in front)",
        ));
    }
    let Some(file) = &a.http_token_file else {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        return Ok((
            Zeroizing::new(data_encoding::BASE64URL_NOPAD.encode(bytes.as_ref())),
            true,
        ));
    };
    let raw =
        Zeroizing::new(std::fs::read_to_string(file).map_err(|e| CliError::io(file.display(), e))?);
    let token = Zeroizing::new(raw.trim().to_owned());
    if token.len() < http::MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace()) {
        return Err(CliError::usage(format!(
            "the token in {} must be at least {} characters, without spaces",
            file.display(),
            http::MIN_TOKEN_LEN
        ))
        .with_hint("e.g. `openssl rand -hex 32 > FILE`"));
    }
    Ok((token, false))
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

/// [`WikiTools`] over one verified session, opened at the first call that needs it.
pub struct AgentTools {
    wiki: WikiId,
    /// Where the wiki lives (no request made yet).
    remote: Remote,
    /// Whether the token is an agent's (for the refusal message).
    agent: bool,
    /// The unlocked key the session opens the wiki with.
    who: Unlocked,
    /// The verified workspace kept between calls (none until a call opened it).
    session: Mutex<Option<Session>>,
}

fn lock<T>(m: &Mutex<T>) -> std::result::Result<MutexGuard<'_, T>, ToolError> {
    m.lock()
        .map_err(|_| ToolError::new("an earlier call failed unexpectedly; restart the MCP server"))
}

/// A failure to reach the wiki server (or a refused token) at the head probe or when opening
/// the wiki: said plainly, with what to do. Other failures keep their own message.
fn reach_err(e: CliError, agent: bool) -> ToolError {
    match e.kind {
        ErrorKind::Auth => {
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
        ErrorKind::Network => ToolError::new(format!(
            "the wiki server is unavailable ({}); this MCP server keeps running: try the call again later",
            e.message
        )),
        _ => tool_err(e),
    }
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

fn kind_of(kind: RecordKind) -> PageKind {
    if kind == RecordKind::Markdown {
        PageKind::Markdown
    } else {
        PageKind::Attachment
    }
}

/// The live page a path names: as given, else with `.md` added (`Projects/Plan` names
/// `Projects/Plan.md`, as `write_page` would have stored it).
fn locate(ws: &Workspace, path: &str) -> std::result::Result<PageId, ToolError> {
    ws.find(path)
        .or_else(|| ws.find(&client::policy::markdown_path(path)))
        .ok_or_else(|| {
            ToolError::not_found(format!(
                "no page {:?} (or this key cannot read it); list_pages shows what exists",
                esc(path)
            ))
        })
}

impl AgentTools {
    /// Runs `f` on the session at the server's current head: opened now if no call opened it
    /// yet; else the kept one while the server's state is the same, or brought forward (every
    /// step between verified).
    fn with_session<T>(
        &self,
        f: impl FnOnce(&mut Session) -> std::result::Result<T, ToolError>,
    ) -> std::result::Result<T, ToolError> {
        let mut guard = lock(&self.session)?;
        match guard.as_mut() {
            // One small request when nothing changed; a failure leaves the verified session
            // as it was, for the next call to try again from.
            Some(s) => s.refresh().map_err(|e| reach_err(e, self.agent))?,
            None => {
                let opened = self
                    .remote
                    .session(&self.who)
                    .map_err(|e| reach_err(e, self.agent))?;
                *guard = Some(opened);
            }
        }
        match guard.as_mut() {
            Some(s) => f(s),
            None => Err(ToolError::new("the wiki is not open")),
        }
    }

    fn write(
        &self,
        path: &str,
        make: &MakeContent<'_>,
    ) -> std::result::Result<WriteOutcome, ToolError> {
        self.with_session(|s| {
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
                if let (Some(id), Some(old)) = (existing, &old)
                    && old.path == path
                    && old.content == content.as_bytes()
                {
                    // Already so: nothing to write (a repeated call changes nothing).
                    return Ok(id);
                }
                let id = existing.unwrap_or(fresh);
                d.put_content(id, path, content.into_bytes())?;
                Ok(id)
            });
            let (seq, id, changed) = match result {
                Ok(Some((seq, id))) => (seq, id, true),
                Ok(None) => {
                    let id =
                        s.ws.find(path)
                            .ok_or_else(|| ToolError::new("nothing was written"))?;
                    (s.ws.head().seq(), id, false)
                }
                Err(e) => return Err(refusal.take().unwrap_or_else(|| tool_err(e))),
            };
            Ok(WriteOutcome {
                path: esc(path).into_owned(),
                version: version_of(s, &id),
                seq,
                changed,
            })
        })
    }
}

impl WikiTools for AgentTools {
    fn list_pages(&self, prefix: Option<&str>) -> std::result::Result<PageList, ToolError> {
        let wiki = self.wiki.to_hex();
        self.with_session(|s| {
            let mut pages: Vec<PageSummary> =
                s.ws.catalog()
                    .values()
                    .filter(|p| p.kind != RecordKind::Index)
                    .filter(|p| prefix.is_none_or(|f| p.path.starts_with(f)))
                    .map(|p| PageSummary {
                        path: esc(&p.path).into_owned(),
                        kind: kind_of(p.kind),
                        size: p.size,
                        uri: resource_uri(&wiki, &p.path),
                    })
                    .collect();
            pages.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(PageList { pages })
        })
    }

    fn read_page(&self, path: &str) -> std::result::Result<PageText, ToolError> {
        let wiki = self.wiki.to_hex();
        self.with_session(|s| {
            let id = locate(&s.ws, path)?;
            let record = s.record(&id).map_err(tool_err)?.clone();
            let signer = s.provenance(&id).map_err(tool_err)?.map(|p| p.signer);
            let kind = kind_of(record.kind);
            let (content, encoding) = match kind {
                PageKind::Markdown => (
                    String::from_utf8_lossy(&record.content).into_owned(),
                    "utf-8",
                ),
                PageKind::Attachment => (data_encoding::BASE64.encode(&record.content), "base64"),
            };
            Ok(PageText {
                path: esc(&record.path).into_owned(),
                kind,
                content,
                encoding: encoding.to_owned(),
                signer: signer.map(|n| esc(&n).into_owned()),
                author_claimed: esc(&record.author).into_owned(),
                written_at_ms: record.written_at_ms,
                version: version_of(s, &id),
                uri: resource_uri(&wiki, &record.path),
            })
        })
    }

    fn read_raw(&self, path: &str) -> std::result::Result<RawPage, ToolError> {
        self.with_session(|s| {
            let id = s.ws.find(path).ok_or_else(|| {
                ToolError::not_found(format!(
                    "no page {:?} (or this key cannot read it)",
                    esc(path)
                ))
            })?;
            let record = s.record(&id).map_err(tool_err)?;
            Ok(RawPage {
                path: record.path.clone(),
                kind: kind_of(record.kind),
                content: record.content.clone(),
            })
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

    fn move_page(&self, from: &str, to: &str) -> std::result::Result<MoveOutcome, ToolError> {
        self.with_session(|s| {
            let id = locate(&s.ws, from)?;
            let old_path =
                s.ws.catalog()
                    .get(&id)
                    .map(|p| p.path.clone())
                    .unwrap_or_default();
            let to = if s.ws.kind_of(&id) == Some(RecordKind::Markdown) {
                client::policy::markdown_path(to)
            } else {
                to.trim().trim_matches('/').to_owned()
            };
            client::policy::check_new(&to).map_err(tool_err)?;
            let result = s
                .write(IndexWrite::WhenDue, &mut |d| {
                    let mut record = d.current(&id)?.clone();
                    if record.path == to {
                        return Ok(());
                    }
                    record.path = to.clone();
                    record.author = d.author().to_owned();
                    record.written_at_ms = d.now_ms();
                    d.put(id, record).map(|_| ())
                })
                .map_err(tool_err)?;
            let seq = match result {
                Some((seq, ())) => seq,
                None => {
                    return Err(ToolError::new(format!(
                        "the page is already at {:?}",
                        esc(&to)
                    )));
                }
            };
            Ok(MoveOutcome {
                from: esc(&old_path).into_owned(),
                to: esc(&to).into_owned(),
                version: version_of(s, &id),
                seq,
            })
        })
    }

    fn delete_page(
        &self,
        path: &str,
        base_version: Option<&str>,
    ) -> std::result::Result<DeleteOutcome, ToolError> {
        self.with_session(|s| {
            let id = locate(&s.ws, path)?;
            let old_path = s.ws.catalog().get(&id).map(|p| p.path.clone()).unwrap_or_default();
            let mut refusal: Option<ToolError> = None;
            let result = s.write(IndexWrite::WhenDue, &mut |d| {
                let now = d.base_hash(&id).map(tag);
                match (base_version, now) {
                    (Some(base), Some(now)) if base != now => {
                        refusal = Some(ToolError::new(format!(
                            "the page changed since you read it (you read version {base}, it is now {now}); read_page again before deleting it"
                        )));
                        return Err(client::Error::new(client::Kind::Conflict, "refused"));
                    }
                    _ => {}
                }
                d.remove(&id)
            });
            let seq = match result {
                Ok(Some((seq, ()))) => seq,
                Ok(None) => return Err(ToolError::new("nothing was deleted")),
                Err(e) => return Err(refusal.take().unwrap_or_else(|| tool_err(e))),
            };
            Ok(DeleteOutcome {
                path: esc(&old_path).into_owned(),
                seq,
            })
        })
    }

    fn search(&self, query: &str, limit: usize) -> std::result::Result<SearchResults, ToolError> {
        self.with_session(|s| {
            let hits =
                s.ws.search(query, limit)
                    .into_iter()
                    .map(|h| {
                        let snippet: String = h.snippet.iter().map(|(t, _)| t.as_str()).collect();
                        SearchHit {
                            path: esc(&h.path).into_owned(),
                            snippet: esc(&snippet.replace(['\n', '\r'], " ")).into_owned(),
                        }
                    })
                    .collect();
            Ok(SearchResults { hits })
        })
    }

    fn page_history(
        &self,
        path: &str,
        limit: usize,
    ) -> std::result::Result<PageHistory, ToolError> {
        self.with_session(|s| {
            // A deleted page's history is found by a path it had (as `zkwiki log PATH` does).
            let id = match locate(&s.ws, path) {
                Ok(id) => id,
                Err(not_current) => find_in_history(s, path)
                    .map_err(tool_err)?
                    .ok_or(not_current)?,
            };
            let current =
                s.ws.catalog()
                    .get(&id)
                    .map(|p| p.path.clone())
                    .unwrap_or_else(|| path.to_owned());
            let versions = page_versions(s, &id, limit).map_err(tool_err)?;
            let versions = versions
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
                .collect();
            Ok(PageHistory {
                path: esc(&current).into_owned(),
                versions,
            })
        })
    }

    fn list_backlinks(&self, path: &str) -> std::result::Result<Backlinks, ToolError> {
        self.with_session(|s| {
            let target_id = locate(&s.ws, path)?;
            // Links are in the text: every page this key reads is decrypted once (kept for
            // later calls; only pages changed since are decrypted again).
            s.load_all(&mut |_| {}).map_err(tool_err)?;
            let catalog = s.ws.catalog();
            let target = catalog
                .get(&target_id)
                .map(|p| p.path.clone())
                .unwrap_or_default();
            let index = links::PageIndex::new(
                catalog
                    .values()
                    .filter(|p| p.kind != RecordKind::Index)
                    .map(|p| p.path.as_str()),
            );
            let mut pages: Vec<Backlink> = catalog
                .iter()
                .filter(|(id, p)| **id != target_id && p.kind == RecordKind::Markdown)
                .filter_map(|(id, p)| {
                    let text = s.ws.page(id)?.record.markdown()?;
                    let n = links::count_links_to(&index, &p.path, text, &target);
                    (n > 0).then(|| Backlink {
                        path: esc(&p.path).into_owned(),
                        links: u32::try_from(n).unwrap_or(u32::MAX),
                    })
                })
                .collect();
            pages.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(Backlinks {
                path: esc(&target).into_owned(),
                pages,
            })
        })
    }
}
