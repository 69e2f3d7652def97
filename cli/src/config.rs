//! Where the CLI keeps its files, and the resolved configuration every command runs with.
//!
//! - config dir (`$ZKWIKI_CONFIG_DIR`, else XDG `~/.config/zkwiki`): `config.json`, the server URL,
//!   user name, default wiki and local wiki aliases. Nothing secret.
//! - data dir (`$ZKWIKI_DATA_DIR`, else XDG `~/.local/share/zkwiki`): `identity.json` (the sealed
//!   identity: useless without the passphrase), `session.json` (the session token, mode 0600), and
//!   per wiki `wikis/<id>/seen.json` (rollback/fork memory) and `wikis/<id>/mirror.git` (an
//!   encrypted git mirror). No plaintext is ever stored here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Context, ErrorKind, Result};
use crate::fsutil;

/// The two directories.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Configuration (not secret).
    pub config_dir: PathBuf,
    /// Data: sealed identity, session token, seen records, encrypted mirrors.
    pub data_dir: PathBuf,
}

impl Paths {
    /// From `ZKWIKI_CONFIG_DIR` / `ZKWIKI_DATA_DIR`, else the XDG directories.
    pub fn resolve() -> Result<Self> {
        let env_dir = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let project = directories::ProjectDirs::from("", "", "zkwiki");
        let config_dir = env_dir("ZKWIKI_CONFIG_DIR")
            .or_else(|| project.as_ref().map(|p| p.config_dir().to_path_buf()))
            .ok_or_else(|| {
                CliError::general("cannot find a home directory for the configuration")
                    .with_hint("set ZKWIKI_CONFIG_DIR and ZKWIKI_DATA_DIR")
            })?;
        let data_dir = env_dir("ZKWIKI_DATA_DIR")
            .or_else(|| project.as_ref().map(|p| p.data_dir().to_path_buf()))
            .ok_or_else(|| {
                CliError::general("cannot find a home directory for data")
                    .with_hint("set ZKWIKI_DATA_DIR")
            })?;
        Ok(Self {
            config_dir,
            data_dir,
        })
    }

    /// `config.json`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.json")
    }

    /// The per-wiki data folder.
    pub fn wiki_dir(&self, wiki: &core_crypto::ids::WikiId) -> PathBuf {
        self.data_dir.join("wikis").join(wiki.to_hex())
    }
}

/// `config.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigFile {
    /// Server URL used when `--server` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Wiki used when `--wiki` is not given (an alias or an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wiki: Option<String>,
    /// Local names for wiki ids.
    #[serde(default)]
    pub wikis: BTreeMap<String, String>,
}

impl ConfigFile {
    /// Reads the file (missing file: defaults).
    pub fn load(paths: &Paths) -> Result<Self> {
        let file = paths.config_file();
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CliError::general(format!("{} is not valid: {e}", file.display()))
                    .with_hint("fix or delete the file")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::io(file.display(), e)),
        }
    }

    /// Writes the file.
    pub fn save(&self, paths: &Paths) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| CliError::general(format!("encoding config: {e}")))?;
        fsutil::write_atomic(&paths.config_file(), &bytes, false)
            .context("saving the configuration")
    }
}

/// Normalizes a server URL: scheme required, no trailing slash.
pub fn normalize_server(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err(
            CliError::usage(format!("not a server URL: {url:?}")).with_hint(
                "give the server as http(s)://host[:port], e.g. --server https://wiki.example.org",
            ),
        );
    }
    Ok(url.to_owned())
}

/// Whether a path exists and is a non-empty directory.
pub fn is_nonempty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some())
}

/// Resolves a wiki selector (alias or 32-hex id) against the configuration.
pub fn resolve_wiki(
    config: &ConfigFile,
    selector: Option<&str>,
) -> Result<core_crypto::ids::WikiId> {
    let selector = selector
        .map(str::to_owned)
        .or_else(|| config.default_wiki.clone())
        .ok_or_else(|| {
            CliError::usage("no wiki selected")
                .with_hint("pass --wiki NAME (see `zkwiki wiki list`) or create one with `zkwiki wiki create NAME`")
        })?;
    let id_text = config
        .wikis
        .get(&selector)
        .cloned()
        .unwrap_or(selector.clone());
    core_crypto::ids::WikiId::from_hex(&id_text).map_err(|_| {
        CliError::new(ErrorKind::NotFound, format!("no wiki named {selector:?}"))
            .with_hint("see `zkwiki wiki list` for names and ids")
    })
}
