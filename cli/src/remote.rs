//! A wiki on the server as the CLI drives it: the client core's [`Workspace`], fed over HTTP,
//! with what this machine verified before kept on disk ([`crate::store`]) and an encrypted git
//! mirror for history. The core decides everything; this module moves bytes.
//!
//! Opening costs one small request when nothing changed: the server's probe (`GET
//! /head?manifest=0`) names the same state and commit as the head kept on disk, whose signatures
//! are checked again. When the wiki moved, the keyring versions since, the new head and every
//! state between come over HTTP and the core verifies each step from the kept head (or from the
//! seen record on a first visit). The same state under another git commit means the repository
//! changed without a signed state: then the mirror is fetched and every file of the tree checked.
//! Envelopes are fetched by hash when a page is needed, checked against the signed manifest,
//! and kept (ciphertext) for next time.
//!
//! A wiki whose keyring lists witnesses is checked with them ([`crate::witness`]) before a head
//! is accepted or kept, whether it was fetched, advanced or just committed here.
//!
//! Writes go through [`Session::write`]: the change runs on a [`Draft`] of the current head; a
//! page the change needs is loaded and the change run again; on `409 conflict` the session
//! refreshes and runs it again after a randomized, growing pause, so concurrent writers do not
//! collide in lockstep.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use client::head::{Step, VerifiedHead, state_seq, trail_needed};
use client::workspace::{Draft, IndexWrite, Pending};
use client::{Kind, Workspace};
use core_crypto::envelope::PageRecord;
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::snapshot::SeenRecord;
use rand_core::RngCore;

use crate::api::{Api, CommitOutcome};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, Context, ErrorKind, Result};
use crate::git::{self, Git};
use crate::output::Out;
use crate::repo::GitWiki;
use crate::seen::SeenStore;
use crate::store::{CachedHead, WikiDir};
use crate::witness::{self, Report, Start, WitnessClient};

/// How long a write keeps redoing itself on a wiki that others keep changing before it gives
/// up. A time, not a count of attempts: on a busy machine with many writers one attempt can take
/// a second, and a writer that loses forty races in a row must still get its turn.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// The pause before attempt `attempt` (1-based) after conflicts: random up to a cap that
/// doubles from 10 ms to 1 s ("full jitter").
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 10u64.saturating_mul(1 << attempt.min(7)).min(1000);
    Duration::from_millis(rand_core::OsRng.next_u64() % (cap_ms + 1))
}

/// Where a wiki lives: the server, its id, and this machine's files for it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The wiki.
    pub wiki: WikiId,
    /// API client (session or agent token).
    pub api: Api,
    dir: WikiDir,
    key_file: Option<PathBuf>,
    seen: SeenStore,
    out: Out,
    witnesses: WitnessClient,
    /// Apply witness policy `warn` whatever the keyring says (for an owner repairing the list
    /// of witnesses while one is down).
    pub witness_warn_only: bool,
}

/// What moved on the server since a verified head (unverified bytes).
struct Update {
    newer: Vec<Vec<u8>>,
    state: Vec<u8>,
    manifest: Vec<u8>,
    trail: Vec<(Vec<u8>, Vec<u8>)>,
    commit: String,
}

