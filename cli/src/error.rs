//! The CLI's error type: a kind (which picks the exit code), a one-line message and an optional
//! one-line hint telling the user what to do. Messages never contain secrets.

use std::fmt;

/// Documented exit codes (also in `zkwiki --help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A general failure (I/O, bad input, server error).
    pub const FAILURE: u8 = 1;
    /// Bad command-line usage.
    pub const USAGE: u8 = 2;
    /// Not logged in, wrong passphrase, expired session, or no access to this wiki.
    pub const AUTH: u8 = 3;
    /// Verification failed: the data was tampered with, rolled back or forked. Do not trust it.
    pub const INTEGRITY: u8 = 4;
    /// A concurrent change could not be merged; your text was saved to a file.
    pub const CONFLICT: u8 = 5;
    /// No such page, wiki or file.
    pub const NOT_FOUND: u8 = 6;
    /// The server could not be reached or failed.
    pub const NETWORK: u8 = 7;
}

/// What kind of failure, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// General failure.
    General,
    /// Bad usage.
    Usage,
    /// Authentication or access.
    Auth,
    /// Verification failed.
    Integrity,
    /// Unmerged concurrent change.
    Conflict,
    /// Not found.
    NotFound,
    /// Network or server failure.
    Network,
    /// Standard output was closed (e.g. `zkwiki ls | head`): not a failure.
    BrokenPipe,
    /// A search found nothing: exit 1 and nothing more, as `grep` and `rg` do.
    NoMatch,
}

impl ErrorKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::General => exit::FAILURE,
            Self::Usage => exit::USAGE,
            Self::Auth => exit::AUTH,
            Self::Integrity => exit::INTEGRITY,
            Self::Conflict => exit::CONFLICT,
            Self::NotFound => exit::NOT_FOUND,
            Self::Network => exit::NETWORK,
            Self::BrokenPipe => exit::OK,
            Self::NoMatch => exit::FAILURE,
        }
    }

    /// A stable name for `--json` error output.
    pub fn name(self) -> &'static str {
        match self {
            Self::General => "failure",
            Self::Usage => "usage",
            Self::Auth => "auth",
            Self::Integrity => "integrity",
            Self::Conflict => "conflict",
            Self::NotFound => "not_found",
            Self::Network => "network",
            Self::BrokenPipe => "broken_pipe",
            Self::NoMatch => "no_match",
        }
    }
}

/// An error for the user: message plus optional hint.
#[derive(Debug, thiserror::Error)]
pub struct CliError {
    /// The kind (exit code).
    pub kind: ErrorKind,
    /// One line saying what failed.
    pub message: String,
    /// One line saying what to do.
    pub hint: Option<String>,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Results of the CLI library.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }
    /// A general failure.
    pub fn general(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::General, message)
    }
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    /// An integrity failure.
    pub fn integrity(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Integrity, message).with_hint(HINT_UNTRUSTED)
    }
    /// Not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
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
    /// An I/O error on a named file.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            return Self::new(ErrorKind::BrokenPipe, "broken pipe");
        }
        let kind = if err.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::General
        };
        Self::new(kind, format!("{what}: {err}"))
    }
}

use client::error::HINT_UNTRUSTED;

/// Adds context to results.
pub trait Context<T> {
    /// Prefixes an error message with what was being done.
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<CliError>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        Self::io("I/O error", err)
    }
}

impl From<client::Error> for CliError {
    /// The client core's one classification, as exit codes.
    fn from(e: client::Error) -> Self {
        use client::Kind as K;
        let kind = match e.kind {
            K::Integrity | K::Security => ErrorKind::Integrity,
            K::Access => ErrorKind::Auth,
            K::Conflict => ErrorKind::Conflict,
            K::Input => ErrorKind::Usage,
            K::NotFound => ErrorKind::NotFound,
            K::Unavailable => ErrorKind::Network,
            K::Version | K::NotLoaded => ErrorKind::General,
        };
        Self {
            kind,
            message: e.message,
            hint: e.hint,
        }
    }
}

impl From<core_crypto::Error> for CliError {
    fn from(err: core_crypto::Error) -> Self {
        client::Error::from(err).into()
    }
}
