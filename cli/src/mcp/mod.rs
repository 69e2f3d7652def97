//! `zkwiki mcp`: an MCP server (rmcp) exposing a wiki to an agent, over stdio or streamable HTTP
//! ([`http`]).
//!
//! Every tool decrypts and encrypts on the agent's side through [`WikiTools`]; the zkwiki server
//! sees only ciphertext. Each tool has a title, annotations (read-only, destructive, idempotent,
//! closed world) and an output schema; its result comes back as `structuredContent` and, for
//! clients that read only text, as the same JSON in a text block. Tool failures come back as
//! tool results with `isError: true` and a message a model can act on ("this key is
//! read-only", "the page changed since you read it").
//!
//! The wiki's pages are also resources: `zkwiki://WIKI/PATH` (the wiki id in hex, the path
//! percent-encoded), markdown as `text/markdown` text, attachments as base64 blobs with a MIME
//! type from their extension.

pub mod http;
pub mod tools;

use std::fmt::Write as _;
use std::sync::Arc;

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

use tools::{
    Backlinks, DeleteOutcome, MoveOutcome, PageHistory, PageKind, PageList, PageText,
    SearchResults, WriteOutcome,
};
pub use tools::{ToolError, WikiTools};

const INSTRUCTIONS: &str = "An end-to-end encrypted markdown wiki. Pages are markdown with \
optional YAML front matter and [[WikiLinks]]; paths look like `projects/plan.md` (write_page \
adds `.md` when a path has no markdown extension). Read a page before changing it and pass its \
`version` to write_page or delete_page as `base_version` so that nobody's change is lost; use \
append_page to add notes without reading first. move_page renames a page and keeps its history; \
list_backlinks finds the pages that link to one. Pages are also resources (`zkwiki://` URIs).";

/// Resources per `resources/list` answer (the rest follow with its `nextCursor`).
const RESOURCES_PER_PAGE: usize = 500;

/// The MCP server: a tool router over a [`WikiTools`] implementation, and its pages as
/// resources.
#[derive(Clone)]
pub struct WikiMcp {
    tools: Arc<dyn WikiTools>,
    /// The wiki id (hex), the host part of resource URIs.
    wiki: String,
    #[allow(dead_code)] // read by the `tool_handler` macro
    tool_router: ToolRouter<Self>,
    info: ServerConfig,
}

/// Arguments of `list_pages`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListArgs {
    /// Only pages whose path starts with this folder, e.g. `research/`.
    pub prefix: Option<String>,
}

/// Arguments naming one page.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PathArgs {
    /// The page path, e.g. `projects/plan.md`.
    pub path: String,
}

/// Arguments of `write_page`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    /// The page path, e.g. `projects/plan.md` (`.md` is added when missing).
    pub path: String,
    /// The whole new markdown text.
    pub content: String,
    /// The `version` read_page returned; the write is refused if the page changed since.
    pub base_version: Option<String>,
}

/// Arguments of `append_page`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AppendArgs {
    /// The page path (`.md` is added when missing).
    pub path: String,
    /// Markdown to add at the end (a newline is inserted if needed).
    pub text: String,
}

/// Arguments of `move_page`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct MoveArgs {
    /// The page's current path.
    pub from: String,
    /// The new path (a markdown page keeps `.md`: it is added when missing). Must be free.
    pub to: String,
}

/// Arguments of `delete_page`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DeleteArgs {
    /// The page path.
    pub path: String,
    /// The `version` read_page returned; the deletion is refused if the page changed since.
    pub base_version: Option<String>,
}

/// Arguments of `search`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// Words to look for (all must match; the last also as a prefix).
    pub query: String,
    /// At most this many results (default 20).
    pub limit: Option<usize>,
}

/// Arguments of `page_history`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct HistoryArgs {
    /// The page path.
    pub path: String,
    /// At most this many versions (default 20).
    pub limit: Option<usize>,
}

/// A tool's answer: the result as `structuredContent` and as pretty JSON text, or the failure
/// as an error result (`isError: true`) with the message as text.
fn reply<T: Serialize>(result: Result<T, ToolError>) -> CallToolResult {
    let value = match result.map(|v| serde_json::to_value(&v)) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => {
            return CallToolResult::error(vec![ContentBlock::text(format!("internal error: {e}"))]);
        }
        Err(e) => return CallToolResult::error(vec![ContentBlock::text(e.message)]),
    };
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    result
}

/// The resource URI of a page: `zkwiki://WIKI/PATH`, every byte of the path other than ASCII
/// letters, digits, `-._~` and `/` percent-encoded.
pub fn resource_uri(wiki: &str, path: &str) -> String {
    let mut uri = format!("zkwiki://{wiki}/");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(b as char);
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri
}

