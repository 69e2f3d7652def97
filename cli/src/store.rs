//! What the CLI keeps per wiki in its data folder (`DATA/wikis/<id>/`), ciphertext and signed
//! data only, never plaintext:
//!
//! - `lock`: taken (`flock`) while a command reads or updates the files below, so commands run
//!   at once in one HOME never see each other's half-written state;
//! - `head.bin`: the last head this machine verified (keyring chain, state, manifest) and its git
//!   commit. A command re-verifies its signatures and trusts it as the current head only when
//!   the server's probe names the same state *and* commit; otherwise it verifies every step from
//!   it to the server's head (the client core's trail);
//! - `blobs/`: envelopes by SHA-256 (each checked against a signed manifest before use);
//! - `seen.json` ([`crate::seen`]) and `mirror.git` (the encrypted git mirror, for history).

use std::fs::File;
use std::path::{Path, PathBuf};

use core_crypto::ids::{Digest32, WikiId};

use crate::error::{CliError, Result};
use crate::fsutil;

const HEAD_MAGIC: &[u8; 5] = b"ZKCH\x01";

/// An exclusive lock on a wiki's local files, released on drop.
pub struct WikiLock {
    _file: File,
}

impl WikiLock {
    /// Waits for the lock of `dir`.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir.display(), e))?;
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::io(path.display(), e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| CliError::io(path.display(), e.into()))?;
        Ok(Self { _file: file })
    }
}

/// A verified head as kept on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedHead {
    /// The git commit of the head on the server.
    pub commit: String,
    /// Keyring versions, genesis first.
    pub chain: Vec<Vec<u8>>,
    /// The state.
    pub state: Vec<u8>,
    /// Its manifest.
    pub manifest: Vec<u8>,
}

impl CachedHead {
    fn encode(&self) -> Vec<u8> {
        let mut out = HEAD_MAGIC.to_vec();
        let mut put = |b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        };
        put(self.commit.as_bytes());
        put(&(self.chain.len() as u32).to_be_bytes());
        for k in &self.chain {
            put(k);
        }
        put(&self.state);
        put(&self.manifest);
        out
    }

    /// Parses a cache file; anything malformed is no cache (the head is then fetched).
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes.strip_prefix(HEAD_MAGIC)?;
        let mut take = || -> Option<Vec<u8>> {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let item = rest.get(4..4 + len)?.to_vec();
            rest = &rest[4 + len..];
            Some(item)
        };
        let commit = String::from_utf8(take()?).ok()?;
        let n = u32::from_be_bytes(take()?.try_into().ok()?) as usize;
        let mut chain = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            chain.push(take()?);
        }
        let state = take()?;
        let manifest = take()?;
        rest.is_empty().then_some(Self {
            commit,
            chain,
            state,
            manifest,
        })
    }

    /// SHA-256 of the state.
    pub fn state_hash(&self) -> Digest32 {
        Digest32::of(&self.state)
    }
}

/// One wiki's folder in the data directory.
#[derive(Clone, Debug)]
pub struct WikiDir {
    dir: PathBuf,
}

impl WikiDir {
    /// `DATA/wikis/<id>`.
    pub fn new(data_dir: &Path, wiki: &WikiId) -> Self {
        Self {
            dir: data_dir.join("wikis").join(wiki.to_hex()),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Takes the wiki's lock.
    pub fn lock(&self) -> Result<WikiLock> {
        WikiLock::acquire(&self.dir)
    }

    /// The encrypted git mirror.
    pub fn mirror(&self) -> PathBuf {
        self.dir.join("mirror.git")
    }

    /// The last verified head (call with the lock held).
    pub fn head(&self) -> Option<CachedHead> {
        let bytes = std::fs::read(self.dir.join("head.bin")).ok()?;
        CachedHead::decode(&bytes)
    }

    /// Keeps `head` unless the kept one is newer (call with the lock held).
    pub fn store_head(&self, head: &CachedHead, seq: u64) -> Result<()> {
        if let Some(old) = self.head()
            && (client::head::state_seq(&old.state).is_ok_and(|s| s > seq)
                || (old.commit == head.commit && old.state == head.state))
        {
            // Newer, or this very head (then unchanged: a 10,000-page manifest is 720 KB to
            // rewrite and fsync on every command).
            return Ok(());
        }
        fsutil::write_atomic(&self.dir.join("head.bin"), &head.encode(), false)
            .map_err(|e| CliError::io("saving the verified head", e))
    }

    /// The wiki's title as last read here (from its encrypted settings), for `wiki list`.
    pub fn title(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("title"))
            .ok()
            .map(|t| t.trim_end_matches('\n').to_owned())
    }

    /// Remembers the title read from the wiki (a cache: failing to write it costs a fetch).
    pub fn store_title(&self, title: &str) {
        if self.title().as_deref() != Some(title) {
            let _ = fsutil::write_atomic(
                &self.dir.join("title"),
                format!("{title}\n").as_bytes(),
                false,
            );
        }
    }

    fn blob_path(&self, hash: &Digest32) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join("blobs").join(&hex[..2]).join(hex)
    }

    /// An envelope kept earlier (the caller checks it against the signed manifest).
    pub fn blob(&self, hash: &Digest32) -> Option<Vec<u8>> {
        std::fs::read(self.blob_path(hash)).ok()
    }

    /// Keeps an envelope that matched its signed manifest entry (a cache: failing to write it
    /// only costs a fetch later).
    pub fn keep_blob(&self, hash: &Digest32, bytes: &[u8]) {
        let path = self.blob_path(hash);
        if !path.exists() {
            let _ = fsutil::write_atomic(&path, bytes, false);
        }
    }

    /// Forgets a kept envelope that no longer matches its hash.
    pub fn drop_blob(&self, hash: &Digest32) {
        let _ = std::fs::remove_file(self.blob_path(hash));
    }

    /// Drops kept envelopes no longer in `live` (old versions), when there are many of them.
    pub fn prune_blobs(&self, live: &std::collections::BTreeSet<Digest32>) {
        let Ok(dirs) = std::fs::read_dir(self.dir.join("blobs")) else {
            return;
        };
        let files: Vec<PathBuf> = dirs
            .filter_map(std::result::Result::ok)
            .filter_map(|d| std::fs::read_dir(d.path()).ok())
            .flatten()
            .filter_map(std::result::Result::ok)
            .map(|e| e.path())
            .collect();
        if files.len() <= 2 * live.len() + 64 {
            return;
        }
        for f in files {
            let keep = f
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| Digest32::from_hex(n).ok())
                .is_some_and(|h| live.contains(&h));
            if !keep {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_heads_round_trip_and_damage_is_no_cache() {
        let h = CachedHead {
            commit: "abc".into(),
            chain: vec![b"k1".to_vec(), b"k2".to_vec()],
            state: b"state".to_vec(),
            manifest: vec![],
        };
        let bytes = h.encode();
        assert_eq!(CachedHead::decode(&bytes), Some(h));
        assert_eq!(CachedHead::decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(CachedHead::decode(&longer), None);
        assert_eq!(CachedHead::decode(b"junk"), None);
    }
}