/// A verified head with how it was reached.
struct Opened {
    head: VerifiedHead,
    steps: Vec<Step>,
    commit: String,
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
            dir: WikiDir::new(&ctx.paths.data_dir, &wiki),
            key_file: ctx.key_file.clone(),
            seen: ctx.seen.clone(),
            out: ctx.out,
            witnesses: WitnessClient::default(),
            witness_warn_only: false,
        })
    }

    /// The wiki id in hex.
    pub fn hex(&self) -> String {
        self.wiki.to_hex()
    }

    /// The wiki's git URL (no credentials in it).
    pub fn git_url(&self) -> String {
        format!(
            "{}{}",
            self.api.base(),
            client::wire::route::git(&self.hex())
        )
    }

    /// The seen record of this wiki on this machine.
    pub fn seen(&self) -> Result<SeenRecord> {
        self.seen.load(&self.wiki)
    }

    /// Brings the mirror up to the server's `main` (forced: the core, not git, decides whether
    /// a rewritten history is acceptable). Call with the wiki's lock held.
    fn sync_mirror(&self) -> Result<Git> {
        let t = std::time::Instant::now();
        let dir = self.dir.mirror();
        let git = Git::at(&dir);
        if !dir.join("HEAD").exists() {
            std::fs::create_dir_all(&dir).map_err(|e| CliError::io(dir.display(), e))?;
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
        Ok(git)
    }

    /// The mirror at `commit` (fetched first when it does not have it).
    fn mirror_at(&self, commit: &str) -> Result<GitWiki> {
        let _lock = self.dir.lock()?;
        let git = Git::at(&self.dir.mirror());
        let have = self.dir.mirror().join("HEAD").exists() && git.rev_parse(commit)?.is_some();
        let git = if have { git } else { self.sync_mirror()? };
        GitWiki::at(git, commit).map_err(|e| {
            if e.kind == ErrorKind::NotFound {
                CliError::integrity(format!(
                    "the server no longer has the commit {commit} of the verified head: its history was rewritten"
                ))
            } else {
                e
            }
        })
    }

    /// What moved since `base` (unverified): the keyring versions after its own, the server's
    /// head, and the states between. Retries when a write lands between the requests.
    fn fetch_update(&self, base: &VerifiedHead) -> Result<Update> {
        let wiki = self.hex();
        for _ in 0..3 {
            let (state, manifest, commit) = self.api.head(&wiki)?;
            let seq = state_seq(&state).context("reading the signed state")?;
            let newer = self.api.keyring(&wiki, base.snapshot().keyring.seq)?;
            let trail = if seq > base.seq() + 1 {
                self.api.states(&wiki, base.seq() + 1, seq - 1)?
            } else {
                Vec::new()
            };
            // Signed states before the head never change, and the manifest came with its state:
            // only a keyring version newer than the head's could make the answers disagree, so
            // only then does a write that landed meanwhile matter (under eight busy writers the
            // head moves between almost any two requests).
            if !newer.is_empty() && self.head_moved(&state)? {
                continue;
            }
            return Ok(Update {
                newer,
                state,
                manifest,
                trail,
                commit,
            });
        }
        Err(self.kept_changing())
    }

    fn kept_changing(&self) -> CliError {
        CliError::new(
            ErrorKind::Conflict,
            "the wiki kept changing while it was being read",
        )
        .with_hint("try again in a moment")
    }

    /// The head over HTTP on a first visit: the whole keyring chain, the head, and the states
    /// from the one this machine saw (if any).
    fn fetch_fresh(&self, seen: &SeenRecord) -> Result<Opened> {
        let wiki = self.hex();
        for _ in 0..3 {
            let (state, manifest, commit) = self.api.head(&wiki)?;
            let seq = state_seq(&state).context("reading the signed state")?;
            let chain = self.api.keyring(&wiki, 0)?;
            let trail = match trail_needed(seen, seq)? {
                Some(r) => self.api.states(&wiki, *r.start(), *r.end())?,
                None => Vec::new(),
            };
            // As in `fetch_update`: only a keyring newer than the one the head names makes a
            // write that landed meanwhile matter.
            let named = core_crypto::state::WikiState::decode(&state).map(|s| s.keyring);
            let latest = chain
                .last()
                .and_then(|k| core_crypto::keyring::Keyring::decode(k.as_ref()).ok())
                .map(|k| k.hash());
            if named.ok() != latest && self.head_moved(&state)? {
                continue;
            }
            let (head, steps) = VerifiedHead::verify(&chain, &state, &manifest, seen, &trail)
                .context("verifying the wiki's keyring and signed state")?;
            if head.snapshot().keyring.wiki != self.wiki {
                return Err(CliError::integrity("the server returned another wiki"));
            }
            return Ok(Opened {
                head,
                steps,
                commit,
            });
        }
        Err(self.kept_changing())
    }

    /// Whether the server's head is no longer `state` (a write landed meanwhile).
    fn head_moved(&self, state: &[u8]) -> Result<bool> {
        let (now, _, _) = self.api.head_probe(&self.hex())?;
        Ok(Digest32::of(&now) != Digest32::of(state))
    }

    /// The same state under another commit: the repository changed without a signed state.
    /// Fetch it and check every file of its tree against what the members signed.
    fn check_repository(&self, seen: &SeenRecord) -> Result<Opened> {
        let git = self.sync_mirror()?;
        let gw = GitWiki::at(git, "refs/heads/main")?;
        let (head, steps) = gw.verify(seen)?;
        gw.check_blobs(
            &head.snapshot().manifest,
            &self.dir.path().join("verified-blobs"),
        )?;
        Ok(Opened {
            head,
            steps,
            commit: gw.commit().to_owned(),
        })
    }

    /// Brings `base` (a head this machine verified, or none) to the server's head; keeps the
    /// result on disk and in the seen record. With the wiki's lock held.
    fn verify_current(
        &self,
        base: Option<&VerifiedHead>,
        base_commit: Option<&str>,
    ) -> Result<(Opened, Report)> {
        let _lock = self.dir.lock()?;
        let seen = self.seen()?;
        let (state, _, commit) = self.api.head_probe(&self.hex())?;
        let cached = self
            .dir
            .head()
            .and_then(|c| verify_cached(&c).ok().map(|h| (c.commit, h)));
        // The freshest head this machine verified: this session's, or the one on disk.
        let (base, base_commit) = match (base, cached) {
            (Some(b), Some((cc, ch))) if ch.seq() > b.seq() => (Some(ch), Some(cc)),
            (Some(b), _) => (Some(b.clone()), base_commit.map(str::to_owned)),
            (None, Some((cc, ch))) => (Some(ch), Some(cc)),
            (None, None) => (None, None),
        };
        // A seen record ahead of it (another tool moved it): start from the seen record.
        let base = base.filter(|b| seen.state.is_none_or(|s| s.seq <= b.seq()));
        let opened = match &base {
            Some(b) if Digest32::of(&state) == b.state_hash() => {
                if base_commit.as_deref() == Some(commit.as_str()) {
                    Opened {
                        head: b.clone(),
                        steps: Vec::new(),
                        commit,
                    }
                } else {
                    self.check_repository(&seen)?
                }
            }
            Some(b) => {
                let u = self.fetch_update(b)?;
                let (head, steps) = b
                    .advance(&u.newer, &u.state, &u.manifest, &u.trail)
                    .context("verifying the wiki's new version")?;
                Opened {
                    head,
                    steps,
                    commit: u.commit,
                }
            }
            None => self.fetch_fresh(&seen)?,
        };
        let report = self.check_witnesses(&opened.head, Start::Query, false)?;
        self.keep(&opened.head, &opened.commit)?;
        Ok((opened, report))
    }

    /// Checks `head` with the wiki's witnesses (none: nothing to do); see [`crate::witness`].
    pub fn check_witnesses(
        &self,
        head: &VerifiedHead,
        start: Start,
        warn_only: bool,
    ) -> Result<Report> {
        let wiki = self.hex();
        let mut states = |from: u64, to: u64| -> Result<Vec<Vec<u8>>> {
            Ok(self
                .api
                .states(&wiki, from, to)?
                .into_iter()
                .map(|(state, _)| state)
                .collect())
        };
        witness::check(
            head,
            start,
            &mut witness::Check {
                client: &self.witnesses,
                dir: self.dir.path(),
                out: self.out,
                states: &mut states,
                warn_only: warn_only || self.witness_warn_only,
            },
        )
    }

    /// Keeps a verified head on disk and in the seen record (with the lock held).
    fn keep(&self, head: &VerifiedHead, commit: &str) -> Result<()> {
        self.seen.store(&self.wiki, &head.seen_record())?;
        let snap = head.snapshot();
        self.dir.store_head(
            &CachedHead {
                commit: commit.to_owned(),
                chain: head.chain().iter().map(|k| k.as_bytes().to_vec()).collect(),
                state: snap.state.as_bytes().to_vec(),
                manifest: snap.manifest.encode(),
            },
            head.seq(),
        )
    }

    /// Verifies the server's head (see the module docs), opens the workspace as `who`, and
    /// loads the catalog.
    pub fn session(&self, who: &Unlocked) -> Result<Session> {
        self.session_with(&mut || {
            Ok(Unlocked {
                user: who.user.clone(),
                identity: core_crypto::identity::UserIdentity::from_secret_bytes(
                    who.identity.to_secret_bytes().as_ref(),
                )?,
            })
        })
    }

    /// Like [`Self::session`], unlocking only once the server answered and the head verified
    /// (so a server that is down says so before anyone is asked for a passphrase).
    pub fn session_with(&self, unlock: &mut dyn FnMut() -> Result<Unlocked>) -> Result<Session> {
        let t = std::time::Instant::now();
        let (opened, witnesses) = self.verify_current(None, None)?;
        let who = unlock()?;
        let ws = Workspace::open(&who.identity, &who.user, opened.head, &opened.steps)?;
        crate::output::timing("verify the head and unlock", t);
        let mut s = Session {
            remote: self.clone(),
            ws,
            commit: opened.commit,
            mirror: None,
            witnesses,
        };
        let t = std::time::Instant::now();
        s.load_wanted()?;
        crate::output::timing("load and refresh the index", t);
        Ok(s)
    }

    /// Envelopes by page, from this machine's blob cache (`true`: the caller's check against the
    /// signed manifest decides whether it is still good) or the server.
    fn envelopes(&self, ws: &Workspace, ids: &[PageId]) -> Result<Vec<(PageId, Vec<u8>, bool)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(entry) = ws.snapshot().manifest.pages.get(id) else {
                continue;
            };
            match self.dir.blob(&entry.hash) {
                Some(b) if b.len() as u64 == u64::from(entry.size) => out.push((*id, b, true)),
                _ => out.push((*id, self.fetch_envelope(id, &entry.hash)?, false)),
            }
        }
        Ok(out)
    }

    /// One envelope from the server.
    fn fetch_envelope(&self, id: &PageId, hash: &Digest32) -> Result<Vec<u8>> {
        self.api.blob(&self.hex(), &hash.to_hex())?.ok_or_else(|| {
            CliError::integrity(format!(
                "page {id} is listed in the signed manifest but the server does not return it (dropped or withheld)"
            ))
        })
    }
}

