//! A wiki on the server as the CLI drives it: an encrypted git mirror in the data folder
//! (fetched when a command starts), the client core's [`Workspace`] over it, and writes through
//! the API's commit route. The core decides everything; this module moves bytes.
//!
//! A [`Session`] owns what it needs (it outlives the command context in `zkwiki mcp`). Writes go
//! through [`Session::write`]: the change runs on a [`Draft`] of the current head; a page the
//! change needs is loaded and the change run again; on `409 conflict` the session fetches,
//! verifies the new head as extending its own (trail included) and runs the change again, after
//! a randomized, growing pause so concurrent writers do not collide in lockstep.

use std::path::PathBuf;
use std::time::Duration;

use client::workspace::{Draft, IndexWrite, Pending};
use client::{Kind, Workspace};
use core_crypto::envelope::PageRecord;
use core_crypto::ids::{PageId, WikiId};
use core_crypto::snapshot::SeenRecord;
use rand_core::RngCore;

use crate::api::{Api, CommitOutcome};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, ErrorKind, Result};
use crate::git::{self, Git};
use crate::output::Out;
use crate::repo::GitWiki;
use crate::seen::SeenStore;

/// Commit attempts before a write gives up (with the pauses below, about a minute of others'
/// writes).
const MAX_ATTEMPTS: u32 = 40;

/// The pause before attempt `attempt` (1-based) after conflicts: random up to a cap that
/// doubles from 10 ms to 1 s ("full jitter").
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 10u64.saturating_mul(1 << attempt.min(7)).min(1000);
    Duration::from_millis(rand_core::OsRng.next_u64() % (cap_ms + 1))
}

/// Where a wiki lives: the server, its id, and the local mirror.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The wiki.
    pub wiki: WikiId,
    /// API client (session or agent token).
    pub api: Api,
    mirror: PathBuf,
    key_file: Option<PathBuf>,
    seen: SeenStore,
    out: Out,
}

impl Remote {
    /// The selected wiki on the logged-in server.
    pub fn open(ctx: &Ctx) -> Result<Self> {
        Self::for_wiki(ctx, ctx.wiki()?)
    }

    /// A given wiki on the logged-in server.
    pub fn for_wiki(ctx: &Ctx, wiki: WikiId) -> Result<Self> {
        Ok(Self {
            wiki,
            api: ctx.api()?,
            mirror: ctx.paths.wiki_dir(&wiki).join("mirror.git"),
            key_file: ctx.key_file.clone(),
            seen: ctx.seen.clone(),
            out: ctx.out,
        })
    }

    /// The wiki's git URL (no credentials in it).
    pub fn git_url(&self) -> String {
        format!(
            "{}{}",
            self.api.base(),
            client::wire::route::git(&self.wiki.to_hex())
        )
    }

    /// Where this machine keeps which mirror blobs it already checked.
    fn blob_cache(&self) -> PathBuf {
        self.mirror.with_file_name("verified-blobs")
    }

    /// The seen record of this wiki on this machine.
    pub fn seen(&self) -> Result<SeenRecord> {
        self.seen.load(&self.wiki)
    }

    /// Brings the mirror up to the server's `main` (forced: the core, not git, decides whether
    /// a rewritten history is acceptable) and reads its head commit.
    pub fn sync(&self) -> Result<GitWiki> {
        let t = std::time::Instant::now();
        let git = Git::at(&self.mirror);
        if !self.mirror.join("HEAD").exists() {
            std::fs::create_dir_all(&self.mirror)
                .map_err(|e| CliError::io(self.mirror.display(), e))?;
            git.run(["init", "--quiet", "--bare"], "creating the local mirror")?;
        }
        let mut args = git::credential_config_for(self.key_file.as_deref())?;
        args.extend([
            "fetch".to_owned(),
            "--quiet".to_owned(),
            "--no-tags".to_owned(),
            self.git_url(),
            "+refs/heads/main:refs/heads/main".to_owned(),
        ]);
        git.run(args, "fetching the wiki from the server")
            .map_err(|e| {
                if e.kind == ErrorKind::General && e.message.contains("not found") {
                    CliError::not_found(format!("the server has no wiki {}", self.wiki))
                        .with_hint("check the wiki (`zkwiki wiki list`)")
                } else {
                    e
                }
            })?;
        crate::output::timing("git fetch", t);
        GitWiki::at(git, "refs/heads/main")
    }

    /// Fetches, verifies against this machine's seen record (with the trail from it), opens the
    /// workspace as `who`, loads the catalog, and remembers the head as seen.
    pub fn session(&self, who: &Unlocked) -> Result<Session> {
        let gw = self.sync()?;
        let t = std::time::Instant::now();
        let (head, steps) = gw.verify(&self.seen()?)?;
        if head.snapshot().keyring.wiki != self.wiki {
            return Err(CliError::integrity("the server returned another wiki"));
        }
        gw.check_blobs(&head.snapshot().manifest, &self.blob_cache())?;
        self.seen.store(&self.wiki, &head.seen_record())?;
        let mut ws = Workspace::open(&who.identity, &who.user, head, &steps)?;
        crate::output::timing("verify the head and unlock", t);
        let t = std::time::Instant::now();
        let bar = std::cell::RefCell::new(None);
        gw.load_wanted(&mut ws, &mut |n| {
            if n > 200 && bar.borrow().is_none() {
                *bar.borrow_mut() = Some(self.out.progress(n as u64, "indexing"));
            }
        })?;
        if let Some(b) = bar.into_inner() {
            b.finish_and_clear();
        }
        crate::output::timing("load and refresh the index", t);
        Ok(Session {
            remote: self.clone(),
            ws,
            gw,
        })
    }
}

