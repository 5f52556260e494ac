//! One replica's client, whatever the connector's kind: the `http` REST contract, or an MCP
//! server (`mcp` over HTTP, `stdio` as a process). Every operation the connector needs, with
//! the kind's own way of doing it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::http::{Due, HttpBackend, Lists, ToolResult};
use super::ConnectorError;
use crate::catalog::Item;
use crate::session::ClientLink;
use crate::upstream::McpClient;

/// A replica's client.
#[derive(Clone)]
pub enum Backend {
    /// The REST contract.
    Http(HttpBackend),
    /// An MCP server.
    Mcp(McpBackend),
}

/// An MCP server and when a client last used it (for the idle timeout of processes).
#[derive(Clone)]
pub struct McpBackend {
    /// The upstream client.
    pub client: McpClient,
    /// When a client request last went through.
    pub last_used: std::rc::Rc<Cell<Instant>>,
}

/// Most pages read from one paginated MCP list.
const MAX_PAGES: usize = 100;

impl Backend {
    /// The health probe: `GET /info` or MCP `ping`.
    pub async fn probe(&self, timeout: Duration) -> Result<Value, ConnectorError> {
        match self {
            Backend::Http(http) => http.info(timeout).await,
            Backend::Mcp(mcp) => {
                let ping = mcp.client.request("ping", json!({}), None);
                match actix_rt::time::timeout(timeout, ping).await {
                    Ok(Ok(_)) => Ok(json!({"capabilities": mcp.client.capabilities()})),
                    Ok(Err(err)) => Err(err),
                    Err(_) => Err(ConnectorError::Timeout {
                        connector: mcp.client.connector().to_string(),
                        timeout_ms: timeout.as_millis() as u64,
                    }),
                }
            }
        }
    }

    /// Loads the due lists.
    pub async fn load_lists(&self, due: Due) -> Result<Lists, ConnectorError> {
        match self {
            Backend::Http(http) => http.load_lists(due).await,
            Backend::Mcp(mcp) => mcp.load_lists(due).await,
        }
    }

    /// Runs a tool; `meta` carries the client's `_meta` (its progress token).
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Value,
        meta: Option<Value>,
        link: Option<ClientLink>,
    ) -> Result<ToolResult, ConnectorError> {
        match self {
            Backend::Http(http) => http.call_tool(tool, arguments).await,
            Backend::Mcp(mcp) => {
                let mut params = json!({"name": tool, "arguments": arguments});
                if let Some(meta) = meta {
                    params["_meta"] = meta;
                }
                let value = mcp.request("tools/call", params, link).await?;
                Ok(ToolResult {
                    value,
                    server_error: false,
                })
            }
        }
    }

    /// Reads a resource by the backend's own URI.
    pub async fn read_resource(
        &self,
        uri: &str,
        link: Option<ClientLink>,
    ) -> Result<Value, ConnectorError> {
        match self {
            Backend::Http(http) => http.read_resource(uri).await,
            Backend::Mcp(mcp) => {
                mcp.request("resources/read", json!({ "uri": uri }), link)
                    .await
            }
        }
    }

    /// Renders a prompt.
    pub async fn get_prompt(
        &self,
        prompt: &str,
        arguments: &Map<String, Value>,
        link: Option<ClientLink>,
    ) -> Result<Value, ConnectorError> {
        match self {
            Backend::Http(http) => http.get_prompt(prompt, arguments).await,
            Backend::Mcp(mcp) => {
                let params = json!({"name": prompt, "arguments": arguments});
                mcp.request("prompts/get", params, link).await
            }
        }
    }

    /// Any other request an MCP server understands (`completion/complete`,
    /// `resources/subscribe`, …); the `http` kind has none.
    pub async fn forward(
        &self,
        method: &str,
        params: Value,
        link: Option<ClientLink>,
    ) -> Result<Value, ConnectorError> {
        match self {
            Backend::Http(_) => Err(ConnectorError::Remote {
                connector: String::new(),
                error: crate::mcp::jsonrpc::RpcError::new(
                    crate::mcp::jsonrpc::METHOD_NOT_FOUND,
                    format!("`{method}` is not supported by http connectors"),
                ),
            }),
            Backend::Mcp(mcp) => mcp.request(method, params, link).await,
        }
    }
}

impl McpBackend {
    async fn request(
        &self,
        method: &str,
        params: Value,
        link: Option<ClientLink>,
    ) -> Result<Value, ConnectorError> {
        if link.is_some() {
            self.last_used.set(Instant::now());
        }
        self.client.request(method, params, link).await
    }

    async fn load_lists(&self, due: Due) -> Result<Lists, ConnectorError> {
        let capabilities = self.client.capabilities();
        let offers = |what: &str| capabilities.get(what).is_some();
        let tools = match due.tools && offers("tools") {
            true => Some(self.list_all("tools/list", "tools").await?),
            false => due.tools.then(Vec::new),
        };
        let (resources, resource_templates) = match due.resources && offers("resources") {
            true => (
                Some(self.list_all("resources/list", "resources").await?),
                Some(self.templates().await?),
            ),
            false => (due.resources.then(Vec::new), due.resources.then(Vec::new)),
        };
        let prompts = match due.prompts && offers("prompts") {
            true => Some(self.list_all("prompts/list", "prompts").await?),
            false => due.prompts.then(Vec::new),
        };
        Ok(Lists {
            tools,
            resources,
            resource_templates,
            prompts,
        })
    }

    /// The resource templates. A server that offers resources need not have templates: one that
    /// does not know `resources/templates/list` has none, rather than failing the whole load.
    async fn templates(&self) -> Result<Vec<Item>, ConnectorError> {
        match self
            .list_all("resources/templates/list", "resourceTemplates")
            .await
        {
            Err(ConnectorError::Remote { error, .. })
                if error.code == crate::mcp::jsonrpc::METHOD_NOT_FOUND =>
            {
                Ok(Vec::new())
            }
            other => other,
        }
    }

    /// Every page of a paginated list.
    async fn list_all(&self, method: &str, key: &str) -> Result<Vec<Item>, ConnectorError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let page = self.client.request(method, params, None).await?;
            if let Some(Value::Array(list)) = page.get(key) {
                items.extend(list.iter().filter_map(|v| v.as_object().cloned()));
            }
            cursor = page["nextCursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        Ok(items)
    }
}
