//! `zkwiki-server backup DIR` and `zkwiki-server restore DIR`: a consistent copy of a data
//! directory while the server runs, and a fresh data directory from such a copy.
//!
//! A backup holds, in `DIR`:
//!
//! - `wikis/<wiki>.git`: each wiki as a bare repository at its newest *committed* head (read under
//!   the wiki's lock, so never a commit half-way; see [`Store::committed_head`]), with every
//!   object reachable from it in one pack. Writes after that moment are not in the backup, and
//!   nothing of them is either;
//! - `zkwiki.sqlite3`: the database, copied with SQLite's online backup API in one step (a
//!   consistent snapshot even while the server writes), taken *after* the repositories, so every
//!   account a keyring names is there (accounts are never deleted);
//! - `server-secret` (mode 0600): without it, fake login parameters for unknown names would change
//!   and device tokens would stop counting;
//! - `zkwiki-backup.json`: format version, time, server and schema versions, and each wiki's head
//!   commit and state sequence.
//!
//! The copy is built in a hidden sibling directory, flushed, and renamed to `DIR` only when
//! complete, so a `DIR` that exists is a whole backup. Everything in it is ciphertext or hashes,
//! like the data directory itself, except `server-secret`: keep backups as private as the data.
//!
//! `restore` checks a backup before using it (the database's integrity check, each repository's
//! head against the manifest, every object of every commit read back, which verifies its hash)
//! and only then copies it into a new data directory, again through a hidden sibling and a
//! rename. It refuses a data directory that is not empty.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use core_crypto::ids::WikiId;
use core_crypto::state::WikiState;
use git2::{ObjectType, Oid, Repository, RepositoryInitOptions};
use serde::{Deserialize, Serialize};

use crate::db::{Db, SCHEMA_VERSION, now_unix};
use crate::error::AppError;
use crate::repo::Store;

/// Version of the backup layout this build writes and reads.
pub const BACKUP_FORMAT: u32 = 1;
/// The backup's manifest file.
pub const MANIFEST: &str = "zkwiki-backup.json";
const DB_FILE: &str = crate::db::SQLITE_FILE;
const SECRET_FILE: &str = "server-secret";
const MAIN: &str = "refs/heads/main";
const JOURNAL: &str = "zkwiki-journal";

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination of a backup exists and is not empty.
    #[error("{0} already exists and is not empty: back up into a new directory")]
    DestinationExists(PathBuf),
    /// The source is not a data directory.
    #[error("{0} is not a zkwiki data directory (it has no zkwiki.sqlite3)")]
    NotADataDir(PathBuf),
    /// The directory to restore from is not a usable backup.
    #[error("{0} is not a usable zkwiki backup: {1}")]
    NotABackup(PathBuf, String),
    /// A newer build made the backup.
    #[error(
        "the backup has format {0}; this zkwiki-server reads format {BACKUP_FORMAT}: restore it \
         with the newer server"
    )]
    NewerFormat(u32),
    /// The data directory to restore into is not empty.
    #[error("{0} is not empty: restore into a new data directory")]
    DataDirNotEmpty(PathBuf),
    /// One wiki could not be copied or does not verify.
    #[error("wiki {wiki}: {message}")]
    Wiki {
        /// The wiki id.
        wiki: String,
        /// What is wrong.
        message: String,
    },
    /// The database could not be copied or does not verify.
    #[error("database: {0}")]
    Database(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

fn wiki_err(wiki: &str, e: impl std::fmt::Display) -> BackupError {
    BackupError::Wiki {
        wiki: wiki.to_owned(),
        message: e.to_string(),
    }
}

/// What a backup holds (`zkwiki-backup.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`].
    pub format: u32,
    /// When the backup was made, Unix seconds.
    pub created_at: i64,
    /// The server version that made it.
    pub server_version: String,
    /// The database's schema version.
    pub schema_version: i64,
    /// Every wiki, by id.
    pub wikis: Vec<WikiEntry>,
}

/// One wiki in a backup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WikiEntry {
    /// Wiki id (hex).
    pub wiki: String,
    /// The head commit copied.
    pub head: String,
    /// The state sequence at that commit.
    pub seq: u64,
}

