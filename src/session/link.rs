//! A [`ClientLink`]: how a backend reaches the client whose request it is serving — to send it
//! notifications (progress, log messages, resource updates) and to ask it requests (sampling,
//! elicitation, roots). Cheap to clone and `Send`, so connectors on other threads can hold it.

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{AskClient, Exchange, Push, Session};
use crate::mcp::jsonrpc::{RpcError, METHOD_NOT_FOUND};
use crate::mcp::lifecycle::LEVELS;

/// The stream of one client request's answer (a Streamable HTTP POST answered as SSE, or the
/// lines of a stateless request on stdio): messages related to that request go there while it
/// is open.
#[derive(Clone, Default)]
pub struct RelatedStream {
    sender: Arc<Mutex<Option<mpsc::Sender<Bytes>>>>,
    /// One JSON message per line, not SSE events.
    lines: bool,
}

impl RelatedStream {
    /// A stream feeding `sender` SSE events.
    pub fn new(sender: mpsc::Sender<Bytes>) -> Self {
        RelatedStream {
            sender: Arc::new(Mutex::new(Some(sender))),
            lines: false,
        }
    }

    /// A stream feeding `sender` one message per line.
    pub fn lines(sender: mpsc::Sender<Bytes>) -> Self {
        RelatedStream {
            lines: true,
            ..RelatedStream::new(sender)
        }
    }

    /// Sends `message` as a line, or as an SSE event in pieces as on a session's stream; false
    /// when the stream is closed or has no room for it.
    pub fn send(&self, message: &Value) -> bool {
        let Ok(guard) = self.sender.lock() else {
            return false;
        };
        let Some(sender) = guard.as_ref() else {
            return false;
        };
        // Lines stay whole: stdio passes them on one by one, beside other requests' lines.
        match self.lines {
            true => sender.try_send(Bytes::from(format!("{message}\n"))).is_ok(),
            false => {
                let event = Bytes::from(format!("event: message\ndata: {message}\n\n"));
                super::stream::send_pieces(sender, event).is_ok()
            }
        }
    }

    /// Closes the stream: later messages take the session's own stream.
    pub fn close(&self) {
        if let Ok(mut guard) = self.sender.lock() {
            guard.take();
        }
    }
}

/// A backend's way back to one client session.
#[derive(Clone)]
pub struct ClientLink {
    /// The session's id.
    pub session_id: Arc<str>,
    /// The session.
    session: Addr<Session>,
    /// The stream of the request being served, if it has one.
    related: Option<RelatedStream>,
    /// What the client declared (in `initialize`, or in a stateless request's `_meta`).
    capabilities: Arc<Value>,
    /// The rank in [`LEVELS`] of the least severe log message the client takes.
    log_floor: usize,
    /// For a stateless request: where requests for the client go.
    exchange: Option<Exchange>,
}

impl ClientLink {
    /// A link to `session`, passing on log messages from `log_floor` (a rank in [`LEVELS`];
    /// `usize::MAX` for none).
    pub fn new(
        session_id: Arc<str>,
        session: Addr<Session>,
        related: Option<RelatedStream>,
        capabilities: Arc<Value>,
        log_floor: usize,
    ) -> Self {
        ClientLink {
            session_id,
            session,
            related,
            capabilities,
            log_floor,
            exchange: None,
        }
    }

    /// The link of a stateless request, whose requests for the client go through `exchange`.
    pub fn with_exchange(mut self, exchange: Option<Exchange>) -> Self {
        self.exchange = exchange;
        self
    }

    /// Sends a notification: on the request's stream while it is open, else on the session's.
    /// A log message below the level the client asked for is dropped.
    pub fn notify(&self, message: Value) {
        if message.get("method").and_then(Value::as_str) == Some("notifications/message") {
            let level = message["params"]["level"].as_str();
            let rank = level.and_then(|l| LEVELS.iter().position(|known| *known == l));
            if rank.unwrap_or(LEVELS.len()) < self.log_floor {
                return;
            }
        }
        if self.related.as_ref().is_some_and(|r| r.send(&message)) {
            return;
        }
        self.session.do_send(Push(message));
    }

    /// Whether the request waits for its client's next attempt (a stateless request parked
    /// with its input requests answered): a backend's new message is not about it.
    pub fn is_parked(&self) -> bool {
        self.exchange.as_ref().is_some_and(Exchange::is_parked)
    }

    /// What the client declared it supports.
    pub fn capabilities(&self) -> &Value {
        &self.capabilities
    }

    /// The least severe log level the client takes, if it takes any.
    pub fn log_level(&self) -> Option<&'static str> {
        LEVELS.get(self.log_floor).copied()
    }

    /// Asks the client a request. A feature the client did not declare is refused here, with an
    /// error for the backend, and never reaches the client.
    pub async fn ask(&self, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
        self.ask_keyed(None, method, params).await
    }

    /// [`ClientLink::ask`], naming the request `key` where the client sees requests by key
    /// (a stateless request's input requests), as the backend named it.
    pub async fn ask_keyed(
        &self,
        key: Option<&str>,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, RpcError> {
        let capability = match method {
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        if let Some(capability) = capability {
            if self.capabilities.get(capability).is_none() {
                if let Some(exchange) = &self.exchange {
                    exchange.capability_missing(capability);
                }
                return Err(RpcError::new(
                    METHOD_NOT_FOUND,
                    format!("the client did not declare the `{capability}` capability"),
                ));
            }
        }
        if let Some(exchange) = &self.exchange {
            return exchange.ask(key, method, params).await;
        }
        let request = AskClient {
            method: method.to_string(),
            params,
            related: self.related.clone(),
        };
        self.session
            .send(request)
            .await
            .unwrap_or_else(|_| Err(RpcError::new(-32603, "the client session has ended")))
    }
}
