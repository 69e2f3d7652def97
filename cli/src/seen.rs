//! Where the CLI keeps each wiki's seen record (`DATA/wikis/<id>/seen.json`): the highest
//! keyring and state this machine accepted, so a server (or a copied clone) that later offers
//! something older or forked is caught. The form and the merge rule are `client::seen`'s.

use std::path::{Path, PathBuf};

use core_crypto::ids::WikiId;
use core_crypto::snapshot::SeenRecord;

use crate::error::{CliError, Context, Result};
use crate::fsutil;

/// Where seen records live.
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
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(client::seen::decode(&text)
                .map_err(|e| CliError::from(e).context(file.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SeenRecord::default()),
            Err(e) => Err(CliError::io(file.display(), e)),
        }
    }

    /// Records a newly accepted head; never moves a sequence backwards.
    pub fn store(&self, wiki: &WikiId, record: &SeenRecord) -> Result<()> {
        let kept = self.load(wiki)?;
        let merged = client::seen::merge(&kept, record);
        if merged == kept {
            // Nothing new: every command on an unchanged wiki would otherwise pay an fsync.
            return Ok(());
        }
        fsutil::write_atomic(
            &self.file(wiki),
            client::seen::encode(&merged).as_bytes(),
            false,
        )
        .context("saving the seen record")
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