fn is_empty_dir(path: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// A hidden sibling of `target` to build in, emptied first.
fn staging(target: &Path, what: &str) -> Result<PathBuf, BackupError> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zkwiki".into());
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    let dir = parent.join(format!(".{name}.{what}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(format!("clearing {}", dir.display())))?;
    }
    std::fs::create_dir_all(dir.join("wikis"))
        .map_err(io(format!("creating {}", dir.display())))?;
    Ok(dir)
}

/// Flushes everything under `staged`, renames it to `target` (an empty directory there is
/// replaced) and flushes the parent, so `target` appears whole or not at all.
fn publish(staged: &Path, target: &Path) -> Result<(), BackupError> {
    let dir = std::fs::File::open(staged).map_err(io("opening the staged copy"))?;
    rustix::fs::syncfs(&dir).map_err(|e| io("flushing the staged copy")(e.into()))?;
    if target.is_dir() {
        std::fs::remove_dir(target).map_err(io(format!("replacing {}", target.display())))?;
    }
    std::fs::rename(staged, target).map_err(io(format!("renaming to {}", target.display())))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(io(format!("flushing {}", parent.display())))?;
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(io(format!("writing {}", path.display())))
}

/// The state sequence at `head` (the `state` blob of its tree).
fn seq_at(repo: &Repository, head: Oid) -> Result<u64, String> {
    let tree = repo
        .find_commit(head)
        .and_then(|c| c.tree())
        .map_err(|e| e.to_string())?;
    let entry = tree.get_name("state").ok_or("the head has no state")?;
    let blob = repo.find_blob(entry.id()).map_err(|e| e.to_string())?;
    WikiState::decode(blob.content())
        .map(|s| s.seq)
        .map_err(|e| e.to_string())
}

/// Copies every object reachable from `head` in `src` into a new bare repository at `dst` (one
/// pack), with `main` at `head` and a journal naming it.
fn copy_repo(src: &Path, dst: &Path, head: Oid) -> Result<(), git2::Error> {
    let src = Repository::open_bare(src)?;
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).initial_head("main");
    let out = Repository::init_opts(dst, &opts)?;
    {
        let mut cfg = out.config()?;
        cfg.set_bool("http.receivepack", false)?;
        cfg.set_bool("core.logAllRefUpdates", false)?;
    }
    let mut walk = src.revwalk()?;
    walk.push(head)?;
    let mut pack = src.packbuilder()?;
    pack.insert_walk(&mut walk)?;
    let odb = out.odb()?;
    let mut writer = odb.packwriter()?;
    let mut failed = None;
    pack.foreach(|chunk| match writer.write_all(chunk) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(git2::Error::from_str(&format!("writing the pack: {e}")));
    }
    writer.commit()?;
    out.reference(MAIN, head, true, "zkwiki backup")?;
    std::fs::write(dst.join(JOURNAL), format!("{head} {head}\n"))
        .map_err(|e| git2::Error::from_str(&format!("writing the journal: {e}")))?;
    Ok(())
}

/// Reads back every commit reachable from `head`, and every tree and blob of each (libgit2
/// checks each object's hash as it reads it). Returns the number of commits.
pub fn verify_repo(dir: &Path, head: Oid) -> Result<usize, git2::Error> {
    let repo = Repository::open_bare(dir)?;
    let at = repo.refname_to_id(MAIN)?;
    if at != head {
        return Err(git2::Error::from_str(&format!(
            "main is at {at}, the manifest says {head}"
        )));
    }
    let odb = repo.odb()?;
    let mut seen = std::collections::HashSet::new();
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    let mut commits = 0;
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        commits += 1;
        let mut trees = vec![commit.tree_id()];
        while let Some(t) = trees.pop() {
            if !seen.insert(t) {
                continue;
            }
            let tree = repo.find_tree(t)?;
            for entry in tree.iter() {
                match entry.kind() {
                    Some(ObjectType::Tree) => trees.push(entry.id()),
                    _ => {
                        if seen.insert(entry.id()) {
                            odb.read(entry.id())?;
                        }
                    }
                }
            }
        }
    }
    Ok(commits)
}

/// Copies the database with SQLite's online backup API in one step: a snapshot consistent even
/// while another process writes. Retries while the source is locked.
fn copy_database(src: &Path, dst: &Path) -> Result<i64, BackupError> {
    use rusqlite::backup::{Backup, StepResult};
    let db = |e: rusqlite::Error| BackupError::Database(e.to_string());
    let source = rusqlite::Connection::open(src).map_err(db)?;
    source.busy_timeout(Duration::from_secs(10)).map_err(db)?;
    let mut dest = rusqlite::Connection::open(dst).map_err(db)?;
    {
        let backup = Backup::new(&source, &mut dest).map_err(db)?;
        let mut tries = 0;
        loop {
            match backup.step(-1).map_err(db)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    return Err(BackupError::Database(
                        "the database stayed locked for 10 s".into(),
                    ));
                }
            }
        }
    }
    let ok: String = dest
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(db)?;
    if ok != "ok" {
        return Err(BackupError::Database(format!(
            "the copy fails its check: {ok}"
        )));
    }
    dest.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)
}