/// The page path a resource URI of this wiki names.
fn path_of_uri(wiki: &str, uri: &str) -> Result<String, ErrorData> {
    let bad = |why: &str| {
        ErrorData::invalid_params(
            format!(
                "{why}: wiki resources look like zkwiki://{wiki}/PATH (resources/list gives them)"
            ),
            None,
        )
    };
    let rest = uri
        .strip_prefix("zkwiki://")
        .ok_or_else(|| bad("not a zkwiki:// URI"))?;
    let (host, path) = rest.split_once('/').ok_or_else(|| bad("no page path"))?;
    if !host.eq_ignore_ascii_case(wiki) {
        return Err(ErrorData::resource_not_found(
            "that URI names another wiki than the one this key opens",
            None,
        ));
    }
    let path = client::links::percent_decode(path);
    if path.is_empty() {
        return Err(bad("no page path"));
    }
    Ok(path)
}

/// The MIME type of a page: `text/markdown` for markdown, else by the attachment's extension.
pub fn mime_type(path: &str, kind: PageKind) -> &'static str {
    if kind == PageKind::Markdown {
        return "text/markdown";
    }
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "pdf" => "application/pdf",
        "txt" | "text" | "log" => "text/plain",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}

/// Runs a blocking wiki operation off the executor.
async fn blocking<T, F>(tools: &Arc<dyn WikiTools>, f: F) -> Result<T, ToolError>
where
    T: Send + 'static,
    F: FnOnce(&dyn WikiTools) -> Result<T, ToolError> + Send + 'static,
{
    let tools = Arc::clone(tools);
    tokio::task::spawn_blocking(move || f(tools.as_ref()))
        .await
        .unwrap_or_else(|e| Err(ToolError::new(format!("the call failed unexpectedly: {e}"))))
}

impl WikiMcp {
    async fn run<T, F>(&self, f: F) -> Result<CallToolResult, ErrorData>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&dyn WikiTools) -> Result<T, ToolError> + Send + 'static,
    {
        Ok(reply(blocking(&self.tools, f).await))
    }
}

#[tool_router]
impl WikiMcp {
    /// A server over these tools for the wiki `wiki` (hex id), with `description` (what this
    /// key may do) in its instructions.
    pub fn new(tools: Arc<dyn WikiTools>, wiki: &str, description: &str) -> Self {
        let info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("zkwiki", env!("CARGO_PKG_VERSION")))
        .with_instructions(format!("{INSTRUCTIONS}\n\n{description}"));
        Self {
            tools,
            wiki: wiki.to_owned(),
            tool_router: Self::tool_router(),
            info,
        }
    }

    #[tool(
        title = "List pages",
        description = "List the wiki's pages this key can read (path, kind, size, resource URI), optionally under a folder.",
        annotations(
            title = "List pages",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<PageList>()
    )]
    async fn list_pages(
        &self,
        Parameters(a): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.list_pages(a.prefix.as_deref())).await
    }

    #[tool(
        title = "Read a page",
        description = "Read a page: its markdown (an attachment: base64), who signed it, the claimed author, time and version tag.",
        annotations(
            title = "Read a page",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<PageText>()
    )]
    async fn read_page(
        &self,
        Parameters(a): Parameters<PathArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.read_page(&a.path)).await
    }

    #[tool(
        title = "Write a page",
        description = "Create or replace a page with new markdown (`.md` is added to a path without it). Pass base_version (from read_page) to refuse overwriting someone else's change. Writing the text a page already has changes nothing.",
        annotations(
            title = "Write a page",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<WriteOutcome>()
    )]
    async fn write_page(
        &self,
        Parameters(a): Parameters<WriteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.write_page(&a.path, &a.content, a.base_version.as_deref()))
            .await
    }

    #[tool(
        title = "Append to a page",
        description = "Append markdown to the end of a page, creating it if it does not exist; concurrent changes by others are kept.",
        annotations(
            title = "Append to a page",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<WriteOutcome>()
    )]
    async fn append_page(
        &self,
        Parameters(a): Parameters<AppendArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.append_page(&a.path, &a.text)).await
    }

    #[tool(
        title = "Move a page",
        description = "Rename or move a page to a free path; its history follows it (same page, new path). Links in other pages are not rewritten: list_backlinks finds them.",
        annotations(
            title = "Move a page",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<MoveOutcome>()
    )]
    async fn move_page(
        &self,
        Parameters(a): Parameters<MoveArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.move_page(&a.from, &a.to)).await
    }

    #[tool(
        title = "Delete a page",
        description = "Delete a page (its earlier versions stay in the wiki's history). Pass base_version (from read_page) to refuse deleting someone else's newer change.",
        annotations(
            title = "Delete a page",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DeleteOutcome>()
    )]
    async fn delete_page(
        &self,
        Parameters(a): Parameters<DeleteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.delete_page(&a.path, a.base_version.as_deref()))
            .await
    }

    #[tool(
        title = "Search the wiki",
        description = "Search page paths and text (every word must match, the last also as a prefix); returns matching paths with a snippet, best first.",
        annotations(
            title = "Search the wiki",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<SearchResults>()
    )]
    async fn search(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.search(&a.query, a.limit.unwrap_or(20).min(200)))
            .await
    }

    #[tool(
        title = "Page history",
        description = "A page's versions, newest first: sequence, signer, claimed author, time, version tag; versions this key cannot read are marked unreadable.",
        annotations(
            title = "Page history",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<PageHistory>()
    )]
    async fn page_history(
        &self,
        Parameters(a): Parameters<HistoryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.page_history(&a.path, a.limit.unwrap_or(20).min(500)))
            .await
    }

    #[tool(
        title = "List backlinks",
        description = "The pages whose markdown links to a page ([[Target]], [[Target|Label]] or [text](relative/path.md)), among the pages this key can read.",
        annotations(
            title = "List backlinks",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<Backlinks>()
    )]
    async fn list_backlinks(
        &self,
        Parameters(a): Parameters<PathArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.list_backlinks(&a.path)).await
    }
}

