//! The stateless revision (2026-07-28) towards a server (`transport: stateless`): no
//! `initialize` and no session, `server/discover` instead; every request carries its revision
//! and the capabilities of the client it serves in `_meta`, and the headers the revision wants
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*` for the arguments a tool's
//! schema marks with `x-mcp-header`). An answer that needs the client's input
//! (`resultType: "input_required"`) is put to the client through its [`ClientLink`], under the
//! server's keys, and the request sent again with the replies; list changes and resource
//! updates come on a `subscriptions/listen` stream (its own submodule).

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::{Failure, McpClient, Mode, Target};
use crate::connector::ConnectorError;
use crate::mcp::jsonrpc::{self, RpcError};
use crate::mcp::modern;
use crate::session::ClientLink;

/// The revision spoken.
const VERSION: &str = modern::VERSIONS[0];

/// Rounds of input requests one request may go through.
const MAX_ROUNDS: usize = 10;

/// Per tool, the arguments that travel as headers too: (argument, header name).
pub(super) type ParamHeaders = HashMap<String, Vec<(String, String)>>;

/// The headers of one request.
pub(super) fn headers(mcp: &McpClient, message: &Value) -> Vec<(String, String)> {
    let method = message["method"].as_str().unwrap_or_default();
    let params = &message["params"];
    let mut headers = vec![
        ("mcp-protocol-version".to_string(), VERSION.to_string()),
        ("mcp-method".to_string(), encode(method)),
    ];
    let name = match method {
        "tools/call" | "prompts/get" => params["name"].as_str(),
        "resources/read" => params["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = name {
        headers.push(("mcp-name".to_string(), encode(name)));
    }
    if method == "tools/call" {
        let marked = mcp.inner.param_headers.borrow();
        for (argument, header) in marked.get(name.unwrap_or_default()).into_iter().flatten() {
            let value = &params["arguments"][argument];
            let text = match value {
                Value::Null => continue,
                Value::String(s) => encode(s),
                other => other.to_string(),
            };
            headers.push((format!("mcp-param-{header}"), text));
        }
    }
    headers
}

/// A header value as the revision writes it: as is when it is plain visible ASCII without
/// edge spaces, else `=?base64?…?=`.
fn encode(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b)) && value.trim() == value;
    match plain && !value.starts_with("=?base64?") {
        true => value.to_string(),
        false => format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        ),
    }
}

/// `params` with the revision's `_meta`: the revision, and the capabilities and log level of
/// the client `link` serves (none without one).
pub(super) fn with_meta(mut params: Value, link: Option<&ClientLink>) -> Value {
    if !params.is_object() {
        params = json!({});
    }
    let capabilities = link.map_or(json!({}), |l| l.capabilities().clone());
    let meta = params["_meta"].as_object_mut().map(std::mem::take);
    let mut meta = meta.unwrap_or_default();
    meta.insert(modern::META_VERSION.into(), json!(VERSION));
    meta.insert(modern::META_CAPABILITIES.into(), capabilities);
    if let Some(level) = link.and_then(ClientLink::log_level) {
        meta.insert(modern::META_LOG_LEVEL.into(), json!(level));
    }
    params["_meta"] = Value::Object(meta);
    params
}

/// Notes which arguments of each listed tool travel as headers too.
pub(super) fn learn_param_headers(headers: &mut ParamHeaders, listed: &Value) {
    for tool in listed["tools"].as_array().into_iter().flatten() {
        let Some(name) = tool["name"].as_str() else {
            continue;
        };
        let properties = tool["inputSchema"]["properties"].as_object();
        let marked: Vec<(String, String)> = properties
            .into_iter()
            .flatten()
            .filter_map(|(argument, schema)| {
                let header = schema.get("x-mcp-header")?.as_str()?;
                Some((argument.clone(), header.to_ascii_lowercase()))
            })
            .collect();
        match marked.is_empty() {
            true => headers.remove(name),
            false => headers.insert(name.to_string(), marked),
        };
    }
}

/// Whether a result needs the client's input first.
pub(super) fn needs_input(result: &Value) -> bool {
    result["resultType"] == "input_required"
}

/// Puts an input-required result's requests to the client and returns `params` for the next
/// attempt, with the replies and the server's `requestState`; `round` counts attempts.
pub(super) async fn answer_input(
    params: &Value,
    result: &Value,
    link: Option<&ClientLink>,
    round: usize,
) -> Result<Value, RpcError> {
    let Some(link) = link.filter(|_| round < MAX_ROUNDS) else {
        let message = match link {
            None => "the server asked for input, and no client is there to give it".to_string(),
            Some(_) => format!("the server asked for input {MAX_ROUNDS} times over"),
        };
        return Err(RpcError::new(jsonrpc::INTERNAL_ERROR, message));
    };
    // Asked together, so that a stateless client gets them in one round.
    let requests = result["inputRequests"].as_object().into_iter().flatten();
    let asks = requests.map(|(key, request)| async move {
        let method = request["method"].as_str().unwrap_or_default();
        let params = request.get("params").cloned();
        let reply = link.ask_keyed(Some(key), method, params).await?;
        Ok::<_, RpcError>((key.clone(), reply))
    });
    let replies: Map<String, Value> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut next = params.clone();
    next["inputResponses"] = Value::Object(replies);
    match result.get("requestState") {
        Some(state) => next["requestState"] = state.clone(),
        None => {
            if let Some(p) = next.as_object_mut() {
                p.remove("requestState");
            }
        }
    }
    Ok(next)
}

/// A complete result as the older revisions know it: without the revision's own fields.
pub(super) fn plain(mut result: Value) -> Value {
    if let Some(fields) = result.as_object_mut() {
        for field in ["resultType", "ttlMs", "cacheScope"] {
            fields.remove(field);
        }
        if let Some(Value::Object(meta)) = fields.get_mut("_meta") {
            meta.remove("io.modelcontextprotocol/serverInfo");
            if meta.is_empty() {
                fields.remove("_meta");
            }
        }
    }
    result
}

impl McpClient {
    /// Whether the server is spoken to statelessly (revision 2026-07-28).
    pub(super) fn is_stateless(&self) -> bool {
        self.http_mode() == Mode::Stateless && matches!(self.inner.target, Target::Http { .. })
    }

    /// [`McpClient::request`] to a stateless server: the revision's `_meta`, its methods
    /// (`server/discover` for `ping`; nothing to send for `logging/setLevel`, whose level goes
    /// in each request), and the client's input when the server asks for it.
    pub(super) async fn request_stateless(
        &self,
        method: &str,
        mut params: Value,
        link: Option<ClientLink>,
    ) -> Result<Value, ConnectorError> {
        let method = match method {
            "ping" => "server/discover",
            "logging/setLevel" => return Ok(json!({})),
            "resources/subscribe" | "resources/unsubscribe" => {
                let subscribe = method == "resources/subscribe";
                let outcome = self.subscribe_statelessly(subscribe, &params).await;
                return outcome.map_err(|e| Failure::Rpc(e).into_connector(&self.inner.connector));
            }
            other => other,
        };
        let progress = self.map_progress(&mut params, link.as_ref());
        let mut params = with_meta(params, link.as_ref());
        let mut round = 0;
        let outcome = loop {
            let result = match self
                .request_once(method, params.clone(), link.clone())
                .await
            {
                Ok(result) => result,
                Err(failure) => break Err(failure),
            };
            if !needs_input(&result) {
                break Ok(result);
            }
            round += 1;
            match answer_input(&params, &result, link.as_ref(), round).await {
                Ok(next) => params = next,
                Err(error) => break Err(Failure::Rpc(error)),
            }
        };
        if let Some(token) = progress {
            self.inner.progress.borrow_mut().remove(&token);
        }
        let result = outcome.map_err(|failure| failure.into_connector(&self.inner.connector))?;
        if method == "tools/list" {
            let mut headers = self.inner.param_headers.borrow_mut();
            learn_param_headers(&mut headers, &result);
        }
        Ok(plain(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_plain_or_base64() {
        assert_eq!(encode("tools/call"), "tools/call");
        assert_eq!(encode("  padded "), "=?base64?ICBwYWRkZWQg?=");
        assert_eq!(encode("café"), "=?base64?Y2Fmw6k=?=");
        assert_eq!(encode("=?base64?x?="), "=?base64?PT9iYXNlNjQ/eD89?=");
    }

    #[test]
    fn meta_names_the_revision_and_keeps_what_was_there() {
        let params = with_meta(json!({"name": "t", "_meta": {"progressToken": "p"}}), None);
        assert_eq!(params["_meta"]["progressToken"], "p");
        assert_eq!(params["_meta"][modern::META_VERSION], VERSION);
        assert_eq!(params["_meta"][modern::META_CAPABILITIES], json!({}));
        assert!(params["_meta"].get(modern::META_LOG_LEVEL).is_none());
    }

    #[test]
    fn marked_arguments_are_learnt_per_tool() {
        let mut headers = ParamHeaders::new();
        let listed = json!({"tools": [
            {"name": "a", "inputSchema": {"properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}},
            {"name": "b", "inputSchema": {"properties": {"q": {"type": "string"}}}},
        ]});
        learn_param_headers(&mut headers, &listed);
        assert_eq!(headers["a"], [("region".to_string(), "region".to_string())]);
        assert!(!headers.contains_key("b"));
    }

    #[test]
    fn a_complete_result_loses_the_revisions_fields() {
        let result = json!({"content": [], "resultType": "complete", "ttlMs": 5,
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "s"}}});
        assert_eq!(plain(result), json!({"content": []}));
    }
}