/// Re-verifies a head kept on disk (its signatures and links; it was accepted before).
fn verify_cached(c: &CachedHead) -> client::Result<VerifiedHead> {
    VerifiedHead::verify(&c.chain, &c.state, &c.manifest, &SeenRecord::default(), &[])
        .map(|(h, _)| h)
}

/// Builds a signed write on the current head (given the time now), or `None` when nothing
/// changes; the second value is what the caller wants back.
pub type MakeWrite<'a, T> = dyn FnMut(&Workspace, i64) -> client::Result<Option<(Pending, T)>> + 'a;

/// An open wiki: the verified workspace, and the git commit of its head.
pub struct Session {
    /// Where it lives.
    pub remote: Remote,
    /// The client core's view.
    pub ws: Workspace,
    commit: String,
    mirror: Option<GitWiki>,
    /// What the wiki's witnesses said about the head, when last asked.
    pub witnesses: Report,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({:?})", self.ws)
    }
}

impl Session {
    /// The git commit of the head.
    pub fn head_commit(&self) -> &str {
        &self.commit
    }

    /// The mirror at this session's head, for walking history (fetched when needed).
    pub fn repo(&mut self) -> Result<&GitWiki> {
        if self
            .mirror
            .as_ref()
            .is_none_or(|m| m.commit() != self.commit)
        {
            self.mirror = Some(self.remote.mirror_at(&self.commit)?);
        }
        self.mirror
            .as_ref()
            .ok_or_else(|| CliError::general("the mirror is not open"))
    }

