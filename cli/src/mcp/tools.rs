//! What an agent can do with a wiki, independent of the MCP transport.
//!
//! The MCP server ([`super`]) turns each tool call and resource read into one method call here.
//! Implementations do all decryption, encryption and verification on the agent's side (see
//! `commands/mcp.rs`); the trait keeps the protocol layer free of wiki logic.
//!
//! Every result is a JSON object (MCP's `structuredContent` must be one), described by its
//! type's JSON schema (the tool's `outputSchema`).

use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;

/// A tool failure, phrased for a language model: what happened and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// The message shown to the model.
    pub message: String,
    /// Whether the failure is about what was asked (no such page), not about the wiki server
    /// or the wiki (for resource reads: "not found" rather than "internal error").
    pub not_found: bool,
}

impl ToolError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            not_found: false,
        }
    }

    /// There is no such page (or this key cannot read it).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            not_found: true,
        }
    }
}

/// Markdown page or attachment.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PageKind {
    /// A markdown page (`.md`, `.markdown`).
    Markdown,
    /// Any other file (an image, a PDF), kept as bytes.
    Attachment,
}

/// One page in a listing.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct PageSummary {
    /// The page path.
    pub path: String,
    /// Markdown page or attachment.
    pub kind: PageKind,
    /// Content size in bytes.
    pub size: u64,
    /// The page as an MCP resource (`zkwiki://WIKI/PATH`).
    pub uri: String,
}

/// The pages this key can read.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct PageList {
    /// Sorted by path.
    pub pages: Vec<PageSummary>,
}

/// A page's current text.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct PageText {
    /// The page path.
    pub path: String,
    /// Markdown page or attachment.
    pub kind: PageKind,
    /// The markdown, front matter included; for an attachment, its bytes in base64.
    pub content: String,
    /// `utf-8` (markdown) or `base64` (an attachment).
    pub encoding: String,
    /// The member whose key signed this version (who wrote it), when known.
    pub signer: Option<String>,
    /// The author name the page record claims (an imported author, or what a writer typed):
    /// a claim, not proof.
    pub author_claimed: String,
    /// When, in milliseconds since 1970 UTC.
    pub written_at_ms: i64,
    /// Opaque version tag: pass it back to `write_page` or `delete_page` as `base_version` to
    /// refuse lost updates.
    pub version: String,
    /// The page as an MCP resource.
    pub uri: String,
}

/// A page's bytes, for `resources/read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPage {
    /// The page path (unescaped: it names the resource).
    pub path: String,
    /// Markdown page or attachment.
    pub kind: PageKind,
    /// The content.
    pub content: Vec<u8>,
}

/// The result of a write.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The page path.
    pub path: String,
    /// The page's version tag now.
    pub version: String,
    /// The wiki state sequence this write created (the current one when nothing changed).
    pub seq: u64,
    /// False when the page already had exactly this text (nothing was written).
    pub changed: bool,
}

/// The result of a move.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct MoveOutcome {
    /// The old path.
    pub from: String,
    /// The new path.
    pub to: String,
    /// The page's version tag now.
    pub version: String,
    /// The wiki state sequence this move created.
    pub seq: u64,
}

/// The result of a deletion.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The deleted page's path.
    pub path: String,
    /// The wiki state sequence this deletion created.
    pub seq: u64,
}

/// A search hit.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct SearchHit {
    /// The page path.
    pub path: String,
    /// A line of the page around the match, when the page was decrypted already.
    pub snippet: String,
}

/// Search results, best first.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct SearchResults {
    /// Matching pages.
    pub hits: Vec<SearchHit>,
}

/// One version of a page.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The wiki state sequence of the commit.
    pub seq: u64,
    /// The member whose key signed that state.
    pub signer: String,
    /// The author name the record claims, when readable.
    pub author_claimed: Option<String>,
    /// When, in milliseconds since 1970 UTC, when readable.
    pub written_at_ms: Option<i64>,
    /// The message the writer gave this version (a commit message), when there is one.
    pub message: Option<String>,
    /// The author's e-mail address the record claims, when there is one.
    pub author_email: Option<String>,
    /// The page's version tag at that commit, or `None` if it was deleted there.
    pub version: Option<String>,
    /// Why this version cannot be shown (written against the rules, or under a key this
    /// agent never held), when it cannot.
    pub unreadable: Option<String>,
}

/// A page's versions, newest first.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct PageHistory {
    /// The page path.
    pub path: String,
    /// Newest first.
    pub versions: Vec<HistoryEntry>,
}

/// A page that links to another.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct Backlink {
    /// The linking page's path.
    pub path: String,
    /// How many of its links go to the page.
    pub links: u32,
}

/// The pages whose markdown links to a page.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct Backlinks {
    /// The page linked to.
    pub path: String,
    /// The linking pages this key can read, sorted by path.
    pub pages: Vec<Backlink>,
}

/// The wiki operations an agent may call. Methods block; the MCP layer runs them off its executor.
pub trait WikiTools: Send + Sync + 'static {
    /// Pages, optionally only under `prefix`.
    fn list_pages(&self, prefix: Option<&str>) -> Result<PageList, ToolError>;
    /// A page's current text.
    fn read_page(&self, path: &str) -> Result<PageText, ToolError>;
    /// A page's current bytes (for resources).
    fn read_raw(&self, path: &str) -> Result<RawPage, ToolError>;
    /// Creates or replaces a page. With `base_version`, refuses if the page changed since.
    fn write_page(
        &self,
        path: &str,
        content: &str,
        base_version: Option<&str>,
    ) -> Result<WriteOutcome, ToolError>;
    /// Appends text to a page (creating it if missing); concurrent changes are merged by retrying.
    fn append_page(&self, path: &str, text: &str) -> Result<WriteOutcome, ToolError>;
    /// Renames a page (same page id: its history follows it).
    fn move_page(&self, from: &str, to: &str) -> Result<MoveOutcome, ToolError>;
    /// Deletes a page. With `base_version`, refuses if the page changed since.
    fn delete_page(
        &self,
        path: &str,
        base_version: Option<&str>,
    ) -> Result<DeleteOutcome, ToolError>;
    /// Pages matching all terms.
    fn search(&self, query: &str, limit: usize) -> Result<SearchResults, ToolError>;
    /// A page's versions, newest first.
    fn page_history(&self, path: &str, limit: usize) -> Result<PageHistory, ToolError>;
    /// The pages whose markdown links to a page.
    fn list_backlinks(&self, path: &str) -> Result<Backlinks, ToolError>;
}
