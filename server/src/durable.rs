//! Durability barriers and cross-process locks.
//!
//! A commit is acknowledged only after a barrier that follows its objects, its journal entry and
//! its ref move (one barrier: the crash repair in [`crate::repo`] rolls back a ref that got to disk
//! before its objects; that commit was never acknowledged). A barrier is `syncfs(2)` on the data
//! directory's filesystem: one flush for every file the commit touched, instead of one `fsync`
//! per file and directory (each costs milliseconds on a virtual disk). Concurrent committers (different wikis) share barriers: a caller waits for the first
//! `syncfs` that *started* after it arrived, so N writers cost about one flush, not N.
//!
//! [`WikiLock`] is an exclusive `flock(2)` on a per-wiki lock file, held around
//! read-verify-commit. `flock` locks belong to the open file description, so two threads of one
//! process and two processes on one data directory exclude each other alike; the kernel drops the
//! lock when its holder dies, even by `SIGKILL`.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex};

/// Shared `syncfs` barriers over one filesystem.
pub struct SyncGroup {
    dir: Option<File>,
    state: Mutex<SyncState>,
    done: Condvar,
}

#[derive(Default)]
struct SyncState {
    started: u64,
    finished: u64,
    running: bool,
    last_error: Option<(u64, String)>,
}

impl SyncGroup {
    /// Barriers on the filesystem holding `dir`; `enabled = false` makes every barrier a no-op
    /// (benchmarks of the software alone; never for real data).
    pub fn new(dir: &Path, enabled: bool) -> io::Result<Self> {
        let dir = if enabled {
            Some(File::open(dir)?)
        } else {
            None
        };
        Ok(Self {
            dir,
            state: Mutex::new(SyncState::default()),
            done: Condvar::new(),
        })
    }

    /// Whether barriers flush (false only with `--unsafe-no-fsync`).
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// Returns once everything this thread wrote before the call is on stable storage.
    pub fn barrier(&self) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let poisoned = |_| io::Error::other("sync state poisoned");
        let mut s = self.state.lock().map_err(poisoned)?;
        // The first flush that starts after now covers our writes.
        let target = s.started + 1;
        loop {
            if s.finished >= target {
                return match &s.last_error {
                    Some((generation, msg)) if *generation >= target => {
                        Err(io::Error::other(msg.clone()))
                    }
                    _ => Ok(()),
                };
            }
            if !s.running {
                s.running = true;
                s.started += 1;
                let generation = s.started;
                drop(s);
                let result = flush(dir);
                s = self.state.lock().map_err(poisoned)?;
                s.running = false;
                s.finished = generation;
                if let Err(e) = &result {
                    s.last_error = Some((generation, e.to_string()));
                }
                self.done.notify_all();
                continue;
            }
            s = self.done.wait(s).map_err(poisoned)?;
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn flush(dir: &File) -> io::Result<()> {
    rustix::fs::syncfs(dir).map_err(io::Error::from)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn flush(_dir: &File) -> io::Result<()> {
    rustix::fs::sync();
    Ok(())
}

/// Flushes one file and the directory that names it (a lock file, the server secret).
pub fn sync_file_and_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// An exclusive lock on one wiki, across threads and processes; released on drop.
pub struct WikiLock {
    _file: File,
}

impl WikiLock {
    /// Blocks until the lock at `path` is held (creating the file).
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(Self { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
