//! The per-wiki [`SeenRecord`]: the highest keyring and state this machine has accepted, kept
//! across runs so a server (or a copied clone) that later offers something older is caught as a
//! rollback, and a different version at the same sequence as a fork.

use std::path::{Path, PathBuf};

use core_crypto::ids::{Digest32, WikiId};
use core_crypto::keyring::Seen;
use core_crypto::snapshot::SeenRecord;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Context, Result};
use crate::fsutil;

#[derive(Serialize, Deserialize, Default)]
struct SeenJson {
    keyring: Option<SeenEntry>,
    state: Option<SeenEntry>,
}

#[derive(Serialize, Deserialize)]
struct SeenEntry {
    seq: u64,
    hash: String,
}

fn to_entry(s: Option<Seen>) -> Option<SeenEntry> {
    s.map(|s| SeenEntry {
        seq: s.seq,
        hash: s.hash.to_hex(),
    })
}

fn from_entry(e: Option<SeenEntry>) -> Result<Option<Seen>> {
    e.map(|e| {
        Ok(Seen {
            seq: e.seq,
            hash: Digest32::from_hex(&e.hash)
                .map_err(|_| CliError::general("a seen record holds a malformed hash"))?,
        })
    })
    .transpose()
}

/// The higher of two records, per sequence (`b` wins a tie).
pub fn newest(a: &SeenRecord, b: &SeenRecord) -> SeenRecord {
    let pick = |a: Option<Seen>, b: Option<Seen>| match (a, b) {
        (Some(a), Some(b)) => Some(if b.seq >= a.seq { b } else { a }),
        (a, b) => b.or(a),
    };
    SeenRecord {
        keyring: pick(a.keyring, b.keyring),
        state: pick(a.state, b.state),
    }
}

/// Where seen records live: `DATA/wikis/<id>/seen.json`.
#[derive(Clone, Debug)]
pub struct SeenStore {
    data_dir: PathBuf,
}

impl SeenStore {
    /// The store in a data dir.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
        }
    }

    fn file(&self, wiki: &WikiId) -> PathBuf {
        self.data_dir
            .join("wikis")
            .join(wiki.to_hex())
            .join("seen.json")
    }

    /// The record for a wiki (empty if never seen).
    pub fn load(&self, wiki: &WikiId) -> Result<SeenRecord> {
        let file = self.file(wiki);
        let json: SeenJson = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| CliError::general(format!("{} is not valid: {e}", file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SeenJson::default(),
            Err(e) => return Err(CliError::io(file.display(), e)),
        };
        Ok(SeenRecord {
            keyring: from_entry(json.keyring)?,
            state: from_entry(json.state)?,
        })
    }

    /// Records a newly accepted snapshot; never moves a sequence backwards.
    pub fn store(&self, wiki: &WikiId, record: &SeenRecord) -> Result<()> {
        let merged = newest(&self.load(wiki)?, record);
        let merged = SeenJson {
            keyring: to_entry(merged.keyring),
            state: to_entry(merged.state),
        };
        let bytes = serde_json::to_vec_pretty(&merged)
            .map_err(|e| CliError::general(format!("encoding seen record: {e}")))?;
        fsutil::write_atomic(&self.file(wiki), &bytes, false).context("saving the seen record")
    }

    /// Forgets a wiki (after deleting it).
    pub fn forget(&self, wiki: &WikiId) -> Result<()> {
        let dir = self.data_dir.join("wikis").join(wiki.to_hex());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CliError::io(dir.display(), e)),
        }
    }
}
