//! A wiki on the server, as the CLI works with it: an encrypted git mirror in the data folder
//! (fetched before every command, so reads are local and verify *every* blob), writes through
//! the API's commit route, and a write session ([`Writer`]) that chains commits in memory and,
//! on `409 conflict`, refetches and re-runs the change on the new head.

use std::collections::BTreeMap;
use std::path::PathBuf;

use core_crypto::envelope::PageRecord;
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::index::SearchIndex;
use core_crypto::keyring::WikiKeys;
use core_crypto::snapshot::{Snapshot, WriteBatch};
use rand_core::OsRng;

use crate::api::{Api, CommitOutcome, CommitRequest};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, ErrorKind, Result};
use crate::git::{self, Git};
use crate::repo::{self, Verified};
use crate::wiki::{self, Catalog};

/// How often a write is re-run after `409 conflict` before giving up.
const MAX_ATTEMPTS: usize = 8;

/// A wiki on the server and its local mirror.
#[derive(Debug)]
pub struct Remote<'a> {
    /// The command context.
    pub ctx: &'a Ctx,
    /// The wiki.
    pub wiki: WikiId,
    /// API client (with the session token).
    pub api: Api,
    mirror: PathBuf,
}

impl<'a> Remote<'a> {
    /// The selected wiki on the logged-in server.
    pub fn open(ctx: &'a Ctx) -> Result<Self> {
        let wiki = ctx.wiki()?;
        Self::for_wiki(ctx, wiki)
    }

    /// A given wiki on the logged-in server.
    pub fn for_wiki(ctx: &'a Ctx, wiki: WikiId) -> Result<Self> {
        let api = ctx.api()?;
        Ok(Self {
            ctx,
            wiki,
            mirror: ctx.paths.wiki_dir(&wiki).join("mirror.git"),
            api,
        })
    }

    /// The local encrypted mirror (after [`Self::sync`]).
    pub fn mirror(&self) -> Git {
        Git::at(&self.mirror)
    }

    /// The wiki's git URL (no credentials in it).
    pub fn git_url(&self) -> String {
        format!("{}/git/{}.git", self.api.base(), self.wiki)
    }

    /// Brings the mirror up to the server's `main` (forced: the verification, not git, decides
    /// whether a rewritten history is acceptable).
    pub fn sync(&self) -> Result<Git> {
        let git = Git::at(&self.mirror);
        if !self.mirror.join("HEAD").exists() {
            std::fs::create_dir_all(&self.mirror)
                .map_err(|e| CliError::io(self.mirror.display(), e))?;
            git.run(["init", "--quiet", "--bare"], "creating the local mirror")?;
        }
        let mut args = git::credential_config_for(self.ctx.key_file.as_deref())?;
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
        Ok(git)
    }

    /// Fetches and verifies the current wiki, and remembers it as seen.
    pub fn fetch_verified(&self) -> Result<Verified> {
        self.fetch_verified_from(None)
    }

    /// [`Self::fetch_verified`] for a process that keeps a head it verified earlier (`prev`): the
    /// new head must extend it (every state between is a verified transition, see
    /// [`crate::commands::history::check_extends`]), and envelopes unchanged since are reused.
    pub fn fetch_verified_from(&self, prev: Option<&Verified>) -> Result<Verified> {
        let t = std::time::Instant::now();
        let git = self.sync()?;
        crate::output::timing("git fetch", t);
        let t = std::time::Instant::now();
        let mut seen = self.ctx.seen.load(&self.wiki)?;
        if let Some(p) = prev {
            seen = crate::seen::newest(&seen, &p.snapshot.seen_record());
        }
        let known = prev.map(|p| repo::Known {
            manifest: &p.snapshot.manifest,
            blobs: &p.blobs,
            oids: &p.page_oids,
        });
        let verified = repo::load_with(&git, "refs/heads/main", &seen, known.as_ref())?;
        crate::output::timing("read and verify every blob", t);
        if verified.snapshot.keyring.wiki != self.wiki {
            return Err(CliError::integrity("the server returned another wiki"));
        }
        if let Some(p) = prev {
            crate::commands::history::check_extends(&git, &verified, p.snapshot.state.seen())?;
        }
        self.ctx
            .seen
            .store(&self.wiki, &verified.snapshot.seen_record())?;
        Ok(verified)
    }

    /// Fetches, verifies, unlocks and loads the catalog: what read commands need.
    pub fn read(&self, who: &Unlocked) -> Result<ReadView> {
        self.read_from(who, None)
    }