    /// Loads pages into the workspace (checked against the signed manifest; a page a member
    /// wrote against the rules is isolated, not an error). An envelope that is not the signed
    /// one is an integrity error.
    pub fn load(&mut self, ids: &[PageId]) -> Result<()> {
        let todo: Vec<PageId> = ids
            .iter()
            .filter(|id| !self.ws.is_loaded(id) && !self.ws.isolated().contains_key(id))
            .copied()
            .collect();
        for (id, mut blob, cached) in self.remote.envelopes(&self.ws, &todo)? {
            let hash = self.ws.snapshot().manifest.pages.get(&id).map(|e| e.hash);
            let mut loaded = self.ws.load(id, &blob).map(|_| ());
            if let (true, Some(h), Err(e)) = (cached, hash, &loaded)
                && e.kind == Kind::Integrity
            {
                // This machine's copy went bad (the core checks every envelope against the
                // signed manifest): forget it and ask the server.
                self.remote.dir.drop_blob(&h);
                blob = self.remote.fetch_envelope(&id, &h)?;
                loaded = self.ws.load(id, &blob).map(|_| ());
            }
            match loaded {
                Ok(()) => {
                    if let (false, Some(h)) = (cached, hash) {
                        self.remote.dir.keep_blob(&h, &blob);
                    }
                }
                Err(e) if e.kind == Kind::Access => {}
                Err(e) => return Err(CliError::from(e).context(format!("page {id}"))),
            }
        }
        self.attribute()
    }

