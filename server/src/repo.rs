//! Wiki storage: one bare git repository per wiki (`DATA/wikis/<wiki>.git`, branch `main`).
//!
//! The tree of every commit is `keyring/<10-digit seq>` (every keyring version), `state`,
//! `manifest` and `pages/<page id>` (the current envelope of each page), as `docs/api.md` says.
//! Commit messages are `zkwiki state <seq>`, author and committer `zkwiki <zkwiki@invalid>`: no
//! plaintext, no user names.
//!
//! Writing ([`Wiki::commit`]) is read-verify-commit under the wiki's exclusive lock
//! ([`crate::durable::WikiLock`]): read the current head from disk, check the new state extends
//! it and verifies (core-crypto, as a first line of defence), write the commit's objects (loose),
//! append `<old> <new>` to the wiki's journal (`zkwiki-journal`), move `refs/heads/main` with
//! compare-and-swap, flush once, answer. Readers never take the lock: they read the ref (one small
//! file) and reuse a parsed [`Head`] cached per process while the ref has not moved, so several
//! processes can serve one data directory.
//!
//! One flush per commit instead of two (objects, then ref) means a crash can leave the ref naming
//! a commit whose objects never reached the disk. That commit was never acknowledged, and its parent
//! was durable when it was written: a commit is only built on a head this process flushed itself
//! (otherwise it flushes first, e.g. on a head left by a process killed before its flush). So the
//! first use of a wiki in a process checks that the head's own objects (everything it adds to its
//! parent) read back, and if not, repairs under the lock ([`Wiki::repair`]): the ref back to the
//! newest complete commit among the ref and the journal's entries (newest first; the journal names
//! the parent even when the new commit object is lost), torn objects out of the object store
//! ([`crate::quarantine`]).
//!
//! Writing each commit as one pack (two files instead of about six) was tried and measured: it
//! cost more CPU than it saved (libgit2 builds and indexes the pack, and thousands of tiny packs
//! must be merged in the background, rewriting their data), so commits were slower; see the
//! Server section of `docs/benchmarks.md`.
//!
//! History and blobs by SHA-256 come from a per-process index ([`HistoryEntry`]) built lazily from
//! the commit chain and extended by this process's own commits; it is a cache of what git holds,
//! never the truth.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::keyring::Keyring;
use core_crypto::snapshot::{AcceptedCommit, CommitRefusal};
use core_crypto::state::{Manifest, WikiState};
use data_encoding::BASE64;
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, RepositoryInitOptions, Signature, Time, Tree};
use serde_json::{Value, json};

use crate::db::now_unix;
use crate::durable::{SyncGroup, WikiLock};
use crate::error::{AppError, AppResult};
use crate::quarantine;

const MAIN: &str = "refs/heads/main";
/// Every member's sealed identities, for offline use of a clone (not signed: each opens only
/// with its member's secret, and must match the member's keys in the verified keyring).
const IDENTITIES: &str = "refs/heads/identities";
const AUTHOR_NAME: &str = "zkwiki";
const AUTHOR_EMAIL: &str = "zkwiki@invalid";
const NOT_FOUND: &str = "no such wiki (or it is not yours)";
/// `<old> <new>` per ref move, appended before the ref moves (see the module docs).
const JOURNAL: &str = "zkwiki-journal";
/// The journal is started afresh past this size.
const JOURNAL_MAX: u64 = 64 * 1024;
/// Torn objects found by a repair go here (outside `objects/`, for an operator to inspect).
const QUARANTINE: &str = "zkwiki-quarantine";

/// All wikis under one data directory.
pub struct Store {
    wikis_dir: PathBuf,
    locks_dir: PathBuf,
    sync: Arc<SyncGroup>,
    handles: Mutex<HashMap<WikiId, Arc<Wiki>>>,
    blobs: BlobCache,
}

/// Envelopes by git object id, kept in memory: a blob never changes, so a cached copy is always
/// right. Bounded by bytes; emptied when full (simple, and the hot set refills at once).
struct BlobCache {
    budget: usize,
    inner: Mutex<(usize, HashMap<Oid, Bytes>)>,
}

impl BlobCache {
    fn get(&self, oid: &Oid) -> Option<Bytes> {
        self.inner.lock().ok()?.1.get(oid).cloned()
    }

    fn put(&self, oid: Oid, bytes: Bytes) {
        if bytes.len() > self.budget / 16 {
            return;
        }
        if let Ok(mut guard) = self.inner.lock() {
            let (used, map) = &mut *guard;
            if *used + bytes.len() > self.budget {
                map.clear();
                *used = 0;
            }
            *used += bytes.len();
            map.insert(oid, bytes);
        }
    }
}

/// Memory for cached envelopes.
const BLOB_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// One wiki: its repository, lock, cached head and history index.
pub struct Wiki {
    /// The wiki id.
    pub id: WikiId,
    dir: PathBuf,
    lock_path: PathBuf,
    repos: Mutex<Vec<Repository>>,
    head: RwLock<Option<Arc<Head>>>,
    index: Mutex<HistoryIndex>,
    writer: Mutex<()>,
    sync: Arc<SyncGroup>,
    /// The head was checked complete (or repaired) since this process opened the wiki.
    sound: AtomicBool,
    /// The newest head this process knows is on stable storage.
    durable: Mutex<Option<Oid>>,
}

/// The current state of a wiki as read from its head commit.
pub struct Head {
    /// The head commit.
    pub commit: Oid,
    /// The signed state.
    pub state: WikiState,
    /// Its manifest.
    pub manifest: Manifest,
    /// The manifest's bytes as stored.
    pub manifest_bytes: Vec<u8>,
    /// Every keyring version, genesis first.
    pub keyrings: Arc<Vec<Vec<u8>>>,
    /// The latest keyring version.
    pub keyring: Arc<Keyring>,
    keyring_tree: Oid,
    /// Git blob of each page's current envelope.
    pub pages: HashMap<PageId, Oid>,
}

