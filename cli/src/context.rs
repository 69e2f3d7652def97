//! The resolved configuration a command runs with (raw args + config file + environment), and
//! the accessors commands use: the server, the session, the wiki, the unlocked identity.

use std::path::PathBuf;

use core_crypto::identity::UserIdentity;
use core_crypto::ids::WikiId;

use crate::api::Api;
use crate::args::GlobalArgs;
use crate::config::{self, ConfigFile, Paths, Profile};
use crate::error::{CliError, ErrorKind, Result};
use crate::keystore::{self, Keystore, SecretSource, Session};
use crate::output::Out;
use crate::seen::SeenStore;

/// Everything a command needs to know before it starts.
#[derive(Debug)]
pub struct Ctx {
    /// Config and data folders.
    pub paths: Paths,
    /// `config.json`.
    pub config: ConfigFile,
    /// Output mode.
    pub out: Out,
    /// `--server`.
    pub server_arg: Option<String>,
    /// `--wiki`.
    pub wiki_arg: Option<String>,
    /// `--profile`.
    pub profile_arg: Option<String>,
    /// The profile in use (none before the first login).
    pub profile: Option<String>,
    /// Where secrets come from.
    pub secrets: SecretSource,
    /// `--key-file`.
    pub key_file: Option<PathBuf>,
    /// The current profile's sealed identity and session files.
    pub keystore: Keystore,
    /// Rollback/fork memory.
    pub seen: SeenStore,
}

/// An unlocked identity and the name it acts under.
pub struct Unlocked {
    /// The account (or key file) name.
    pub user: String,
    /// The private keys (in memory only).
    pub identity: UserIdentity,
}

impl Ctx {
    /// Resolves raw global arguments.
    pub fn resolve(global: &GlobalArgs) -> Result<Self> {
        let paths = Paths::resolve()?;
        let config = ConfigFile::load(&paths)?;
        let profile = config.resolve_profile(global.profile.as_deref())?;
        let keystore = Keystore::new(&paths.profile_dir(profile.as_deref().unwrap_or("none")));
        Ok(Self {
            keystore,
            seen: SeenStore::new(&paths.data_dir),
            config,
            out: Out {
                json: global.json,
                quiet: global.quiet,
            },
            server_arg: global.server.clone(),
            wiki_arg: global.wiki.clone(),
            profile_arg: global.profile.clone(),
            profile,
            secrets: SecretSource {
                passphrase_file: global.passphrase_file.clone(),
            },
            key_file: global.key_file.clone(),
            paths,
        })
    }

    /// The current profile's settings.
    pub fn profile(&self) -> Option<&Profile> {
        self.profile
            .as_deref()
            .and_then(|p| self.config.profiles.get(p))
    }

    /// The sealed identity and session files of a profile.
    pub fn keystore_for(&self, profile: &str) -> Keystore {
        Keystore::new(&self.paths.profile_dir(profile))
    }

    /// Where the unlock agent of the current profile listens.
    pub fn agent_socket(&self) -> std::path::PathBuf {
        crate::unlock::socket_path(
            &self
                .paths
                .profile_dir(self.profile.as_deref().unwrap_or("none")),
        )
    }

    /// The server: `--server`, else the session's, else the configured one.
    pub fn server(&self) -> Result<String> {
        if let Some(s) = &self.server_arg {
            return config::normalize_server(s);
        }
        if let Some(s) = self.keystore.session()? {
            return Ok(s.server);
        }
        if let Some(p) = self.profile() {
            return config::normalize_server(&p.server);
        }
        Err(CliError::usage("no server given")
            .with_hint("pass --server URL (it is remembered after `zkwiki login`)"))
    }

    /// The current session (logged in).
    pub fn session(&self) -> Result<Session> {
        let session = self.keystore.session()?.ok_or_else(|| {
            CliError::new(ErrorKind::Auth, "not logged in")
                .with_hint("run `zkwiki login` (or `zkwiki register` for a new account)")
        })?;
        if let Some(s) = &self.server_arg
            && config::normalize_server(s)? != session.server
        {
            return Err(CliError::new(
                ErrorKind::Auth,
                format!(
                    "not logged in to {s} (the session is for {})",
                    session.server
                ),
            )
            .with_hint("run `zkwiki login --server URL`"));
        }
        Ok(session)
    }

