//! What an upstream server sends: answers matched to the requests waiting for them, and
//! notifications and requests routed to the client session they belong to (progress by mapped
//! token, log messages and server-to-client requests by the request they came with, else the
//! newest request under way), or to the connector (list changes, resource updates).

use serde_json::{json, Value};

use super::{rpc_error, Failure, McpClient, UpstreamEvent};
use crate::mcp::jsonrpc::{self, classify, Incoming, RpcError};
use crate::session::ClientLink;

impl McpClient {
    /// Handles one message from the server; `related` is the request whose answer stream it
    /// came on, if any.
    pub(crate) fn on_message(&self, message: Value, related: Option<u64>) {
        match classify(message) {
            Ok(Incoming::Response { id, outcome }) => {
                let Some(id) = id.as_u64() else { return };
                let waiter = self.inner.pending.borrow_mut().remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(outcome.map_err(|e| Failure::Rpc(rpc_error(e))));
                }
            }
            Ok(Incoming::Notification { method, params }) => {
                self.on_notification(&method, params, related)
            }
            Ok(Incoming::Request { id, method, params }) => {
                self.on_request(id, method, params, related)
            }
            Err((_, err)) => log::warn!(
                "connector `{}` sent an invalid message: {}",
                self.inner.connector,
                err.message
            ),
        }
    }

    /// The client session a server message belongs to: the request it came with, else the
    /// newest request under way that serves a client.
    fn link_for(&self, related: Option<u64>) -> Option<ClientLink> {
        let calls = self.inner.calls.borrow();
        if let Some(link) = related.and_then(|id| calls.get(&id)?.link.clone()) {
            return Some(link);
        }
        calls
            .iter()
            .filter(|(_, call)| call.link.is_some())
            .max_by_key(|(id, _)| **id)
            .and_then(|(_, call)| call.link.clone())
    }

    fn on_notification(&self, method: &str, params: Option<Value>, related: Option<u64>) {
        match method {
            "notifications/progress" => {
                let mut params = params.unwrap_or_default();
                let token = params["progressToken"].as_str().map(str::to_string);
                let target = token.and_then(|t| self.inner.progress.borrow().get(&t).cloned());
                if let Some((link, original)) = target {
                    params["progressToken"] = original;
                    link.notify(jsonrpc::notification(method, Some(params)));
                }
            }
            "notifications/message" => {
                if let Some(link) = self.link_for(related) {
                    link.notify(jsonrpc::notification(method, params));
                }
            }
            "notifications/tools/list_changed"
            | "notifications/resources/list_changed"
            | "notifications/prompts/list_changed" => {
                self.upstream_event(UpstreamEvent::ListChanged)
            }
            "notifications/subscriptions/acknowledged" => self.on_acknowledged(params),
            "notifications/resources/updated" => {
                if let Some(uri) = params.as_ref().and_then(|p| p["uri"].as_str()) {
                    self.upstream_event(UpstreamEvent::ResourceUpdated(uri.to_string()));
                }
            }
            _ => {}
        }
    }

    fn on_request(&self, id: Value, method: String, params: Option<Value>, related: Option<u64>) {
        let link = self.link_for(related);
        let client = self.clone();
        actix_rt::spawn(async move {
            let answer = match (method.as_str(), link) {
                ("ping", _) => Ok(json!({})),
                (_, Some(link)) => link.ask(&method, params).await,
                ("roots/list", None) => Ok(json!({ "roots": [] })),
                (_, None) => Err(RpcError::new(
                    jsonrpc::METHOD_NOT_FOUND,
                    format!("no client session to forward `{method}` to"),
                )),
            };
            let reply = match answer {
                Ok(result) => jsonrpc::result(id, result),
                Err(err) => jsonrpc::error(id, &err),
            };
            if let Ok(connection) = client.connect().await {
                connection.send(&client, reply, None).await;
            }
        });
    }
}
