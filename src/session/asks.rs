//! The session's side of backend-to-client traffic: notifications pushed to the client, and
//! requests asked of it (sampling, elicitation, roots) with their answers matched back by id.

use actix::prelude::*;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{AskClient, Push, Session};
use crate::mcp::jsonrpc::{self, RpcError, REQUEST_TIMEOUT};
use crate::mcp::lifecycle::LEVELS;

impl Session {
    /// Matches a client's answer to the request asked of it.
    pub(super) fn answered(&mut self, id: &Value, outcome: Result<Value, Value>) {
        let Some(key) = id.as_str() else { return };
        let Some(waiter) = self.asked.remove(key) else {
            return;
        };
        let answer = outcome.map_err(|error| RpcError {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the client answered with an error")
                .to_string(),
            data: error.get("data").cloned(),
        });
        let _ = waiter.send(answer);
    }

    /// Whether a log message at `level` passes the level the client set.
    fn wants_level(&self, level: Option<&str>) -> bool {
        let rank = level.and_then(|l| LEVELS.iter().position(|known| *known == l));
        rank.unwrap_or(LEVELS.len()) >= self.log_floor()
    }
}

impl Handler<Push> for Session {
    type Result = ();

    fn handle(&mut self, mut msg: Push, ctx: &mut Self::Context) {
        // A resource's update names it as the client does (without the connector's prefix on
        // a virtual server that shows none).
        if msg.0["method"] == "notifications/resources/updated" {
            if let Some(uri) = msg.0["params"]["uri"].as_str() {
                let uri = self.scope.outward_uri(uri).to_string();
                msg.0["params"]["uri"] = Value::String(uri);
            }
        }
        let message = match &self.listen {
            Some(listen) => match listen.tag(msg.0, &self.subscribed) {
                Some(message) => message,
                None => return,
            },
            None => msg.0,
        };
        if message.get("method").and_then(Value::as_str) == Some("notifications/message") {
            let level = message["params"]["level"].as_str();
            if !self.wants_level(level) {
                return;
            }
        }
        self.push(&message, ctx);
    }
}

impl Handler<AskClient> for Session {
    type Result = ResponseFuture<Result<Value, RpcError>>;

    fn handle(&mut self, msg: AskClient, ctx: &mut Self::Context) -> Self::Result {
        let id = format!("mcpgate-{}", self.next_ask);
        self.next_ask += 1;
        let request = jsonrpc::request(json!(id), &msg.method, msg.params);
        let (sender, receiver) = oneshot::channel();
        self.asked.insert(id.clone(), sender);
        let sent_related = msg.related.as_ref().is_some_and(|r| r.send(&request));
        if !sent_related {
            if self.stream.is_none() {
                self.asked.remove(&id);
                return Box::pin(std::future::ready(Err(RpcError::new(
                    -32603,
                    "the client has no open stream to receive the request",
                ))));
            }
            self.push(&request, ctx);
        }
        let deadline = self.gateway.mcp.request_timeout();
        Box::pin(async move {
            match actix_rt::time::timeout(deadline, receiver).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(RpcError::new(-32603, "the client session has ended")),
                Err(_) => Err(RpcError::new(
                    REQUEST_TIMEOUT,
                    "the client did not answer in time",
                )),
            }
        })
    }
}