/// Backs up the data directory `data` (the server may be running on it) into `dest`, which
/// must not exist or be empty.
pub fn backup(data: &Path, dest: &Path) -> Result<Manifest, BackupError> {
    if !data.join(DB_FILE).is_file() {
        return Err(BackupError::NotADataDir(data.to_owned()));
    }
    if !is_empty_dir(dest)? {
        return Err(BackupError::DestinationExists(dest.to_owned()));
    }
    let staged = staging(dest, "partial")?;
    let result = (|| {
        let store = Store::open(data.join("wikis"), data.join("locks"), false)
            .map_err(|e| BackupError::Database(e.to_string()))?;
        let mut ids = store
            .list_ids()
            .map_err(|e| io("listing the wikis")(std::io::Error::other(e.to_string())))?;
        ids.sort_by_key(WikiId::to_hex);
        let mut wikis = Vec::new();
        for id in ids {
            let hex = id.to_hex();
            let head = match store.committed_head(id) {
                Ok(h) => h,
                // Deleted while we were at it.
                Err(AppError::NotFound(_)) => continue,
                Err(e) => return Err(wiki_err(&hex, e)),
            };
            let dst = staged.join("wikis").join(format!("{hex}.git"));
            copy_repo(&store.repo_path(&id), &dst, head).map_err(|e| wiki_err(&hex, e))?;
            verify_repo(&dst, head).map_err(|e| wiki_err(&hex, e))?;
            let repo = Repository::open_bare(&dst).map_err(|e| wiki_err(&hex, e))?;
            let seq = seq_at(&repo, head).map_err(|e| wiki_err(&hex, e))?;
            wikis.push(WikiEntry {
                wiki: hex,
                head: head.to_string(),
                seq,
            });
        }
        let schema_version = copy_database(&data.join(DB_FILE), &staged.join(DB_FILE))?;
        let secret = std::fs::read(data.join(SECRET_FILE)).map_err(io("reading server-secret"))?;
        write_private(&staged.join(SECRET_FILE), &secret)?;
        let manifest = Manifest {
            format: BACKUP_FORMAT,
            created_at: now_unix(),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            schema_version,
            wikis,
        };
        let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        std::fs::write(staged.join(MANIFEST), text).map_err(io("writing the manifest"))?;
        publish(&staged, dest)?;
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    result
}

/// Reads and checks a backup's manifest, database and repositories.
pub fn check(from: &Path) -> Result<Manifest, BackupError> {
    let not = |why: &str| BackupError::NotABackup(from.to_owned(), why.to_owned());
    let text = std::fs::read(from.join(MANIFEST)).map_err(|_| not("no zkwiki-backup.json"))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| not(&format!("zkwiki-backup.json: {e}")))?;
    if manifest.format > BACKUP_FORMAT {
        return Err(BackupError::NewerFormat(manifest.format));
    }
    if !from.join(SECRET_FILE).is_file() {
        return Err(not("no server-secret"));
    }
    let db_path = from.join(DB_FILE);
    let version =
        Db::schema_version_of(&db_path).map_err(|e| BackupError::Database(e.to_string()))?;
    if version > SCHEMA_VERSION {
        return Err(BackupError::Database(format!(
            "schema version {version} is newer than this zkwiki-server knows ({SCHEMA_VERSION})"
        )));
    }
    let conn =
        rusqlite::Connection::open_with_flags(&db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| BackupError::Database(e.to_string()))?;
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| BackupError::Database(e.to_string()))?;
    if ok != "ok" {
        return Err(BackupError::Database(format!("integrity check: {ok}")));
    }
    for w in &manifest.wikis {
        WikiId::from_hex(&w.wiki).map_err(|_| not("a wiki id in the manifest is malformed"))?;
        let head = Oid::from_str(&w.head).map_err(|e| wiki_err(&w.wiki, e))?;
        let dir = from.join("wikis").join(format!("{}.git", w.wiki));
        verify_repo(&dir, head).map_err(|e| wiki_err(&w.wiki, e))?;
        let repo = Repository::open_bare(&dir).map_err(|e| wiki_err(&w.wiki, e))?;
        let seq = seq_at(&repo, head).map_err(|e| wiki_err(&w.wiki, e))?;
        if seq != w.seq {
            return Err(wiki_err(
                &w.wiki,
                format!("state {seq} at the head, the manifest says {}", w.seq),
            ));
        }
    }
    Ok(manifest)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(to).map_err(io(format!("creating {}", to.display())))?;
    for entry in std::fs::read_dir(from).map_err(io(format!("reading {}", from.display())))? {
        let entry = entry.map_err(io(format!("reading {}", from.display())))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(io(format!("reading {}", path.display())))?;
        if kind.is_dir() {
            copy_tree(&path, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &target).map_err(io(format!("copying {}", path.display())))?;
        }
    }
    Ok(())
}

/// Restores the backup in `from` into the data directory `data`, which must not exist or be
/// empty; checks the backup first.
pub fn restore(from: &Path, data: &Path) -> Result<Manifest, BackupError> {
    let manifest = check(from)?;
    if !is_empty_dir(data)? {
        return Err(BackupError::DataDirNotEmpty(data.to_owned()));
    }
    let staged = staging(data, "restoring")?;
    let result = (|| {
        for w in &manifest.wikis {
            let name = format!("{}.git", w.wiki);
            copy_tree(
                &from.join("wikis").join(&name),
                &staged.join("wikis").join(&name),
            )?;
        }
        std::fs::create_dir_all(staged.join("locks")).map_err(io("creating locks/"))?;
        std::fs::copy(from.join(DB_FILE), staged.join(DB_FILE))
            .map_err(io("copying the database"))?;
        let secret = std::fs::read(from.join(SECRET_FILE)).map_err(io("reading server-secret"))?;
        write_private(&staged.join(SECRET_FILE), &secret)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o700))
                .map_err(io("making the data directory private"))?;
        }
        publish(&staged, data)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e);
    }
    Ok(manifest)
}
