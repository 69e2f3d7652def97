//! The one error classification every client maps from.
//!
//! Each failure has a [`Kind`] (which the CLI turns into an exit code, the browser into an error
//! name and a banner colour, the MCP server into a tool error), a one-line message and, where the
//! user can do something, a one-line hint. An integrity failure (anything the server could have
//! caused by changing, dropping, replaying or forging bytes) is never softened into "not found".

use core::fmt;

use core_crypto::Error as CoreError;
use core_crypto::ids::PageId;

/// How a client treats an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The server's data failed a check: tampering, rollback, fork, a forged signature, a page
    /// a member wrote against the rules. Do not trust the server (or the member named).
    Integrity,
    /// The server asked for something the client refuses to do (weak KDF parameters).
    Security,
    /// Not signed in, a wrong passphrase, or no key for this (not a member, revoked, outside a
    /// folder, a reader writing).
    Access,
    /// Someone else changed the wiki (or the page) meanwhile and the change could not be redone.
    Conflict,
    /// A mistake in what the user asked for (a bad path, a taken name, a wrong argument).
    Input,
    /// No such page, wiki or version.
    NotFound,
    /// Data of a format version this build does not know.
    Version,
    /// The server could not be reached, is busy, or failed.
    Unavailable,
    /// A page must be fetched and loaded first: the driver loads [`Error::page`] and retries
    /// (the pull shape of every read: the core asks, the driver fetches).
    NotLoaded,
}

impl Kind {
    /// A stable lowercase name (the CLI's `--json` errors, logs).
    pub fn name(self) -> &'static str {
        match self {
            Self::Integrity => "integrity",
            Self::Security => "security",
            Self::Access => "access",
            Self::Conflict => "conflict",
            Self::Input => "input",
            Self::NotFound => "not_found",
            Self::Version => "version",
            Self::Unavailable => "unavailable",
            Self::NotLoaded => "not_loaded",
        }
    }
}

/// A client error: a kind, a message for people, an optional hint and the page it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// How to treat it.
    pub kind: Kind,
    /// What happened, in one line.
    pub message: String,
    /// What to do about it, in one line.
    pub hint: Option<String>,
    /// The page a conflict or a failure is about.
    pub page: Option<PageId>,
}

/// Results of the client core.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The hint of every integrity failure of the server's data.
pub const HINT_UNTRUSTED: &str = "the data does not match what the wiki's members signed: it was \
     modified, is incomplete or is old; do not trust this server (or this copy) and tell the wiki's owner";

impl Error {
    /// An error of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            page: None,
        }
    }

    /// A mistake in the request.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }

    /// Data that failed a check.
    pub fn integrity(message: impl Into<String>) -> Self {
        Self::new(Kind::Integrity, message).with_hint(HINT_UNTRUSTED)
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }

    /// Not allowed with these keys.
    pub fn access(message: impl Into<String>) -> Self {
        Self::new(Kind::Access, message)
    }

    /// An answer from the server that is not what the API promises.
    pub fn protocol(what: &str) -> Self {
        Self::integrity(format!("the server's answer is malformed: {what}"))
    }

    /// `page` must be loaded before this can go on.
    pub fn not_loaded(page: PageId) -> Self {
        Self::new(Kind::NotLoaded, format!("page {page} is not loaded yet")).on_page(page)
    }

    /// A save conflict on `page`.
    pub fn conflict(page: PageId, message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message).on_page(page)
    }

    /// Attaches the page the error is about.
    pub fn on_page(mut self, page: PageId) -> Self {
        self.page = Some(page);
        self
    }

    /// Adds or replaces the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// Adds context to results.
pub trait Context<T> {
    /// Prefixes an error message with what was being done.
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for core::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
}

impl From<CoreError> for Error {
    fn from(err: CoreError) -> Self {
        use CoreError as E;
        let msg = err.to_string();
        match err {
            E::Rollback {
                what,
                seen,
                offered,
            } => Error::new(
                Kind::Integrity,
                format!(
                    "rollback detected: the {what} offered is sequence {offered}, but this client already saw sequence {seen}"
                ),
            )
            .with_hint(
                "the server returned an older version of the wiki than you saw before (rollback); do not trust this server",
            ),
            E::Fork { what, seq } => Error::new(
                Kind::Integrity,
                format!(
                    "fork detected: this {what} does not extend the one this client saw at sequence {seq}"
                ),
            )
            .with_hint(
                "the server shows you a different history than before (a fork, e.g. different views to different users); do not trust this server",
            ),
            E::Unauthorized { .. } => Error::new(Kind::Integrity, msg).with_hint(
                "a change was signed by a key that may not make it (e.g. a member key the owner never signed, or a reader); do not trust this server",
            ),
            E::WeakKdf(_) => Error::new(Kind::Security, msg).with_hint(
                "the server sent key-derivation parameters outside the safe range; do not trust this server",
            ),
            E::WrongKey { what: "identity" } => Error::new(
                Kind::Access,
                "wrong passphrase (or recovery key): the identity did not open",
            )
            .with_hint("try again; if you lost the passphrase, log in with your recovery key"),
            E::NoAccess(_) => Error::new(Kind::Access, msg)
                .with_hint("ask an owner of the wiki to add you (or to widen your access)"),
            E::Malformed {
                what: "recovery key",
                ..
            } => Error::new(Kind::Input, msg)
                .with_hint("a recovery key looks like ZKR1-XXXXX-XXXXX-…; check it for typos"),
            E::Malformed {
                what: "wiki id" | "page id",
                ..
            } => Error::new(Kind::Input, msg),
            E::InvalidPath(_) => Error::new(Kind::Input, msg).with_hint(
                "page paths look like `folder/Page.md`: no leading or trailing '/', no '.' or '..' segments",
            ),
            E::UnsupportedVersion { .. } => Error::new(Kind::Version, msg)
                .with_hint("upgrade zkwiki: this data was written by a newer version"),
            E::TooLarge { .. } | E::Invalid(_) => Error::new(Kind::Input, msg),
            _ => Error::integrity(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_one_kind_each() {
        let cases: [(CoreError, Kind); 8] = [
            (
                CoreError::Rollback {
                    what: "wiki state",
                    seen: 3,
                    offered: 2,
                },
                Kind::Integrity,
            ),
            (
                CoreError::Fork {
                    what: "wiki state",
                    seq: 3,
                },
                Kind::Integrity,
            ),
            (CoreError::WeakKdf("m"), Kind::Security),
            (CoreError::NoAccess("x"), Kind::Access),
            (CoreError::WrongKey { what: "identity" }, Kind::Access),
            (CoreError::WrongKey { what: "page" }, Kind::Integrity),
            (CoreError::InvalidPath("x"), Kind::Input),
            (
                CoreError::UnsupportedVersion {
                    what: "state",
                    version: 9,
                },
                Kind::Version,
            ),
        ];
        for (core, kind) in cases {
            let e = Error::from(core.clone());
            assert_eq!(e.kind, kind, "{core:?}");
            assert!(!e.message.is_empty());
        }
        assert!(Error::integrity("x").hint.is_some());
    }
}
