//! The app's errors, sorted into the kinds the UI shows differently.
//!
//! An integrity failure (anything the server could have caused by changing, dropping, replaying or
//! forging bytes) is never shown as an empty page: the app puts up a red banner with the message
//! from the core, which names what was wrong.

use core_crypto::Error as CoreError;
use core_crypto::ids::PageId;

/// How the UI treats an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The server's data failed a check: tampering, rollback, fork, a forged signature.
    Integrity,
    /// The server asked for something the client refuses (weak KDF parameters).
    Security,
    /// This identity has no key for it (not a member, revoked, outside its folder).
    Access,
    /// The page changed on the server since editing started.
    Conflict,
    /// A mistake in what the user typed (a bad path, a taken name).
    Input,
    /// Data of a format version this build does not know.
    Version,
}

impl Kind {
    /// The name the JavaScript side sees as `error.name`.
    pub fn js_name(self) -> &'static str {
        match self {
            Self::Integrity => "IntegrityError",
            Self::Security => "SecurityError",
            Self::Access => "AccessError",
            Self::Conflict => "ConflictError",
            Self::Input => "InputError",
            Self::Version => "VersionError",
        }
    }
}

/// An app error: a kind and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// How to show it.
    pub kind: Kind,
    /// What happened (from the core, or the app's own words).
    pub message: String,
    /// The page a conflict or a failure is about.
    pub page: Option<PageId>,
}

/// Results of the app logic.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An input mistake.
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Input,
            message: message.into(),
            page: None,
        }
    }

    /// An answer from the server that is not what the API promises.
    pub fn protocol(what: &str) -> Self {
        Self {
            kind: Kind::Integrity,
            message: format!("the server's answer is malformed: {what}"),
            page: None,
        }
    }

    /// A save conflict on `page`.
    pub fn conflict(page: PageId, message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Conflict,
            message: message.into(),
            page: Some(page),
        }
    }

    /// Attaches the page the error is about.
    pub fn on_page(mut self, page: PageId) -> Self {
        self.page = Some(page);
        self
    }
}

impl From<CoreError> for AppError {
    fn from(e: CoreError) -> Self {
        let kind = match &e {
            CoreError::WeakKdf(_) => Kind::Security,
            CoreError::NoAccess(_) => Kind::Access,
            CoreError::InvalidPath(_) | CoreError::Invalid(_) => Kind::Input,
            CoreError::UnsupportedVersion { .. } => Kind::Version,
            _ => Kind::Integrity,
        };
        Self {
            kind,
            message: e.to_string(),
            page: None,
        }
    }
}

impl core::fmt::Display for AppError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}