    /// [`Self::read`] for a process that keeps a head it verified earlier (see
    /// [`Self::fetch_verified_from`]).
    pub fn read_from(&self, who: &Unlocked, prev: Option<&Verified>) -> Result<ReadView> {
        let v = self.fetch_verified_from(prev)?;
        let t = std::time::Instant::now();
        let keys = v.snapshot.keyring.unlock(&who.identity)?;
        crate::output::timing("unlock the keyring", t);
        let t = std::time::Instant::now();
        let bar = std::cell::RefCell::new(None);
        let catalog = Catalog::load(&v.snapshot, &v.blobs, &keys, &mut |n| {
            if n > 200 {
                *bar.borrow_mut() = Some(self.ctx.out.progress(n as u64, "indexing"));
            }
        })?;
        if let Some(b) = bar.into_inner() {
            b.finish_and_clear();
        }
        crate::output::timing("load and refresh the index", t);
        Ok(ReadView {
            verified: v,
            keys,
            catalog,
        })
    }
}

/// A verified, unlocked wiki with its catalog.
#[derive(Debug)]
pub struct ReadView {
    /// The verified data.
    pub verified: Verified,
    /// The unlocked keys.
    pub keys: WikiKeys,
    /// Paths and index.
    pub catalog: Catalog,
}

impl ReadView {
    /// Opens one page.
    pub fn open(&self, id: &PageId) -> Result<PageRecord> {
        wiki::open(
            &self.verified.snapshot,
            &self.verified.blobs,
            &self.keys,
            id,
        )
    }
}

/// Changes being staged for one commit.
pub struct Stage<'s> {
    batch: WriteBatch<'s>,
    keys: &'s WikiKeys,
    view_blobs: &'s BTreeMap<PageId, Vec<u8>>,
    snapshot: &'s Snapshot,
    /// The index as it will be after this commit.
    pub index: SearchIndex,
    changed: bool,
    /// Pages put or removed.
    staged: usize,
}

impl Stage<'_> {
    /// The page at `path` (in the staged index).
    pub fn find(&self, path: &str) -> Option<PageId> {
        self.index
            .pages()
            .iter()
            .filter(|(_, p)| p.path == path)
            .max_by_key(|(_, p)| p.written_at_ms)
            .map(|(id, _)| *id)
    }

    /// Opens a page as it is in the base snapshot.
    pub fn open(&self, id: &PageId) -> Result<PageRecord> {
        wiki::open(self.snapshot, self.view_blobs, self.keys, id)
    }

    /// The envelope hash of a page in the base snapshot.
    pub fn base_hash(&self, id: &PageId) -> Option<Digest32> {
        self.snapshot.manifest.pages.get(id).map(|e| e.hash)
    }

    /// Encrypts and stages a page version.
    pub fn put(&mut self, id: PageId, record: &PageRecord) -> Result<()> {
        let hash = self.batch.put(&mut OsRng, self.keys, id, record)?;
        self.index.insert(id, record, hash);
        self.changed = true;
        self.staged += 1;
        Ok(())
    }

    /// Stages a removal.
    pub fn remove(&mut self, id: &PageId) -> Result<()> {
        self.batch.remove(id)?;
        self.index
            .remove_pages(&std::collections::BTreeSet::from([*id]));
        self.changed = true;
        self.staged += 1;
        Ok(())
    }
}

/// A write session: the current verified head in memory, chained across commits.
pub struct Writer<'r, 'a> {
    remote: &'r Remote<'a>,
    who: &'r Unlocked,
    /// The current head.
    pub snapshot: Snapshot,
    /// Envelopes of the current head.
    pub blobs: BTreeMap<PageId, Vec<u8>>,
    /// Keys for the current keyring.
    pub keys: WikiKeys,
    /// The catalog of the current head.
    pub catalog: Catalog,
    force_index: bool,
}

impl<'r, 'a> Writer<'r, 'a> {
    /// Fetches and verifies the head, ready to write.
    pub fn begin(remote: &'r Remote<'a>, who: &'r Unlocked) -> Result<Self> {
        Ok(Self::from_view(remote, who, remote.read(who)?))
    }

    /// Starts from a head already fetched and verified (e.g. kept by a long-running session).
    pub fn from_view(remote: &'r Remote<'a>, who: &'r Unlocked, view: ReadView) -> Self {
        Self {
            remote,
            who,
            snapshot: view.verified.snapshot,
            blobs: view.verified.blobs,
            keys: view.keys,
            catalog: view.catalog,
            force_index: false,
        }
    }

    /// Writes the search index if it is stale (e.g. after commits made with `write_index` off).
    pub fn flush_index(&mut self) -> Result<Option<u64>> {
        self.force_index = true;
        let result = self.commit(true, &mut |_| Ok(()));
        self.force_index = false;
        result
    }