/// A resource-read failure as a JSON-RPC error: "not found" when the page is not there (or
/// this key cannot read it), else an internal error with the message (the wiki server is
/// unreachable, the token was refused, the wiki failed verification).
fn resource_err(uri: &str, e: ToolError) -> ErrorData {
    let data = Some(serde_json::json!({ "uri": uri }));
    if e.not_found {
        ErrorData::resource_not_found(e.message, data)
    } else {
        ErrorData::internal_error(e.message, data)
    }
}

#[tool_handler]
impl ServerHandler for WikiMcp {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let start = match request.and_then(|r| r.cursor) {
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| ErrorData::invalid_params("not a cursor this server gave", None))?,
            None => 0,
        };
        let list = blocking(&self.tools, |t| t.list_pages(None))
            .await
            .map_err(|e| ErrorData::internal_error(e.message, None))?;
        let total = list.pages.len();
        let resources = list
            .pages
            .into_iter()
            .skip(start)
            .take(RESOURCES_PER_PAGE)
            .map(|p| {
                Resource::new(p.uri, p.path.clone())
                    .with_title(client::links::base_name(&p.path))
                    .with_mime_type(mime_type(&p.path, p.kind))
                    .with_size(p.size)
            })
            .collect();
        let mut result = ListResourcesResult::with_all_items(resources);
        if start + RESOURCES_PER_PAGE < total {
            result.next_cursor = Some((start + RESOURCES_PER_PAGE).to_string());
        }
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("zkwiki://{}/{{+path}}", self.wiki), "page")
                .with_title("A wiki page by path")
                .with_description(
                    "Any page this key can read, by its path (percent-encoded): markdown as \
                     text/markdown, attachments as base64 blobs.",
                ),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let path = path_of_uri(&self.wiki, &uri)?;
        let page = blocking(&self.tools, move |t| t.read_raw(&path))
            .await
            .map_err(|e| resource_err(&uri, e))?;
        let mime = mime_type(&page.path, page.kind);
        let contents = match page.kind {
            PageKind::Markdown => {
                ResourceContents::text(String::from_utf8_lossy(&page.content).into_owned(), uri)
            }
            PageKind::Attachment => {
                ResourceContents::blob(data_encoding::BASE64.encode(&page.content), uri)
            }
        }
        .with_mime_type(mime);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// A multi-threaded runtime for the server (blocking wiki calls run on its blocking pool).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Serves MCP over stdin/stdout until the client disconnects.
pub fn serve_stdio(
    tools: Arc<dyn WikiTools>,
    wiki: &str,
    description: &str,
) -> std::io::Result<()> {
    let server = WikiMcp::new(tools, wiki, description);
    runtime()?.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| std::io::Error::other(format!("MCP handshake failed: {e}")))?;
        running
            .waiting()
            .await
            .map_err(|e| std::io::Error::other(format!("MCP session ended with an error: {e}")))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIKI: &str = "00ff";

    #[test]
    fn resource_uris_round_trip_any_path() {
        for path in [
            "Home.md",
            "projects/Plan 2026.md",
            "a%b#c?d.md",
            "ünïcødé/日本.md",
            "files/diagram.png",
        ] {
            let uri = resource_uri(WIKI, path);
            assert!(uri.starts_with("zkwiki://00ff/"), "{uri}");
            assert!(
                uri["zkwiki://".len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
                "{uri}"
            );
            assert_eq!(path_of_uri(WIKI, &uri).unwrap(), path);
        }
        assert_eq!(resource_uri(WIKI, "a b/c.md"), "zkwiki://00ff/a%20b/c.md");
    }

    #[test]
    fn foreign_or_malformed_uris_are_refused() {
        assert!(path_of_uri(WIKI, "zkwiki://00FF/Home.md").is_ok());
        for bad in [
            "file:///etc/passwd",
            "zkwiki://00ff",
            "zkwiki://00ff/",
            "zkwiki://abcd/Home.md",
        ] {
            assert!(path_of_uri(WIKI, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mime_types_follow_the_kind_and_extension() {
        assert_eq!(mime_type("a.png.md", PageKind::Markdown), "text/markdown");
        assert_eq!(mime_type("x/Pic.PNG", PageKind::Attachment), "image/png");
        assert_eq!(
            mime_type("doc.pdf", PageKind::Attachment),
            "application/pdf"
        );
        assert_eq!(
            mime_type("noext", PageKind::Attachment),
            "application/octet-stream"
        );
    }
}