/// An open wiki: the verified workspace and the mirror commit it was read from.
pub struct Session {
    /// Where it lives.
    pub remote: Remote,
    /// The client core's view.
    pub ws: Workspace,
    gw: GitWiki,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({:?})", self.ws)
    }
}

impl Session {
    /// The mirror commit read.
    pub fn repo(&self) -> &GitWiki {
        &self.gw
    }

    /// Loads pages (from the mirror) that are not loaded yet.
    pub fn load(&mut self, ids: &[PageId]) -> Result<()> {
        self.gw.load(&mut self.ws, ids)?;
        self.gw.attribute(&mut self.ws)
    }

    /// A page's current record, loading it when needed.
    pub fn record(&mut self, id: &PageId) -> Result<&PageRecord> {
        self.load(std::slice::from_ref(id))?;
        Ok(self.ws.record(id)?)
    }

    /// Every live page decrypted (clone, decrypt, export).
    pub fn load_all(&mut self, on_page: &mut dyn FnMut(usize)) -> Result<()> {
        self.gw.load_all(&mut self.ws, on_page)
    }

    /// Who wrote the current version of a page, walking history back when not known yet.
    pub fn provenance(&mut self, id: &PageId) -> Result<Option<client::history::Provenance>> {
        if self.ws.provenance(id).is_none()
            && let Some(entry) = self.ws.snapshot().manifest.pages.get(id).copied()
        {
            let head = self.ws.head().clone();
            let steps = self
                .gw
                .walk(&head, &mut |s| !client::history::introduces(s, id, &entry))?;
            self.ws.attribute(&steps);
        }
        Ok(self.ws.provenance(id).cloned())
    }

    /// Walks history back until the writer of each of these pages is known (for listings that
    /// name who wrote every page).
    pub fn attribute_all(&mut self, ids: &[PageId]) -> Result<()> {
        let manifest = &self.ws.snapshot().manifest;
        let mut wanted: Vec<(PageId, core_crypto::state::ManifestEntry)> = ids
            .iter()
            .filter(|id| self.ws.provenance(id).is_none())
            .filter_map(|id| manifest.pages.get(id).map(|e| (*id, *e)))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let head = self.ws.head().clone();
        let steps = self.gw.walk(&head, &mut |s| {
            wanted.retain(|(id, e)| !client::history::introduces(s, id, e));
            !wanted.is_empty()
        })?;
        self.ws.attribute(&steps);
        Ok(())
    }

    /// Fetches the server's head and, if it moved, verifies it as extending this session's
    /// (every step between) and adopts it.
    pub fn refresh(&mut self) -> Result<()> {
        let gw = self.remote.sync()?;
        if gw.commit() != self.gw.commit() {
            gw.advance(&mut self.ws)?;
            gw.check_blobs(&self.ws.snapshot().manifest, &self.remote.blob_cache())?;
            self.remote.seen.store(&self.remote.wiki, &self.ws.seen())?;
            self.gw = gw;
            self.gw.load_wanted(&mut self.ws, &mut |_| {})?;
        }
        Ok(())
    }

    /// Runs `change` on a draft of the current head and commits it. A page the change needs is
    /// loaded and the change run again; on a conflict the session refreshes and runs it again.
    /// Returns the new sequence and what `change` returned, or `None` when it staged nothing.
    pub fn write<T>(
        &mut self,
        index: IndexWrite,
        change: &mut dyn FnMut(&mut Draft<'_>) -> client::Result<T>,
    ) -> Result<Option<(u64, T)>> {
        self.commit(&mut |ws, now| {
            let mut draft = ws.draft(now)?;
            let value = change(&mut draft)?;
            if draft.is_empty() && !draft.index_pending(index) {
                return Ok(None);
            }
            Ok(Some((draft.finish(index)?, value)))
        })
    }

    /// The commit loop under [`Self::write`], for changes that start their own draft (keyring
    /// changes): `make` builds and signs the write on the current head, or returns `None`.
    pub fn commit<T>(
        &mut self,
        make: &mut dyn FnMut(&Workspace, i64) -> client::Result<Option<(Pending, T)>>,
    ) -> Result<Option<(u64, T)>> {
        let mut attempt = 0;
        loop {
            let t = std::time::Instant::now();
            let (pending, value) = match make(&self.ws, crate::time::now_ms()) {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(e) if e.kind == Kind::NotLoaded => {
                    let page = e.page.ok_or_else(|| CliError::general(e.message.clone()))?;
                    self.load(&[page])?;
                    if !self.ws.is_loaded(&page) && !self.ws.isolated().contains_key(&page) {
                        return Err(CliError::general(e.message));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            crate::output::timing("encrypt, sign and check the commit", t);
            let t = std::time::Instant::now();
            let outcome = self
                .remote
                .api
                .commit(&self.remote.wiki.to_hex(), &pending.body())?;
            crate::output::timing("send the commit", t);
            match outcome {
                CommitOutcome::Accepted { seq, .. } => {
                    self.ws.accept(pending)?;
                    self.remote.seen.store(&self.remote.wiki, &self.ws.seen())?;
                    return Ok(Some((seq, value)));
                }
                CommitOutcome::Conflict => {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(CliError::new(
                            ErrorKind::Conflict,
                            format!(
                                "the wiki kept changing while writing ({attempt} attempts); nothing was written"
                            ),
                        )
                        .with_hint("try again in a moment"));
                    }
                    self.remote.out.note(
                        "someone else changed the wiki meanwhile; redoing the change on the new version",
                    );
                    std::thread::sleep(backoff(attempt));
                    self.refresh()?;
                }
            }
        }
    }
}
