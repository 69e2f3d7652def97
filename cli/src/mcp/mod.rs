//! `zkwiki mcp`: an MCP server over stdio (rmcp) exposing a wiki to an agent.
//!
//! Every tool decrypts and encrypts on the agent's side through [`WikiTools`]; the zkwiki server
//! sees only ciphertext. Tool failures come back as tool results with `isError: true` and a message
//! a model can act on ("this key is read-only", "the page changed since you read it").

pub mod tools;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

pub use tools::{ToolError, WikiTools};

const INSTRUCTIONS: &str = "An end-to-end encrypted markdown wiki. Pages are markdown with \
optional YAML front matter and [[WikiLinks]]; paths look like `projects/plan.md`. Read a page \
before changing it and pass its `version` to write_page as `base_version` so that nobody's \
change is lost; use append_page to add notes without reading first.";

/// The MCP server: a tool router over a [`WikiTools`] implementation.
#[derive(Clone)]
pub struct WikiMcp {
    tools: Arc<dyn WikiTools>,
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
    /// The page path, e.g. `projects/plan.md`.
    pub path: String,
    /// The whole new markdown text.
    pub content: String,
    /// The `version` read_page returned; the write is refused if the page changed since.
    pub base_version: Option<String>,
}

/// Arguments of `append_page`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AppendArgs {
    /// The page path.
    pub path: String,
    /// Markdown to add at the end (a newline is inserted if needed).
    pub text: String,
}

/// Arguments of `search`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// Words to look for (all must match).
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

fn reply<T: Serialize>(result: Result<T, ToolError>) -> CallToolResult {
    match result {
        Ok(value) => match serde_json::to_string_pretty(&value) {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(e) => {
                CallToolResult::error(vec![ContentBlock::text(format!("internal error: {e}"))])
            }
        },
        Err(e) => CallToolResult::error(vec![ContentBlock::text(e.message)]),
    }
}

impl WikiMcp {
    async fn run<T, F>(&self, f: F) -> Result<CallToolResult, ErrorData>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&dyn WikiTools) -> Result<T, ToolError> + Send + 'static,
    {
        let tools = Arc::clone(&self.tools);
        let result = tokio::task::spawn_blocking(move || f(tools.as_ref()))
            .await
            .unwrap_or_else(|e| Err(ToolError::new(format!("the tool failed unexpectedly: {e}"))));
        Ok(reply(result))
    }
}

#[tool_router]
impl WikiMcp {
    /// A server over these tools, announcing `wiki` in its instructions.
    pub fn new(tools: Arc<dyn WikiTools>, description: &str) -> Self {
        let info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("zkwiki", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!("{INSTRUCTIONS}\n\n{description}"));
        Self {
            tools,
            tool_router: Self::tool_router(),
            info,
        }
    }

    #[tool(description = "List the wiki's pages (paths and sizes), optionally under a folder.")]
    async fn list_pages(
        &self,
        Parameters(a): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.list_pages(a.prefix.as_deref())).await
    }

    #[tool(description = "Read a page: its markdown, author, time and version tag.")]
    async fn read_page(
        &self,
        Parameters(a): Parameters<PathArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.read_page(&a.path)).await
    }

    #[tool(
        description = "Create or replace a page with new markdown. Pass base_version (from read_page) to refuse overwriting someone else's change."
    )]
    async fn write_page(
        &self,
        Parameters(a): Parameters<WriteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.write_page(&a.path, &a.content, a.base_version.as_deref()))
            .await
    }

    #[tool(description = "Append markdown to the end of a page, creating it if it does not exist.")]
    async fn append_page(
        &self,
        Parameters(a): Parameters<AppendArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.append_page(&a.path, &a.text)).await
    }

    #[tool(description = "Search page paths and text; returns matching paths.")]
    async fn search(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.search(&a.query, a.limit.unwrap_or(20).min(200)))
            .await
    }

    #[tool(description = "A page's versions, newest first: sequence, author, time, version tag.")]
    async fn page_history(
        &self,
        Parameters(a): Parameters<HistoryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.run(move |t| t.page_history(&a.path, a.limit.unwrap_or(20).min(500)))
            .await
    }
}

#[tool_handler]
impl ServerHandler for WikiMcp {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }
}

/// Serves MCP over stdin/stdout until the client disconnects.
pub fn serve_stdio(tools: Arc<dyn WikiTools>, description: &str) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let server = WikiMcp::new(tools, description);
    runtime.block_on(async move {
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