    fn refresh(&mut self) -> Result<()> {
        let fresh = Self::begin(self.remote, self.who)?;
        self.snapshot = fresh.snapshot;
        self.blobs = fresh.blobs;
        self.keys = fresh.keys;
        self.catalog = fresh.catalog;
        Ok(())
    }

    /// Runs `change` on the current head and commits the result; on a conflict, refetches and
    /// runs it again on the new head. `write_index` lets the updated search index go in the same
    /// commit when it is due (`core_crypto::index::index_due`); otherwise it stays in memory and a
    /// later commit or [`Self::flush_index`] writes it. Returns the
    /// new sequence, or `None` when `change` staged nothing.
    pub fn commit(
        &mut self,
        write_index: bool,
        change: &mut dyn FnMut(&mut Stage<'_>) -> Result<()>,
    ) -> Result<Option<u64>> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                self.remote
                    .ctx
                    .out
                    .note("someone else changed the wiki meanwhile; redoing the change on the new version");
                self.refresh()?;
            }
            let t = std::time::Instant::now();
            let mut stage = Stage {
                batch: self.snapshot.begin_write(),
                keys: &self.keys,
                view_blobs: &self.blobs,
                snapshot: &self.snapshot,
                index: self.catalog.index.clone(),
                changed: false,
                staged: 0,
            };
            change(&mut stage)?;
            let epoch_changed = !self.catalog.old_index_ids.is_empty();
            let index_only =
                write_index && (self.catalog.stored_lag > 0 || epoch_changed) && self.force_index;
            if !stage.changed && !index_only {
                return Ok(None);
            }
            let lag = self.catalog.stored_lag.saturating_add(stage.staged);
            // The index is rewritten when asked to, after a key change, or when due (small, or
            // lagging too far); otherwise it lags (see `wiki::Catalog`).
            let write_index = write_index
                && (self.force_index
                    || epoch_changed
                    || core_crypto::index::index_due(stage.index.pages().len(), lag));
            let Stage {
                mut batch,
                mut index,
                ..
            } = stage;
            if write_index {
                for old in &self.catalog.old_index_ids {
                    batch.remove(old)?;
                }
                index.seq = self.snapshot.state.seq + 1;
                let record = index.to_record(&self.who.user, wiki::now_ms())?;
                batch.put(&mut OsRng, &self.keys, self.catalog.index_id, &record)?;
            }
            let prepared = batch.finish(&self.who.identity)?;
            crate::output::timing("encrypt, sign and check the commit", t);
            let t = std::time::Instant::now();
            let outcome = self.remote.api.commit(
                &self.remote.wiki.to_hex(),
                &CommitRequest {
                    state: prepared.state.as_bytes(),
                    manifest: &prepared.manifest.encode(),
                    blobs: &prepared.blobs,
                    keyring: prepared.keyring.as_ref().map(|k| k.as_bytes()),
                },
            )?;
            crate::output::timing("send the commit", t);
            let t = std::time::Instant::now();
            match outcome {
                CommitOutcome::Conflict => continue,
                CommitOutcome::Accepted { seq } => {
                    let mut by_hash: BTreeMap<Digest32, Vec<u8>> = prepared
                        .blobs
                        .iter()
                        .map(|b| (Digest32::of(b), b.clone()))
                        .collect();
                    let next = prepared.into_snapshot(&self.snapshot);
                    // Adopt the new head in place: only the pages this commit wrote or removed
                    // change (copying every blob took 150 ms per commit at 10,000 pages).
                    let complete = next.manifest.pages.iter().all(|(id, entry)| {
                        by_hash.contains_key(&entry.hash) || self.blobs.contains_key(id)
                    });
                    if !complete {
                        return Err(CliError::general("lost a blob while committing"));
                    }
                    self.remote
                        .ctx
                        .seen
                        .store(&self.remote.wiki, &next.seen_record())?;
                    self.blobs
                        .retain(|id, _| next.manifest.pages.contains_key(id));
                    for (id, entry) in &next.manifest.pages {
                        if let Some(blob) = by_hash.remove(&entry.hash) {
                            self.blobs.insert(*id, blob);
                        }
                    }
                    self.snapshot = next;
                    self.catalog.index = index;
                    if write_index {
                        self.catalog.old_index_ids.clear();
                        self.catalog.stored_lag = 0;
                    } else {
                        self.catalog.stored_lag = lag;
                    }
                    crate::output::timing("adopt the new head", t);
                    return Ok(Some(seq));
                }
            }
        }
        Err(CliError::new(
            ErrorKind::Conflict,
            "the wiki kept changing while writing; nothing was written",
        )
        .with_hint("try again in a moment"))
    }
}
