//! What an upstream server sends: answers matched to the requests waiting for them, and
//! notifications and requests routed to the client session they belong to (progress by mapped
//! token, log messages and server-to-client requests by the request they came with, else the
//! one session with requests under way, parked ones aside; with several, none), or to the
//! connector (list changes, resource updates).

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
    /// one session with requests under way (its newest), leaving out requests parked until
    /// their client's next attempt when others are under way. `Err` when requests of several
    /// sessions remain: nothing says whose the message is, and a guess could show one client
    /// another's data.
    fn link_for(&self, related: Option<u64>) -> Result<Option<ClientLink>, Ambiguous> {
        let calls = self.inner.calls.borrow();
        if let Some(link) = related.and_then(|id| calls.get(&id)?.link.clone()) {
            return Ok(Some(link));
        }
        let serving: Vec<(u64, &ClientLink)> = calls
            .iter()
            .filter_map(|(id, call)| Some((*id, call.link.as_ref()?)))
            .collect();
        let active: Vec<(u64, &ClientLink)> = serving
            .iter()
            .filter(|(_, link)| !link.is_parked())
            .copied()
            .collect();
        let candidates = if active.is_empty() { serving } else { active };
        let Some(&(_, first)) = candidates.first() else {
            return Ok(None);
        };
        if candidates
            .iter()
            .any(|(_, link)| link.session_id != first.session_id)
        {
            return Err(Ambiguous);
        }
        let newest = candidates.iter().max_by_key(|(id, _)| *id);
        Ok(newest.map(|(_, link)| (*link).clone()))
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
            "notifications/message" => match self.link_for(related) {
                Ok(Some(link)) => link.notify(jsonrpc::notification(method, params)),
                Ok(None) => {}
                Err(Ambiguous) => log::debug!(
                    "connector `{}`: a log message while several sessions' requests are under \
                     way is not passed on",
                    self.inner.connector
                ),
            },
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
                (_, Ok(Some(link))) => link.ask(&method, params).await,
                ("roots/list", Ok(None)) => Ok(json!({ "roots": [] })),
                (_, Ok(None)) => Err(RpcError::new(
                    jsonrpc::METHOD_NOT_FOUND,
                    format!("no client session to forward `{method}` to"),
                )),
                (_, Err(Ambiguous)) => Err(RpcError::new(
                    jsonrpc::METHOD_NOT_FOUND,
                    format!(
                        "requests of several client sessions are under way; `{method}` names \
                         none of them, so it is not forwarded"
                    ),
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

/// Requests of several client sessions are under way, and a server message names none.
struct Ambiguous;
