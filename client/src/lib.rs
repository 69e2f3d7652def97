//! zkwiki's client protocol, sans I/O: every rule a client enforces, written once and driven by
//! the CLI, the MCP server and the browser alike. Drivers fetch bytes (HTTP, a git clone, the
//! browser's `fetch`) and show results; everything between is here.
//!
//! - [`head`]: accept a wiki head only if it extends what this client saw, at any distance;
//! - [`history`]: the one verified walk back through history, and who wrote what;
//! - [`workspace`]: one open wiki: catalog and index upkeep, loading and isolating pages,
//!   writes ([`workspace::Draft`]), members and revocation reports, search;
//! - [`layout`]: the wiki's git tree, and that unlisted files are errors;
//! - [`links`]: the links a page's markdown makes, and so which pages link to a page;
//! - [`names`]: page titles, names in trees and lists, and their order;
//! - [`policy`]: which page paths a wiki holds (for writers and readers alike);
//! - [`merge`]: line diffs and the three-way merge after a conflict; [`search`]: snippets;
//! - [`keyfile`]: key files and the member identities a clone carries (offline, forever);
//! - [`seen`]: the remembered highest versions; [`wire`]: the HTTP API's bodies and routes;
//! - [`attachments`]: a page's files, Otterwiki's `/Page/a/FILE` references, what shows inline;
//! - [`witness`]: the heads a wiki's witnesses must not contradict, and safety numbers;
//! - [`account`]: registration, login checks and protector changes;
//! - [`display`]: untrusted text made safe to show; [`error`]: one error classification.

pub mod account;
pub mod attachments;
pub mod display;
pub mod error;
pub mod head;
pub mod history;
pub mod keyfile;
pub mod layout;
pub mod links;
pub mod merge;
pub mod names;
pub mod policy;
pub mod search;
pub mod seen;
pub mod wire;
pub mod witness;
pub mod workspace;

pub use error::{Error, Kind, Result};
pub use head::VerifiedHead;
pub use workspace::Workspace;