impl Head {
    /// The `head` object of the API (also sent with a `409`).
    pub fn to_json(&self) -> Value {
        json!({
            "state": BASE64.encode(self.state.as_bytes()),
            "manifest": BASE64.encode(&self.manifest_bytes),
            "keyring_seq": self.keyring.seq,
            "commit": self.commit.to_string(),
        })
    }

    /// The `head` object without the manifest (`GET /head?manifest=0`): the cheap "did the wiki
    /// change?" probe of a client that holds a verified head.
    pub fn to_probe_json(&self) -> Value {
        json!({
            "state": BASE64.encode(self.state.as_bytes()),
            "keyring_seq": self.keyring.seq,
            "commit": self.commit.to_string(),
        })
    }
}

/// One accepted commit, as history reports it.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// State sequence.
    pub seq: u64,
    /// Git commit.
    pub commit: Oid,
    /// The state's signer.
    pub signer: [u8; 32],
    /// Commit time (server clock, Unix seconds).
    pub time: i64,
    /// Pages added or changed, with the SHA-256 of their new envelope.
    pub changed: Vec<(PageId, Digest32)>,
    /// Pages removed.
    pub removed: Vec<PageId>,
    /// Whether a keyring version was added.
    pub keyring_changed: bool,
}

#[derive(Default)]
struct HistoryIndex {
    through: Option<Oid>,
    entries: Vec<HistoryEntry>,
    blobs: HashMap<Digest32, Oid>,
}

/// Most states one `GET /states?from=&to=` answer carries.
pub const MAX_STATES_BATCH: usize = 256;
/// Manifest bytes after which a states answer stops (the client asks for the rest).
pub const MAX_STATES_BYTES: usize = 16 * 1024 * 1024;

/// A commit request, decoded from base64.
pub struct CommitInput {
    /// The new signed state.
    pub state: Vec<u8>,
    /// Its manifest.
    pub manifest: Vec<u8>,
    /// New envelopes.
    pub blobs: Vec<Vec<u8>>,
    /// A new keyring version.
    pub keyring: Option<Vec<u8>>,
}

/// Who is writing: a session user must be a writer of the current keyring and sign the state
/// with their own key; an agent token with the `write` role has been checked by the caller.
#[derive(Clone, Copy, Debug)]
pub enum Writer {
    /// A session's user, by Ed25519 key.
    User([u8; 32]),
    /// An agent token scoped to this wiki with the write role.
    Agent,
}

/// The result of an accepted commit.
pub struct Committed {
    /// New state sequence.
    pub seq: u64,
    /// New git commit.
    pub commit: Oid,
    /// The new head.
    pub head: Arc<Head>,
    /// Whether the keyring changed (the membership index must follow).
    pub keyring_changed: bool,
}

fn git_time(now: i64) -> Time {
    Time::new(now, 0)
}

fn signature(now: i64) -> AppResult<Signature<'static>> {
    Ok(Signature::new(AUTHOR_NAME, AUTHOR_EMAIL, &git_time(now))?)
}

fn stored(what: &str) -> AppError {
    AppError::internal(format_args!(
        "repository is missing or has a corrupt {what}"
    ))
}

