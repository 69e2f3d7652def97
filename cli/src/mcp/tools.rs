//! What an agent can do with a wiki, independent of the MCP transport.
//!
//! The MCP server ([`super`]) turns each tool call into one method call here. Implementations do
//! all decryption, encryption and verification on the agent's side (see `commands/mcp.rs`); the
//! trait keeps the protocol layer free of wiki logic and lets it be tested on its own.

use serde::Serialize;

/// A tool failure, phrased for a language model: what happened and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// The message shown to the model.
    pub message: String,
}

impl ToolError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// One page in a listing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PageSummary {
    /// The page path.
    pub path: String,
    /// Envelope size in bytes (padded; roughly the page size).
    pub size: u32,
}

/// A page's current text.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PageText {
    /// The page path.
    pub path: String,
    /// The markdown, front matter included.
    pub content: String,
    /// The member whose key signed this version (who wrote it), when known.
    pub signer: Option<String>,
    /// The author name the page record claims (an imported author, or what a writer typed):
    /// a claim, not proof.
    pub author_claimed: String,
    /// When, in milliseconds since 1970 UTC.
    pub written_at_ms: i64,
    /// Opaque version tag: pass it back to `write_page` as `base_version` to refuse lost updates.
    pub version: String,
}

/// The result of a write.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The page path.
    pub path: String,
    /// The new version tag.
    pub version: String,
    /// The wiki state sequence this write created.
    pub seq: u64,
}

/// A search hit.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SearchHit {
    /// The page path.
    pub path: String,
}

/// One version of a page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The wiki state sequence of the commit.
    pub seq: u64,
    /// The member whose key signed that state.
    pub signer: String,
    /// The author name the record claims, when readable.
    pub author_claimed: Option<String>,
    /// When, in milliseconds since 1970 UTC, when readable.
    pub written_at_ms: Option<i64>,
    /// The page's version tag at that commit, or `None` if it was deleted there.
    pub version: Option<String>,
    /// Why this version cannot be shown (written against the rules, or under a key this
    /// agent never held), when it cannot.
    pub unreadable: Option<String>,
}

/// The wiki operations an agent may call. Methods block; the MCP layer runs them off its executor.
pub trait WikiTools: Send + Sync + 'static {
    /// Pages, optionally only under `prefix`.
    fn list_pages(&self, prefix: Option<&str>) -> Result<Vec<PageSummary>, ToolError>;
    /// A page's current text.
    fn read_page(&self, path: &str) -> Result<PageText, ToolError>;
    /// Creates or replaces a page. With `base_version`, refuses if the page changed since.
    fn write_page(
        &self,
        path: &str,
        content: &str,
        base_version: Option<&str>,
    ) -> Result<WriteOutcome, ToolError>;
    /// Appends text to a page (creating it if missing); concurrent changes are merged by retrying.
    fn append_page(&self, path: &str, text: &str) -> Result<WriteOutcome, ToolError>;
    /// Pages matching all terms.
    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, ToolError>;
    /// A page's versions, newest first.
    fn page_history(&self, path: &str, limit: usize) -> Result<Vec<HistoryEntry>, ToolError>;
}