    /// The agent access of `--key-file`, when it is an agent key file (with its server).
    pub fn agent_access(&self) -> Result<Option<(String, keystore::AgentAccess)>> {
        let Some(file) = &self.key_file else {
            return Ok(None);
        };
        let (_, _, server, access) = keystore::read_key_file_full(file)?;
        let Some(access) = access else {
            return Ok(None);
        };
        let server = match (&self.server_arg, server) {
            (Some(s), _) => config::normalize_server(s)?,
            (None, Some(s)) => config::normalize_server(&s)?,
            (None, None) => {
                return Err(CliError::usage("the agent key file names no server")
                    .with_hint("pass --server URL"));
            }
        };
        Ok(Some((server, access)))
    }

    /// An API client with the session token (or the agent key file's token).
    pub fn api(&self) -> Result<Api> {
        if let Some((server, access)) = self.agent_access()? {
            return Ok(Api::new(&server, Some(access.token)));
        }
        let s = self.session()?;
        Ok(Api::new(&s.server, Some(s.token)))
    }

    /// The selected wiki (an agent key file names its own): a name, an id, or a unique id
    /// prefix (of the profile's wikis, else of the server's list).
    pub fn wiki(&self) -> Result<WikiId> {
        if self.wiki_arg.is_none()
            && let Some((_, access)) = self.agent_access()?
        {
            return WikiId::from_hex(&access.wiki)
                .map_err(|_| CliError::usage("the agent key file's wiki id is not valid"));
        }
        self.resolve_wiki(self.wiki_arg.as_deref())
    }

    /// A wiki by name, id or unique id prefix (none: the profile's default).
    pub fn resolve_wiki(&self, selector: Option<&str>) -> Result<WikiId> {
        if self.key_file.is_none()
            && self.keystore.session()?.is_none()
            && selector.and_then(|w| WikiId::from_hex(w).ok()).is_none()
        {
            // Say what is wrong first: without a session there is no wiki to select.
            self.session()?;
        }
        match config::resolve_wiki(self.profile(), selector, &[]) {
            Err(e) if e.kind == ErrorKind::NotFound && self.keystore.session()?.is_some() => {
                let known: Vec<String> = self
                    .api()?
                    .list_wikis()?
                    .into_iter()
                    .map(|w| w.wiki)
                    .collect();
                config::resolve_wiki(self.profile(), selector, &known)
            }
            other => other,
        }
    }

    /// The user's identity: from `--key-file`, else from the unlock agent when one holds this
    /// account's keys, else the sealed identity opened with the passphrase (or through KMS for a
    /// KMS-protected account).
    pub fn unlock(&self) -> Result<Unlocked> {
        if let Some(file) = &self.key_file {
            let (user, identity) = keystore::read_key_file(file)?;
            return Ok(Unlocked { user, identity });
        }
        if let Some(stored) = self.keystore.identity()?
            && let Some(identity) = crate::unlock::identity(&self.agent_socket(), &stored.user)
            && keystore::public_from_b64(&stored.x25519, &stored.ed25519)
                .is_ok_and(|p| p == identity.public())
        {
            return Ok(Unlocked {
                user: stored.user,
                identity,
            });
        }
        self.unlock_with_secret()
    }

    /// The identity when it is at hand without asking anyone (a key file or the unlock agent).
    pub fn unlock_quietly(&self) -> Option<Unlocked> {
        if self.key_file.is_some() {
            return self.unlock().ok();
        }
        let stored = self.keystore.identity().ok()??;
        let identity = crate::unlock::identity(&self.agent_socket(), &stored.user)?;
        keystore::public_from_b64(&stored.x25519, &stored.ed25519)
            .is_ok_and(|p| p == identity.public())
            .then_some(Unlocked {
                user: stored.user,
                identity,
            })
    }

    /// The sealed identity opened with the passphrase (or KMS), never from the unlock agent.
    pub fn unlock_with_secret(&self) -> Result<Unlocked> {
        if let Some(file) = &self.key_file {
            let (user, identity) = keystore::read_key_file(file)?;
            return Ok(Unlocked { user, identity });
        }
        let stored = self.keystore.identity()?.ok_or_else(|| {
            CliError::new(ErrorKind::Auth, "no identity on this machine")
                .with_hint("run `zkwiki login`, or pass --key-file FILE")
        })?;
        let prompt = format!("Passphrase for {}: ", stored.user);
        let t = std::time::Instant::now();
        let identity = keystore::unseal_stored(&stored, || self.secrets.passphrase(&prompt))?;
        crate::output::timing("unlock the protector and unseal the identity", t);
        Ok(Unlocked {
            user: stored.user,
            identity,
        })
    }
}
