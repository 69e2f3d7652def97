//! Where the CLI keeps its files, and the resolved configuration every command runs with.
//!
//! - config dir (`$ZKWIKI_CONFIG_DIR`, else XDG `~/.config/zkwiki`): `config.json`, the profiles
//!   (one per account and server: URL, user name, default wiki, wiki names) and the current one.
//!   Nothing secret.
//! - data dir (`$ZKWIKI_DATA_DIR`, else XDG `~/.local/share/zkwiki`): per profile
//!   `profiles/<user@host>/` with `identity.json` (the sealed identity: useless without the
//!   passphrase), `session.json` (the session token, mode 0600) and the unlock agent's socket;
//!   per wiki `wikis/<id>/` (`crate::store`: seen record, verified head, envelopes, the
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

    /// A profile's folder (its sealed identity, session and unlock-agent socket).
    pub fn profile_dir(&self, profile: &str) -> PathBuf {
        self.data_dir.join("profiles").join(profile)
    }

    /// The per-wiki data folder.
    pub fn wiki_dir(&self, wiki: &core_crypto::ids::WikiId) -> PathBuf {
        self.data_dir.join("wikis").join(wiki.to_hex())
    }
}

/// One account on one server: what `login` or `register` made, and the wiki names used with it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// The server URL.
    pub server: String,
    /// The account name.
    pub user: String,
    /// Wiki used when `--wiki` is not given (a name or an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wiki: Option<String>,
    /// Local names for wiki ids.
    #[serde(default)]
    pub wikis: BTreeMap<String, String>,
}

/// `config.json`: the profiles (account × server) and which one is in use.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigFile {
    /// The profile commands use when `--profile` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Every profile, by name (`user@host[:port]`).
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Before profiles (read once, moved into a profile): the server URL.
    #[serde(default, skip_serializing)]
    server: Option<String>,
    /// Before profiles: the default wiki.
    #[serde(default, skip_serializing)]
    default_wiki: Option<String>,
    /// Before profiles: wiki names.
    #[serde(default, skip_serializing)]
    wikis: BTreeMap<String, String>,
}

/// The name of the profile of `user` on `server`: `user@host[:port]`.
pub fn profile_name(user: &str, server: &str) -> String {
    let host = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or(server);
    format!("{user}@{host}")
}

impl ConfigFile {
    /// Reads the file (missing file: defaults). A file from before profiles becomes one profile,
    /// named after the account whose identity is in `data_dir` (moved into the profile's folder).
    pub fn load(paths: &Paths) -> Result<Self> {
        let file = paths.config_file();
        let mut config: Self = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CliError::general(format!("{} is not valid: {e}", file.display()))
                    .with_hint("fix or delete the file")
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => return Err(CliError::io(file.display(), e)),
        };
        if config.migrate(paths)? {
            config.save(paths)?;
        }
        Ok(config)
    }

    /// Moves a configuration (and identity/session files) from before profiles into a profile.
    fn migrate(&mut self, paths: &Paths) -> Result<bool> {
        let old_identity = paths.data_dir.join("identity.json");
        if self.server.is_none() && self.wikis.is_empty() && !old_identity.exists() {
            return Ok(false);
        }
        #[derive(Deserialize)]
        struct Who {
            server: String,
            user: String,
        }
        let who: Option<Who> = std::fs::read(&old_identity)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let server = who
            .as_ref()
            .map(|w| w.server.clone())
            .or_else(|| self.server.clone())
            .unwrap_or_default();
        let user = who
            .as_ref()
            .map_or_else(|| "default".to_owned(), |w| w.user.clone());
        let name = profile_name(&user, &server);
        let dir = paths.profile_dir(&name);
        crate::fsutil::create_private_dir(&dir).map_err(|e| CliError::io(dir.display(), e))?;
        for f in ["identity.json", "session.json"] {
            let from = paths.data_dir.join(f);
            if from.exists() {
                std::fs::rename(&from, dir.join(f)).map_err(|e| CliError::io(from.display(), e))?;
            }
        }
        let profile = self.profiles.entry(name.clone()).or_default();
        profile.server = server;
        profile.user = user;
        profile.default_wiki = profile.default_wiki.take().or(self.default_wiki.take());
        profile.wikis.append(&mut self.wikis);
        self.server = None;
        if self.profile.is_none() {
            self.profile = Some(name);
        }
        Ok(true)
    }

    /// Writes the file.
    pub fn save(&self, paths: &Paths) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| CliError::general(format!("encoding config: {e}")))?;
        fsutil::write_atomic(&paths.config_file(), &bytes, false)
            .context("saving the configuration")
    }

    /// The profile to use: `explicit` (`--profile`), else the current one, else the only one.
    pub fn resolve_profile(&self, explicit: Option<&str>) -> Result<Option<String>> {
        if let Some(name) = explicit {
            if !self.profiles.contains_key(name) {
                return Err(
                    CliError::new(ErrorKind::Auth, format!("no profile {name:?}"))
                        .with_hint("see `zkwiki auth list`; `zkwiki login` makes one"),
                );
            }
            return Ok(Some(name.to_owned()));
        }
        if let Some(p) = &self.profile
            && self.profiles.contains_key(p)
        {
            return Ok(Some(p.clone()));
        }
        Ok((self.profiles.len() == 1)
            .then(|| self.profiles.keys().next().cloned())
            .flatten())
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

/// Resolves a wiki selector against a profile: a name, a full id, or a unique prefix of an id
/// the profile knows (`known` adds ids the server listed).
pub fn resolve_wiki(
    profile: Option<&Profile>,
    selector: Option<&str>,
    known: &[String],
) -> Result<core_crypto::ids::WikiId> {
    let selector = selector
        .map(str::to_owned)
        .or_else(|| profile.and_then(|p| p.default_wiki.clone()))
        .ok_or_else(|| {
            CliError::usage("no wiki selected")
                .with_hint("pass --wiki NAME (see `zkwiki wiki list`) or create one with `zkwiki wiki create NAME`")
        })?;
    if let Some(id) = profile.and_then(|p| p.wikis.get(&selector)) {
        return core_crypto::ids::WikiId::from_hex(id).map_err(|_| {
            CliError::general(format!("the configured id of {selector:?} is not valid"))
        });
    }
    if let Ok(id) = core_crypto::ids::WikiId::from_hex(&selector) {
        return Ok(id);
    }
    let lower = selector.to_ascii_lowercase();
    let mut ids: Vec<&String> = profile
        .map(|p| p.wikis.values().collect::<Vec<_>>())
        .unwrap_or_default();
    ids.extend(known);
    ids.sort();
    ids.dedup();
    let matches: Vec<&&String> = ids
        .iter()
        .filter(|id| lower.len() >= 4 && id.starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] => core_crypto::ids::WikiId::from_hex(one).map_err(|_| {
            CliError::general(format!("the id {one:?} is not valid"))
        }),
        [] => Err(
            CliError::new(ErrorKind::NotFound, format!("no wiki named {selector:?}"))
                .with_hint("see `zkwiki wiki list` for names and ids (an id prefix of 4 or more characters works too)"),
        ),
        _ => Err(CliError::usage(format!(
            "{selector:?} is the start of {} wiki ids",
            matches.len()
        ))
        .with_hint("give more characters of the id, or the wiki's name")),
    }
}