    /// Runs the catalog's pull loop to the end, then finds who wrote any isolated page.
    fn load_wanted(&mut self) -> Result<()> {
        let mut bar = None;
        for _ in 0..8 {
            let wanted: Vec<PageId> = self.ws.wanted().into_iter().map(|(id, _)| id).collect();
            if wanted.is_empty() {
                break;
            }
            if wanted.len() > 200 && bar.is_none() {
                bar = Some(self.remote.out.progress(wanted.len() as u64, "indexing"));
            }
            self.load(&wanted)?;
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if let Some(title) = self.ws.title() {
            self.remote.dir.store_title(title);
        }
        Ok(())
    }

    /// A page's current record, loading it when needed.
    pub fn record(&mut self, id: &PageId) -> Result<&PageRecord> {
        self.load(std::slice::from_ref(id))?;
        Ok(self.ws.record(id)?)
    }

    /// Every live page decrypted (clone, decrypt, export), in bulk from the mirror.
    pub fn load_all(&mut self, on_page: &mut dyn FnMut(usize)) -> Result<()> {
        self.repo()?;
        let Self { ws, mirror, .. } = self;
        let gw = mirror
            .as_ref()
            .ok_or_else(|| CliError::general("the mirror is not open"))?;
        gw.load_all(ws, on_page)
    }

    /// Walks history back from this session's head while `more` says so; tells the core who
    /// wrote what.
    fn walk_and_attribute(&mut self, more: &mut dyn FnMut(&Step) -> bool) -> Result<()> {
        let head = self.ws.head().clone();
        let steps = self.repo()?.walk(&head, more)?;
        self.ws.attribute(&steps);
        Ok(())
    }

    /// Finds who wrote any page the core asks about (isolated pages, clashes).
    fn attribute(&mut self) -> Result<()> {
        let mut wanted = self.ws.unattributed();
        if wanted.is_empty() {
            return Ok(());
        }
        self.walk_and_attribute(&mut |s| {
            wanted.retain(|(id, e)| !client::history::introduces(s, id, e));
            !wanted.is_empty()
        })
    }

    /// Who wrote the current version of a page, walking history back when not known yet.
    pub fn provenance(&mut self, id: &PageId) -> Result<Option<client::history::Provenance>> {
        self.attribute_all(std::slice::from_ref(id))?;
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
        self.walk_and_attribute(&mut |s| {
            wanted.retain(|(id, e)| !client::history::introduces(s, id, e));
            !wanted.is_empty()
        })
    }

    /// Asks the server for its head and, if it moved, verifies it as extending this session's
    /// (every step between) and adopts it.
    pub fn refresh(&mut self) -> Result<()> {
        let (state, _, commit) = self.remote.api.head_probe(&self.remote.hex())?;
        let same_state = Digest32::of(&state) == self.ws.head().state_hash();
        if same_state && commit == self.commit {
            return Ok(());
        }
        let _lock = self.remote.dir.lock()?;
        if same_state {
            // The repository changed without a signed state: check every file.
            let opened = self.remote.check_repository(&self.ws.seen())?;
            self.commit = opened.commit;
            self.mirror = None;
            return Ok(());
        }
        let u = self.remote.fetch_update(self.ws.head())?;
        let (head, steps) = self
            .ws
            .head()
            .advance(&u.newer, &u.state, &u.manifest, &u.trail)
            .map_err(|e| CliError::from(e).context("verifying the wiki's new version"))?;
        self.witnesses = self.remote.check_witnesses(&head, Start::Query, false)?;
        self.ws.adopt_verified(head, &steps)?;
        self.commit = u.commit;
        self.remote.keep(self.ws.head(), &self.commit)?;
        drop(_lock);
        self.load_wanted()
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
    pub fn commit<T>(&mut self, make: &mut MakeWrite<'_, T>) -> Result<Option<(u64, T)>> {
        let mut attempt = 0;
        let started = std::time::Instant::now();
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
            let blobs: Vec<Vec<u8>> = pending.commit().blobs.clone();
            let outcome = self
                .remote
                .api
                .commit(&self.remote.hex(), &pending.body())?;
            crate::output::timing("send the commit", t);
            match outcome {
                CommitOutcome::Accepted { seq, commit } => {
                    self.ws.accept(pending)?;
                    for b in &blobs {
                        self.remote.dir.keep_blob(&Digest32::of(b), b);
                    }
                    self.commit = commit;
                    let _lock = self.remote.dir.lock()?;
                    self.remote.keep(self.ws.head(), &self.commit)?;
                    if let Some(title) = self.ws.title() {
                        self.remote.dir.store_title(title);
                    }
                    // The server stored it: a witness that is down only earns a warning now.
                    self.witnesses = self
                        .remote
                        .check_witnesses(self.ws.head(), Start::Submit, true)
                        .map_err(|e| {
                            e.context(format!(
                                "the server stored the write (state {seq}), but its witness refused it"
                            ))
                        })?;
                    return Ok(Some((seq, value)));
                }
                CommitOutcome::Conflict => {
                    attempt += 1;
                    if started.elapsed() >= GIVE_UP_AFTER {
                        return Err(CliError::new(
                            ErrorKind::Conflict,
                            format!(
                                "the wiki kept changing while writing ({attempt} attempts in {} s); nothing was written",
                                started.elapsed().as_secs()
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

    /// Drops kept envelopes of old versions when they pile up.
    pub fn tidy(&self) {
        let live: BTreeSet<Digest32> = self
            .ws
            .snapshot()
            .manifest
            .pages
            .values()
            .map(|e| e.hash)
            .collect();
        self.remote.dir.prune_blobs(&live);
    }
}