fn keyring_path(seq: u64) -> String {
    format!("keyring/{seq:010}")
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

impl Store {
    /// Opens the store (creating its folders).
    pub fn open(wikis_dir: PathBuf, locks_dir: PathBuf, fsync: bool) -> AppResult<Self> {
        std::fs::create_dir_all(&wikis_dir)?;
        std::fs::create_dir_all(&locks_dir)?;
        let sync = Arc::new(SyncGroup::new(&wikis_dir, fsync)?);
        Ok(Self {
            wikis_dir,
            locks_dir,
            sync,
            handles: Mutex::new(HashMap::new()),
            blobs: BlobCache {
                budget: BLOB_CACHE_BYTES,
                inner: Mutex::new((0, HashMap::new())),
            },
        })
    }

    fn repo_dir(&self, id: &WikiId) -> PathBuf {
        self.wikis_dir.join(format!("{id}.git"))
    }

    fn new_handle(&self, id: WikiId) -> Wiki {
        Wiki {
            id,
            dir: self.repo_dir(&id),
            lock_path: self.locks_dir.join(format!("{id}.lock")),
            repos: Mutex::new(Vec::new()),
            head: RwLock::new(None),
            index: Mutex::new(HistoryIndex::default()),
            writer: Mutex::new(()),
            sync: self.sync.clone(),
            sound: AtomicBool::new(false),
            durable: Mutex::new(None),
        }
    }

    /// The wiki, if its repository exists (`404` otherwise).
    pub fn wiki(&self, id: WikiId) -> AppResult<Arc<Wiki>> {
        let mut handles = self
            .handles
            .lock()
            .map_err(|_| AppError::internal("wiki table poisoned"))?;
        if let Some(w) = handles.get(&id) {
            return Ok(w.clone());
        }
        let dir = self.repo_dir(&id);
        if !dir.is_dir() {
            return Err(AppError::NotFound(NOT_FOUND));
        }
        let w = Arc::new(self.new_handle(id));
        handles.insert(id, w.clone());
        Ok(w)
    }

    fn forget(&self, id: &WikiId) {
        if let Ok(mut handles) = self.handles.lock() {
            handles.remove(id);
        }
    }

    /// Ids of every wiki on disk.
    pub fn list_ids(&self) -> AppResult<Vec<WikiId>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.wikis_dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(hex) = name.strip_suffix(".git")
                && let Ok(id) = WikiId::from_hex(hex)
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Creates a wiki from a verified genesis keyring and first state (empty manifest). Under
    /// the wiki's lock, `before` runs with the keyring before anything is written (an error
    /// stops the creation), and `on_created` with the head once it is durable.
    pub fn create(
        &self,
        keyring: &Keyring,
        state: &WikiState,
        manifest_bytes: &[u8],
        before: impl FnOnce(&Keyring) -> AppResult<()>,
        on_created: impl FnOnce(&Head),
    ) -> AppResult<Arc<Head>> {
        let id = keyring.wiki;
        let handle = self.new_handle(id);
        let _lock = WikiLock::acquire(&handle.lock_path)?;
        if handle.dir.exists() {
            return Err(AppError::ConflictCode {
                code: "conflict",
                message: "a wiki with this id already exists",
            });
        }
        before(keyring)?;
        let tmp = self
            .wikis_dir
            .join(format!(".tmp-{id}-{}", unique_suffix()));
        let result = (|| -> AppResult<Oid> {
            let mut opts = RepositoryInitOptions::new();
            opts.bare(true).initial_head("main");
            let repo = Repository::init_opts(&tmp, &opts)?;
            {
                let mut cfg = repo.config()?;
                // http-backend would accept authenticated pushes: pushes go through the API only.
                cfg.set_bool("http.receivepack", false)?;
                cfg.set_bool("core.logAllRefUpdates", false)?;
            }
            let empty = repo.find_tree(repo.treebuilder(None)?.write()?)?;
            let mut upd = TreeUpdateBuilder::new();
            upd.upsert(
                keyring_path(keyring.seq),
                repo.blob(keyring.as_bytes())?,
                FileMode::Blob,
            );
            upd.upsert("state", repo.blob(state.as_bytes())?, FileMode::Blob);
            upd.upsert("manifest", repo.blob(manifest_bytes)?, FileMode::Blob);
            let tree = repo.find_tree(upd.create_updated(&repo, &empty)?)?;
            let sig = signature(now_unix())?;
            let commit = repo.commit(
                None,
                &sig,
                &sig,
                &format!("zkwiki state {}", state.seq),
                &tree,
                &[],
            )?;
            repo.reference(MAIN, commit, false, "zkwiki create")?;
            std::fs::write(tmp.join(JOURNAL), format!("{commit} {commit}\n"))?;
            Ok(commit)
        })();
        let commit = match result {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        self.sync.barrier()?;
        std::fs::rename(&tmp, &handle.dir)?;
        self.sync.barrier()?;
        self.forget(&id);
        let wiki = self.wiki(id)?;
        wiki.mark_durable(commit);
        let head = wiki.head_locked()?;
        // Still under the lock: derived indexes follow commit order.
        on_created(&head);
        Ok(head)
    }

    /// Deletes a wiki after `authorize` accepted its current head (under the wiki's lock).
    pub fn delete(
        &self,
        id: WikiId,
        authorize: impl FnOnce(&Head) -> AppResult<()>,
    ) -> AppResult<()> {
        let wiki = self.wiki(id)?;
        let _inproc = wiki
            .writer
            .lock()
            .map_err(|_| AppError::internal("writer lock poisoned"))?;
        let _lock = WikiLock::acquire(&wiki.lock_path)?;
        let head = wiki.head_locked()?;
        authorize(&head)?;
        let trash = self
            .wikis_dir
            .join(format!(".deleted-{id}-{}", unique_suffix()));
        std::fs::rename(&wiki.dir, &trash)?;
        self.sync.barrier()?;
        self.forget(&id);
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(wiki = %id, error = %e, "could not remove a deleted wiki's files");
        }
        Ok(())
    }

    /// The bare repository of a wiki.
    pub fn repo_path(&self, id: &WikiId) -> PathBuf {
        self.repo_dir(id)
    }

    /// The newest commit of a wiki that is complete on disk, read under the wiki's lock so no
    /// commit is half-way (a writer holds the lock until its commit is durable): the ref's commit,
    /// or, if a crash left the ref ahead of its objects, the newest complete commit the journal
    /// names (where the next start-up's repair will move the ref). Changes nothing; for backups,
    /// possibly from another process than the server's.
    pub fn committed_head(&self, id: WikiId) -> AppResult<Oid> {
        let dir = self.repo_dir(&id);
        if !dir.is_dir() {
            return Err(AppError::NotFound(NOT_FOUND));
        }
        let _lock = WikiLock::acquire(&self.locks_dir.join(format!("{id}.lock")))?;
        let repo = Repository::open_bare(&dir).map_err(|e| {
            if e.code() == git2::ErrorCode::NotFound {
                AppError::NotFound(NOT_FOUND)
            } else {
                e.into()
            }
        })?;
        let mut candidates: Vec<Oid> = repo.refname_to_id(MAIN).ok().into_iter().collect();
        candidates.extend(journal_candidates(&dir));
        for c in candidates {
            if commit_complete(&repo, c)? {
                return Ok(c);
            }
        }
        Err(AppError::internal(format_args!(
            "wiki {id}: no complete commit in the ref or the journal"
        )))
    }

    /// Removes leftovers of interrupted deletions, and of creations interrupted over an hour ago
    /// (a younger one may belong to another server process at work) (start-up).
    pub fn clean_trash(&self) {
        let Ok(entries) = std::fs::read_dir(&self.wikis_dir) else {
            return;
        };
        let hour = std::time::Duration::from_secs(3600);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale_tmp = name.starts_with(".tmp-")
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > hour);
            if name.starts_with(".deleted-") || stale_tmp {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Wiki {
    /// A fresh repository handle (not from the pool: checks after a crash must not see objects
    /// an older handle cached).
    fn open_repo(&self) -> AppResult<Repository> {
        Repository::open_bare(&self.dir).map_err(|e| {
            if e.code() == git2::ErrorCode::NotFound {
                AppError::NotFound(NOT_FOUND)
            } else {
                e.into()
            }
        })
    }

    fn with_repo<R>(&self, f: impl FnOnce(&Repository) -> AppResult<R>) -> AppResult<R> {
        let pooled = self.repos.lock().ok().and_then(|mut p| p.pop());
        let repo = match pooled {
            Some(r) => r,
            None => self.open_repo()?,
        };
        let out = f(&repo);
        if let Ok(mut p) = self.repos.lock()
            && p.len() < 8
        {
            p.push(repo);
        }
        out
    }

    /// The commit `refs/heads/main` names now (read from disk every time).
    fn head_oid(&self) -> AppResult<Oid> {
        match std::fs::read(self.dir.join("refs/heads/main")) {
            Ok(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|_| stored("ref"))?;
                Oid::from_str(text.trim()).map_err(|_| stored("ref"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.dir.is_dir() {
                    return Err(AppError::NotFound(NOT_FOUND));
                }
                // Packed refs (an operator ran `git gc`): ask libgit2.
                self.with_repo(|repo| Ok(repo.refname_to_id(MAIN)?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drops cached repository handles and the parsed head (after objects or the ref changed
    /// behind their back).
    fn forget_cached(&self) {
        if let Ok(mut p) = self.repos.lock() {
            p.clear();
        }
        if let Ok(mut h) = self.head.write() {
            *h = None;
        }
    }

    fn mark_durable(&self, oid: Oid) {
        if let Ok(mut d) = self.durable.lock() {
            *d = Some(oid);
        }
    }

    fn is_durable(&self, oid: Oid) -> bool {
        self.durable.lock().is_ok_and(|d| *d == Some(oid))
    }

    /// The current head (cached while the ref does not move). The first call in a process checks
    /// the head is complete on disk and repairs it if a crash left it incomplete.
    pub fn head(&self) -> AppResult<Arc<Head>> {
        self.ensure_sound(false)?;
        self.read_head()
    }

    /// [`Wiki::head`] for a caller that holds the wiki's lock.
    fn head_locked(&self) -> AppResult<Arc<Head>> {
        self.ensure_sound(true)?;
        self.read_head()
    }

    /// Once per process: the head's objects read back and no object newer than the ref is torn;
    /// otherwise [`Wiki::repair`] under the lock (taken here unless `held`).
    fn ensure_sound(&self, held: bool) -> AppResult<()> {
        if self.sound.load(Ordering::Acquire) {
            return Ok(());
        }
        if !held {
            // Without the lock only look: another process may be writing objects right now.
            if self.check_head()? && !self.objects_newer_than_ref() {
                self.sound.store(true, Ordering::Release);
                return Ok(());
            }
            let _inproc = self
                .writer
                .lock()
                .map_err(|_| AppError::internal("writer lock poisoned"))?;
            let _lock = WikiLock::acquire(&self.lock_path)?;
            return self.ensure_sound_locked();
        }
        self.ensure_sound_locked()
    }

    fn ensure_sound_locked(&self) -> AppResult<()> {
        if self.sound.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.check_head()? {
            // Objects written after the ref last moved belong to commits that never took effect;
            // a crash may have torn them, and `git fsck` would object.
            let since = self.ref_mtime();
            let moved = quarantine::set_aside(&self.dir, &self.dir.join(QUARANTINE), since)?;
            if moved > 0 {
                tracing::warn!(wiki = %self.id, objects = moved, "torn objects of unfinished commits set aside");
                self.sync.barrier()?;
                self.forget_cached();
            }
        } else {
            self.repair()?;
        }
        self.sound.store(true, Ordering::Release);
        Ok(())
    }

    fn ref_mtime(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.dir.join(MAIN))
            .and_then(|m| m.modified())
            .ok()
    }

    fn objects_newer_than_ref(&self) -> bool {
        self.ref_mtime()
            .is_none_or(|since| quarantine::anything_since(&self.dir, since))
    }

    /// Whether the head's commit and every object it adds to its parent read back intact.
    /// `Err` only for a wiki that does not exist.
    fn check_head(&self) -> AppResult<bool> {
        let oid = match self.head_oid() {
            Ok(oid) => oid,
            Err(AppError::NotFound(m)) => return Err(AppError::NotFound(m)),
            Err(_) => return Ok(false),
        };
        let repo = self.open_repo()?;
        commit_complete(&repo, oid)
    }

    /// Crash repair (under the wiki's lock): the ref moves to the first complete commit among the
    /// ref itself and the journal's entries, newest first, the journal restarts from it, and torn
    /// objects are set aside. Nothing acknowledged is lost: an acknowledged commit was flushed
    /// with its journal entry, and every later entry is newer.
    pub fn repair(&self) -> AppResult<Oid> {
        let repo = self.open_repo()?;
        let mut candidates = Vec::new();
        let broken = self.head_oid().ok();
        candidates.extend(broken);
        candidates.extend(journal_candidates(&self.dir));
        let mut seen = HashSet::new();
        let mut good = None;
        for c in candidates {
            if seen.insert(c) && commit_complete(&repo, c)? {
                good = Some(c);
                break;
            }
        }
        let good = good.ok_or_else(|| {
            AppError::internal(format_args!(
                "wiki {}: no complete commit in the ref or the journal; the repository needs an \
                 operator",
                self.id
            ))
        })?;
        // Objects written after `good` was made may be torn (everything older was flushed before
        // `good` was written on top of it); a second of margin for the commit time's rounding.
        let since = repo
            .find_commit(good)
            .ok()
            .and_then(|c| u64::try_from(c.time().seconds() - 1).ok())
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        drop(repo);
        let moved = quarantine::set_aside(&self.dir, &self.dir.join(QUARANTINE), since)?;
        // Both files complete on disk before either name changes.
        let ref_lock = self.dir.join("refs/heads/main.lock");
        std::fs::write(&ref_lock, format!("{good}\n"))?;
        let journal_tmp = self.dir.join(format!("{JOURNAL}.tmp"));
        std::fs::write(&journal_tmp, format!("{good} {good}\n"))?;
        self.sync.barrier()?;
        std::fs::rename(&ref_lock, self.dir.join(MAIN))?;
        std::fs::rename(&journal_tmp, self.dir.join(JOURNAL))?;
        self.sync.barrier()?;
        self.mark_durable(good);
        self.forget_cached();
        if let Ok(mut index) = self.index.lock() {
            *index = HistoryIndex::default();
        }
        tracing::warn!(
            wiki = %self.id,
            from = ?broken,
            to = %good,
            quarantined_objects = moved,
            "repaired after a crash: the ref named a commit whose objects were not all on disk"
        );
        Ok(good)
    }

    /// Starts the journal afresh from `head` (durable) once it is long, or when there is none (a
    /// wiki from before the journal): written aside, flushed, then renamed over, so a crash
    /// leaves the old journal or the new one, both naming `head`.
    fn restart_journal_if_long(&self, head: Oid) -> AppResult<()> {
        let path = self.dir.join(JOURNAL);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() <= JOURNAL_MAX) {
            return Ok(());
        }
        let tmp = self.dir.join(format!("{JOURNAL}.tmp"));
        std::fs::write(&tmp, format!("{head} {head}\n"))?;
        self.sync.barrier()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    fn read_head(&self) -> AppResult<Arc<Head>> {
        let oid = self.head_oid()?;
        let cached = self.head.read().ok().and_then(|h| h.clone());
        if let Some(h) = &cached
            && h.commit == oid
        {
            return Ok(h.clone());
        }
        let head = Arc::new(self.with_repo(|repo| load_head(repo, oid, cached.as_deref()))?);
        if let Ok(mut slot) = self.head.write() {
            *slot = Some(head.clone());
        }
        Ok(head)
    }

    /// A git blob's bytes (from the store's cache when it has them).
    pub fn read_blob(&self, store: &Store, oid: Oid) -> AppResult<Bytes> {
        if let Some(bytes) = store.blobs.get(&oid) {
            return Ok(bytes);
        }
        let bytes =
            Bytes::from(self.with_repo(|repo| Ok(repo.find_blob(oid)?.content().to_vec()))?);
        store.blobs.put(oid, bytes.clone());
        Ok(bytes)
    }

    fn with_index<R>(
        &self,
        head: &Head,
        f: impl FnOnce(&HistoryIndex) -> AppResult<R>,
    ) -> AppResult<R> {
        let mut index = self
            .index
            .lock()
            .map_err(|_| AppError::internal("history index poisoned"))?;
        if index.through != Some(head.commit) {
            self.with_repo(|repo| catch_up(repo, &mut index, head.commit))?;
        }
        f(&index)
    }

    /// The git blob of an envelope ever committed, by its SHA-256.
    pub fn blob_by_hash(&self, head: &Head, hash: &Digest32) -> AppResult<Option<Oid>> {
        self.with_index(head, |index| Ok(index.blobs.get(hash).copied()))
    }

    /// History entries, newest first: those with `seq < before`, touching `page` if given.
    pub fn history(
        &self,
        head: &Head,
        page: Option<PageId>,
        before: Option<u64>,
        limit: usize,
    ) -> AppResult<Vec<HistoryEntry>> {
        self.with_index(head, |index| {
            Ok(index
                .entries
                .iter()
                .rev()
                .filter(|e| before.is_none_or(|b| e.seq < b))
                .filter(|e| {
                    page.is_none_or(|p| {
                        e.removed.contains(&p) || e.changed.iter().any(|(id, _)| *id == p)
                    })
                })
                .take(limit)
                .cloned()
                .collect())
        })
    }

    /// The state and manifest bytes at an earlier sequence.
    pub fn state_at(&self, head: &Head, seq: u64) -> AppResult<Option<(Vec<u8>, Vec<u8>)>> {
        let commit = self.with_index(head, |index| {
            Ok(index
                .entries
                .iter()
                .find(|e| e.seq == seq)
                .map(|e| e.commit))
        })?;
        let Some(commit) = commit else {
            return Ok(None);
        };
        self.with_repo(|repo| {
            let tree = repo.find_commit(commit)?.tree()?;
            let state = tree_blob(repo, &tree, "state")?;
            let manifest = tree_blob(repo, &tree, "manifest")?;
            Ok(Some((state, manifest)))
        })
    }

    /// Rewrites the `identities` branch (`docs/format.md`, "Sealed identities in a clone") to
    /// hold exactly `files` (`members/<name>.json`): one commit when they changed, none when
    /// not. Derived data the server rebuilds from its accounts: written with compare-and-swap
    /// (another process writing the same branch makes this one recompute `files` and try
    /// again), objects flushed before the ref names them.
    pub fn write_identities(
        &self,
        store: &Store,
        files: &dyn Fn() -> AppResult<Vec<(String, Vec<u8>)>>,
    ) -> AppResult<()> {
        for _ in 0..4 {
            let files = files()?;
            let outcome = self.with_repo(|repo| {
                let current = repo.refname_to_id(IDENTITIES).ok();
                let parent = match current {
                    Some(oid) => Some(repo.find_commit(oid)?),
                    None => None,
                };
                let mut members = repo.treebuilder(None)?;
                for (name, bytes) in &files {
                    let file = name.strip_prefix("members/").unwrap_or(name);
                    members.insert(file, repo.blob(bytes)?, i32::from(FileMode::Blob))?;
                }
                let members = members.write()?;
                let mut root = repo.treebuilder(None)?;
                root.insert("members", members, i32::from(FileMode::Tree))?;
                let tree = repo.find_tree(root.write()?)?;
                if parent.as_ref().is_some_and(|p| p.tree_id() == tree.id()) {
                    return Ok(true);
                }
                let sig = signature(now_unix())?;
                let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
                let commit = repo.commit(None, &sig, &sig, "zkwiki identities", &tree, &parents)?;
                store.sync.barrier()?;
                let moved = match current {
                    Some(old) => {
                        repo.reference_matching(IDENTITIES, commit, true, old, "identities")
                    }
                    None => repo.reference(IDENTITIES, commit, false, "identities"),
                };
                match moved {
                    Ok(_) => {
                        store.sync.barrier()?;
                        Ok(true)
                    }
                    Err(e)
                        if matches!(
                            e.code(),
                            git2::ErrorCode::Modified | git2::ErrorCode::Exists
                        ) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(e.into()),
                }
            })?;
            if outcome {
                return Ok(());
            }
        }
        Err(AppError::internal("the identities branch kept changing"))
    }

    /// The states `from ..= to` (at most [`MAX_STATES_BATCH`] and about [`MAX_STATES_BYTES`] of
    /// manifests, oldest first): what a client verifying a trail or walking history asks for in
    /// one request. Stops early at the byte budget; the client asks again for the rest.
    pub fn states_range(
        &self,
        head: &Head,
        from: u64,
        to: u64,
    ) -> AppResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let to = to.min(head.state.seq);
        if from == 0 || from > to {
            return Ok(Vec::new());
        }
        let commits: Vec<Oid> = self.with_index(head, |index| {
            Ok(index
                .entries
                .iter()
                .filter(|e| e.seq >= from && e.seq <= to)
                .take(MAX_STATES_BATCH)
                .map(|e| e.commit)
                .collect())
        })?;
        self.with_repo(|repo| {
            let mut out = Vec::with_capacity(commits.len());
            let mut bytes = 0usize;
            for commit in commits {
                let tree = repo.find_commit(commit)?.tree()?;
                let state = tree_blob(repo, &tree, "state")?;
                let manifest = tree_blob(repo, &tree, "manifest")?;
                bytes += state.len() + manifest.len();
                out.push((state, manifest));
                if bytes >= MAX_STATES_BYTES {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// Verifies `input` against the current head and, if it extends it, writes exactly one
    /// commit, durable before returning. See the module docs for the order of checks.
    /// When the commit adds a keyring version, `before_keyring_change` runs with it once the
    /// commit is accepted and before anything is written (an error refuses the commit), and
    /// `on_keyring_change` with the new head once it is durable; both while the lock is held,
    /// so derived indexes (the membership table) follow commit order.
    pub fn commit(
        &self,
        store: &Store,
        input: CommitInput,
        writer: Writer,
        before_keyring_change: impl FnOnce(&Keyring) -> AppResult<()>,
        on_keyring_change: impl FnOnce(&Head),
    ) -> AppResult<Committed> {
        let _inproc = self
            .writer
            .lock()
            .map_err(|_| AppError::internal("writer lock poisoned"))?;
        let _lock = WikiLock::acquire(&self.lock_path)?;
        let head = self.head_locked()?;

        if let Writer::User(key) = &writer {
            let member = head
                .keyring
                .member_by_signing_key(key)
                .ok_or(AppError::NotFound(NOT_FOUND))?;
            if !member.role.can_write() {
                return Err(AppError::Forbidden(
                    "your role in this wiki's keyring is reader: you cannot write".into(),
                ));
            }
        }

        let next = WikiState::decode(&input.state)?;
        if next.wiki != self.id {
            return Err(AppError::InvalidFormat(
                "the state belongs to another wiki".into(),
            ));
        }
        if next.seq != head.state.seq + 1 || next.prev != head.state.hash() {
            return Err(AppError::Conflict(Some(head.to_json())));
        }
        if let Writer::User(key) = &writer
            && &next.signer != key
        {
            return Err(AppError::Forbidden(
                "a session may only submit states signed with its own key".into(),
            ));
        }
        let accepted = core_crypto::snapshot::check_commit(
            &head.keyring,
            &head.state,
            &head.manifest,
            next,
            &input.manifest,
            input.blobs,
            input.keyring.as_deref(),
        )
        .map_err(|r| match r {
            CommitRefusal::Conflict => AppError::Conflict(Some(head.to_json())),
            CommitRefusal::Invalid(e) => e.into(),
        })?;
        let AcceptedCommit {
            state: next,
            manifest: next_manifest,
            keyring: new_keyring,
            blobs: changed,
            removed,
        } = accepted;
        if let Some(k) = &new_keyring {
            before_keyring_change(k)?;
        }

        let now = now_unix();
        // Build only on a durable parent (see the module docs): a head this process did not
        // flush may be one a killed process wrote and never flushed.
        if !self.is_durable(head.commit) {
            store.sync.barrier()?;
            self.mark_durable(head.commit);
        }
        self.restart_journal_if_long(head.commit)?;
        let (commit, keyring_tree, page_oids) = self.with_repo(|repo| {
            let mut upd = TreeUpdateBuilder::new();
            upd.upsert("state", repo.blob(next.as_bytes())?, FileMode::Blob);
            upd.upsert("manifest", repo.blob(&input.manifest)?, FileMode::Blob);
            if let Some(k) = &new_keyring {
                upd.upsert(
                    keyring_path(k.seq),
                    repo.blob(k.as_bytes())?,
                    FileMode::Blob,
                );
            }
            let mut page_oids = Vec::with_capacity(changed.len());
            for (id, hash, bytes) in &changed {
                let oid = repo.blob(bytes)?;
                upd.upsert(format!("pages/{id}"), oid, FileMode::Blob);
                page_oids.push((*id, *hash, oid));
            }
            let parent = repo.find_commit(head.commit)?;
            let base = parent.tree()?;
            if next_manifest.pages.is_empty() {
                if base.get_name("pages").is_some() {
                    upd.remove("pages");
                }
            } else {
                for id in &removed {
                    upd.remove(format!("pages/{id}"));
                }
            }
            let tree = repo.find_tree(upd.create_updated(repo, &base)?)?;
            let keyring_tree = tree.get_name("keyring").ok_or_else(|| stored("tree"))?.id();
            let sig = signature(now)?;
            let commit = repo.commit(
                None,
                &sig,
                &sig,
                &format!("zkwiki state {}", next.seq),
                &tree,
                &[&parent],
            )?;
            // The objects and the journal entry before the ref that names them (for readers in
            // other processes, and for repair); one flush below makes all three durable.
            journal_append(&self.dir, head.commit, commit)?;
            let stale = self.dir.join("refs/heads/main.lock");
            if stale.exists() {
                // Only lock holders write the ref: a lock file now was left by a killed writer.
                std::fs::remove_file(&stale)?;
            }
            repo.reference_matching(MAIN, commit, true, head.commit, "zkwiki commit")
                .map_err(|e| {
                    if e.code() == git2::ErrorCode::Modified {
                        AppError::Conflict(None)
                    } else {
                        e.into()
                    }
                })?;
            store.sync.barrier()?;
            Ok((commit, keyring_tree, page_oids))
        })?;
        self.mark_durable(commit);

        let keyring_changed = new_keyring.is_some();
        let mut pages = head.pages.clone();
        for (id, _, oid) in &page_oids {
            pages.insert(*id, *oid);
        }
        for id in &removed {
            pages.remove(id);
        }
        let (keyrings, keyring) = match new_keyring {
            Some(k) => {
                let mut all = (*head.keyrings).clone();
                all.push(k.as_bytes().to_vec());
                (Arc::new(all), Arc::new(k))
            }
            None => (head.keyrings.clone(), head.keyring.clone()),
        };
        let seq = next.seq;
        let entry = HistoryEntry {
            seq,
            commit,
            signer: next.signer,
            time: now,
            changed: page_oids.iter().map(|(id, hash, _)| (*id, *hash)).collect(),
            removed,
            keyring_changed,
        };
        let new_head = Arc::new(Head {
            commit,
            state: next,
            manifest: next_manifest,
            manifest_bytes: input.manifest,
            keyrings,
            keyring,
            keyring_tree,
            pages,
        });
        if let Ok(mut index) = self.index.lock()
            && index.through == Some(head.commit)
        {
            for (_, hash, oid) in &page_oids {
                index.blobs.insert(*hash, *oid);
            }
            index.entries.push(entry);
            index.through = Some(commit);
        }
        if let Ok(mut slot) = self.head.write() {
            *slot = Some(new_head.clone());
        }
        if keyring_changed {
            on_keyring_change(&new_head);
        }
        Ok(Committed {
            seq,
            commit,
            head: new_head,
            keyring_changed,
        })
    }
}

fn journal_append(dir: &Path, old: Oid, new: Oid) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(JOURNAL))?;
    f.write_all(format!("{old} {new}\n").as_bytes())
}

/// Commits the journal names, newest first (each entry's new head, then its old one). A line a
/// crash tore does not parse and is skipped.
fn journal_candidates(dir: &Path) -> Vec<Oid> {
    let Ok(text) = std::fs::read(dir.join(JOURNAL)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n').rev() {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let mut parts = line.split(' ');
        if let (Some(old), Some(new), None) = (parts.next(), parts.next(), parts.next())
            && old.len() == 40
            && new.len() == 40
            && let (Ok(old), Ok(new)) = (Oid::from_str(old), Oid::from_str(new))
        {
            out.push(new);
            out.push(old);
        }
    }
    out
}

/// Whether a commit, its tree, and every tree and blob it adds to its parent's read back intact
/// (libgit2 verifies each object's hash as it reads it). Missing or corrupt objects are `false`;
/// any other failure (an I/O error, say) is an error, so that a flaky disk never makes the repair
/// roll back a commit that is in fact complete.
fn commit_complete(repo: &Repository, oid: Oid) -> AppResult<bool> {
    match read_added(repo, oid) {
        Ok(()) => Ok(true),
        Err(e) if quarantine::is_damage(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn read_added(repo: &Repository, oid: Oid) -> Result<(), git2::Error> {
    let commit = repo.find_commit(oid)?;
    let tree = commit.tree()?;
    let parent = match commit.parent_id(0) {
        Ok(p) => Some(repo.find_commit(p)?.tree()?),
        Err(_) => None,
    };
    let mut added = Vec::new();
    added_objects(repo, &tree, parent.as_ref(), &mut added)?;
    let odb = repo.odb()?;
    for oid in added {
        odb.read(oid)?;
    }
    Ok(())
}

/// Pushes onto `out` every tree and blob under `tree` that `old` (the same path in the parent
/// commit) does not have: what a commit adds. Reads the trees on the way, not the blobs.
fn added_objects(
    repo: &Repository,
    tree: &Tree<'_>,
    old: Option<&Tree<'_>>,
    out: &mut Vec<Oid>,
) -> Result<(), git2::Error> {
    for entry in tree.iter() {
        let before = old.and_then(|t| entry.name().ok().and_then(|n| t.get_name(n)));
        if before.as_ref().is_some_and(|b| b.id() == entry.id()) {
            continue;
        }
        out.push(entry.id());
        if entry.kind() == Some(ObjectType::Tree) {
            let sub = repo.find_tree(entry.id())?;
            let old_sub = match before {
                Some(b) if b.kind() == Some(ObjectType::Tree) => Some(repo.find_tree(b.id())?),
                _ => None,
            };
            added_objects(repo, &sub, old_sub.as_ref(), out)?;
        }
    }
    Ok(())
}

fn tree_blob(repo: &Repository, tree: &git2::Tree<'_>, name: &str) -> AppResult<Vec<u8>> {
    let entry = tree.get_name(name).ok_or_else(|| stored(name))?;
    Ok(repo.find_blob(entry.id())?.content().to_vec())
}

fn load_head(repo: &Repository, oid: Oid, prev: Option<&Head>) -> AppResult<Head> {
    let tree = repo.find_commit(oid)?.tree()?;
    let state_bytes = tree_blob(repo, &tree, "state")?;
    let manifest_bytes = tree_blob(repo, &tree, "manifest")?;
    let keyring_tree = tree.get_name("keyring").ok_or_else(|| stored("tree"))?.id();
    let (keyrings, keyring) = match prev {
        Some(p) if p.keyring_tree == keyring_tree => (p.keyrings.clone(), p.keyring.clone()),
        _ => {
            let kt = repo.find_tree(keyring_tree)?;
            let mut all = Vec::with_capacity(kt.len());
            for entry in kt.iter() {
                all.push(repo.find_blob(entry.id())?.content().to_vec());
            }
            let latest = all.last().ok_or_else(|| stored("keyring"))?;
            let keyring = Keyring::decode(latest).map_err(|_| stored("keyring"))?;
            (Arc::new(all), Arc::new(keyring))
        }
    };
    let mut pages = HashMap::new();
    if let Some(entry) = tree.get_name("pages") {
        for e in repo.find_tree(entry.id())?.iter() {
            let name = e.name().map_err(|_| stored("page name"))?;
            let id = PageId::from_hex(name).map_err(|_| stored("page name"))?;
            pages.insert(id, e.id());
        }
    }
    Ok(Head {
        commit: oid,
        state: WikiState::decode(&state_bytes).map_err(|_| stored("state"))?,
        manifest: Manifest::decode(&manifest_bytes).map_err(|_| stored("manifest"))?,
        manifest_bytes,
        keyrings,
        keyring,
        keyring_tree,
        pages,
    })
}

fn catch_up(repo: &Repository, index: &mut HistoryIndex, head: Oid) -> AppResult<()> {
    let mut chain = Vec::new();
    let mut cursor = Some(head);
    while let Some(oid) = cursor {
        if Some(oid) == index.through {
            break;
        }
        chain.push(oid);
        cursor = repo.find_commit(oid)?.parent_id(0).ok();
    }
    if cursor.is_none() {
        // Walked to the root without meeting what we had indexed: start over.
        *index = HistoryIndex::default();
    }
    for oid in chain.into_iter().rev() {
        index_commit(repo, index, oid)?;
        index.through = Some(oid);
    }
    Ok(())
}

fn index_commit(repo: &Repository, index: &mut HistoryIndex, oid: Oid) -> AppResult<()> {
    let commit = repo.find_commit(oid)?;
    let tree = commit.tree()?;
    let parent_tree = match commit.parent(0) {
        Ok(p) => Some(p.tree()?),
        Err(_) => None,
    };
    let state =
        WikiState::decode(&tree_blob(repo, &tree, "state")?).map_err(|_| stored("state"))?;
    let id_of = |t: &git2::Tree<'_>, name: &str| t.get_name(name).map(|e| e.id());
    let keyring_changed = match &parent_tree {
        Some(pt) => id_of(pt, "keyring") != id_of(&tree, "keyring"),
        None => true,
    };
    let old_pages = match &parent_tree {
        Some(pt) => id_of(pt, "pages"),
        None => None,
    };
    let new_pages = id_of(&tree, "pages");
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    if old_pages != new_pages {
        let listing = |t: Option<Oid>| -> AppResult<Vec<(PageId, Oid)>> {
            let Some(t) = t else { return Ok(Vec::new()) };
            repo.find_tree(t)?
                .iter()
                .map(|e| {
                    let id = e
                        .name()
                        .ok()
                        .and_then(|n| PageId::from_hex(n).ok())
                        .ok_or_else(|| stored("page name"))?;
                    Ok((id, e.id()))
                })
                .collect()
        };
        let old: HashMap<PageId, Oid> = listing(old_pages)?.into_iter().collect();
        let new = listing(new_pages)?;
        let new_ids: HashSet<PageId> = new.iter().map(|(id, _)| *id).collect();
        for (id, blob) in new {
            if old.get(&id) != Some(&blob) {
                let hash = Digest32::of(repo.find_blob(blob)?.content());
                index.blobs.insert(hash, blob);
                changed.push((id, hash));
            }
        }
        let mut gone: Vec<PageId> = old
            .keys()
            .filter(|id| !new_ids.contains(id))
            .copied()
            .collect();
        gone.sort();
        removed = gone;
    }
    index.entries.push(HistoryEntry {
        seq: state.seq,
        commit: oid,
        signer: state.signer,
        time: commit.time().seconds(),
        changed,
        removed,
        keyring_changed,
    });
    Ok(())
}
