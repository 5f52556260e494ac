//! MCP client of one upstream MCP server (the `mcp` and `stdio` connector kinds).
//!
//! Owns the upstream session: connecting (spawning the process, or Streamable HTTP with a fall
//! back to legacy SSE), the `initialize` handshake, request ids, matching answers to requests,
//! and what the server sends on its own: notifications (progress, log messages, list changes,
//! resource updates) and requests (sampling, elicitation, roots), routed to the client session
//! whose request they belong to through its [`ClientLink`]. A connection that breaks is dropped;
//! the next request connects again, and a request that is safe to repeat is repeated once on a
//! fresh session. A server reached with `transport: stateless` has no session (its own
//! submodule). Lives on its connector's thread; shared through `Rc`.

mod connect;
mod http;
mod inbound;
mod listen;
mod resume;
pub mod sse;
mod stateless;
mod stdio;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::{LocalBoxFuture, Shared};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::connector::{ConnectorError, ConnectorSettings};
use crate::mcp::jsonrpc::{self, RpcError};
use crate::session::ClientLink;

pub use http::Mode;
pub use stdio::{end_all as end_all_processes, resolve_env, StdioSpec};

/// The protocol revision the gateway asks upstream servers for.
const UPSTREAM_VERSION: &str = "2025-11-25";

/// What the server sent that its connector must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    /// A list changed (`tools`, `resources` or `prompts`).
    ListChanged,
    /// A subscribed resource changed; the server's own URI.
    ResourceUpdated(String),
    /// The server's stream of messages was opened again afresh: any list and any subscribed
    /// resource may have changed unheard.
    Missed,
    /// A session with the server began (a process started, a session the server had forgotten
    /// initialized again): it holds no subscription of an earlier one.
    Connected,
}

/// How to reach the server.
#[derive(Clone)]
pub enum Target {
    /// Spawn this process and speak over its stdin/stdout.
    Stdio(StdioSpec),
    /// Streamable HTTP at this URL, or legacy SSE (`auto` tries Streamable HTTP first).
    Http {
        /// The endpoint URL.
        url: String,
        /// `auto`, `streamable_http` or `sse`.
        mode: http::Mode,
    },
}

/// A live connection.
enum Connection {
    Stdio(stdio::StdioConnection),
    Http(http::HttpConnection),
}

impl Connection {
    async fn send(&self, client: &McpClient, message: Value, related: Option<u64>) -> Sent {
        match self {
            Connection::Stdio(c) => c.send(&message).await,
            Connection::Http(c) => c.send(client, message, related).await,
        }
    }

    fn close(&self) {
        match self {
            Connection::Stdio(c) => c.close(),
            Connection::Http(c) => c.close(),
        }
    }
}

/// How sending a message went.
pub(crate) enum Sent {
    /// Delivered.
    Ok,
    /// The server no longer knows the session (HTTP 404): connect again.
    SessionGone,
    /// The connection failed.
    Failed(String),
    /// Not sent, and the connection kept: the server is behind on what it was sent.
    Refused(String),
    /// Sent, but the stream that should carry the answer ended without it, and cannot be
    /// resumed: the request fails at once as a bad response; the connection is kept.
    Unanswered(String),
}

/// A request under way and who it serves.
struct Call {
    link: Option<ClientLink>,
}

type Connecting = Shared<LocalBoxFuture<'static, Result<(), ConnectorError>>>;

/// The client; cheap to clone (an `Rc`).
#[derive(Clone)]
pub struct McpClient {
    inner: Rc<Inner>,
}

struct Inner {
    connector: String,
    target: Target,
    headers: Vec<(String, String)>,
    timeout: Duration,
    /// The longest message accepted from the server, in bytes.
    max_message_bytes: usize,
    events: Box<dyn Fn(UpstreamEvent)>,
    connection: RefCell<Option<Rc<Connection>>>,
    connecting: RefCell<Option<Connecting>>,
    next_id: Cell<u64>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Result<Value, Failure>>>>,
    calls: RefCell<HashMap<u64, Call>>,
    progress: RefCell<HashMap<String, (ClientLink, Value)>>,
    capabilities: RefCell<Value>,
    /// For a stateless server: the arguments of each tool that travel as headers too.
    param_headers: RefCell<stateless::ParamHeaders>,
    /// For a stateless server: what its listen stream asks for.
    listen: listen::Wishes,
    /// `auto` found that the server speaks only the stateless revision.
    found_stateless: Cell<bool>,
    /// Counts connections, so that a late end-of-stream of an old one is ignored.
    generation: Cell<u64>,
    /// Connections lost in a row without lasting, and when the last one was lost.
    crashes: Cell<u32>,
    lost_at: Cell<Option<Instant>>,
    connected_at: Cell<Option<Instant>>,
}

/// A connection that lasted this long resets the restart backoff.
const STABLE: Duration = Duration::from_secs(30);
/// Longest wait before reconnecting after a crash.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl McpClient {
    /// A client of the server that `target` names; `events` hears list changes and resource
    /// updates.
    pub fn new(
        settings: &ConnectorSettings,
        target: Target,
        headers: Vec<(String, String)>,
        events: Box<dyn Fn(UpstreamEvent)>,
    ) -> Self {
        McpClient {
            inner: Rc::new(Inner {
                connector: settings.name.clone(),
                target,
                headers,
                timeout: settings.timeout(),
                max_message_bytes: settings.max_response_bytes,
                events,
                connection: RefCell::new(None),
                connecting: RefCell::new(None),
                next_id: Cell::new(1),
                pending: RefCell::new(HashMap::new()),
                calls: RefCell::new(HashMap::new()),
                progress: RefCell::new(HashMap::new()),
                capabilities: RefCell::new(json!({})),
                param_headers: RefCell::new(Default::default()),
                listen: Default::default(),
                found_stateless: Cell::new(false),
                generation: Cell::new(0),
                crashes: Cell::new(0),
                lost_at: Cell::new(None),
                connected_at: Cell::new(None),
            }),
        }
    }

    /// Tells the connector what the server said, or may have said while unheard.
    fn upstream_event(&self, event: UpstreamEvent) {
        (self.inner.events)(event)
    }

    /// The connector's name.
    pub fn connector(&self) -> &str {
        &self.inner.connector
    }

    /// The longest message accepted from the server (`max_response_bytes`): a JSON body, an
    /// event of a stream, a line on stdout.
    pub fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes
    }

    /// What the server declared in `initialize` (empty before the first connection).
    pub fn capabilities(&self) -> Value {
        self.inner.capabilities.borrow().clone()
    }

    /// Sends a request and waits for its answer within the connector's timeout. `link` is the
    /// client session it serves (for progress, logs, sampling, …). When the server answers that
    /// it no longer knows the session (404: the request was not run), a fresh session is
    /// initialized and the request sent once more.
    pub async fn request(
        &self,
        method: &str,
        mut params: Value,
        link: Option<ClientLink>,
    ) -> Result<Value, ConnectorError> {
        // Connecting first: with `auto`, the first connection finds which revision is spoken.
        self.connect().await?;
        if self.is_stateless() {
            return self.request_stateless(method, params, link).await;
        }
        let progress = self.map_progress(&mut params, link.as_ref());
        let result = self
            .request_once(method, params.clone(), link.clone())
            .await;
        let result = match result {
            Err(Failure::SessionGone) => self.request_once(method, params, link).await,
            other => other,
        };
        if let Some(token) = progress {
            self.inner.progress.borrow_mut().remove(&token);
        }
        result.map_err(|failure| failure.into_connector(&self.inner.connector))
    }

    /// Sends a notification (no answer).
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), ConnectorError> {
        let connection = self.connect().await?;
        match connection
            .send(self, jsonrpc::notification(method, params), None)
            .await
        {
            Sent::Ok => Ok(()),
            Sent::SessionGone => Err(self.drop_connection("the server ended the session")),
            Sent::Failed(reason) => Err(self.drop_connection(&reason)),
            Sent::Refused(reason) => Err(self.unreachable(&reason)),
            Sent::Unanswered(reason) => Err(self.bad_response(&reason)),
        }
    }

    async fn request_once(
        &self,
        method: &str,
        params: Value,
        link: Option<ClientLink>,
    ) -> Result<Value, Failure> {
        let connection = self.connect().await.map_err(Failure::Connector)?;
        let id = self.inner.next_id.get();
        self.inner.next_id.set(id + 1);
        let (sender, receiver) = oneshot::channel();
        self.inner.pending.borrow_mut().insert(id, sender);
        self.inner.calls.borrow_mut().insert(id, Call { link });
        let guard = CallGuard { client: self, id };
        let message = jsonrpc::request(json!(id), method, Some(params));
        let exchange = async {
            let sent = connection.send(self, message, Some(id)).await;
            if !matches!(sent, Sent::Ok) {
                // Never delivered: nothing for the server to cancel.
                self.inner.pending.borrow_mut().remove(&id);
            }
            match sent {
                Sent::Ok => {}
                Sent::SessionGone => {
                    self.drop_connection("the server ended the session");
                    return Err(Failure::SessionGone);
                }
                Sent::Failed(reason) => {
                    return Err(Failure::Connector(self.drop_connection(&reason)));
                }
                Sent::Refused(reason) => return Err(Failure::Connector(self.unreachable(&reason))),
                Sent::Unanswered(reason) => {
                    return Err(Failure::Connector(self.bad_response(&reason)));
                }
            }
            match receiver.await {
                Ok(answer) => answer,
                Err(_) => Err(Failure::Connector(
                    self.unreachable("the connection closed"),
                )),
            }
        };
        let outcome = actix_rt::time::timeout(self.inner.timeout, exchange).await;
        let outcome = outcome.unwrap_or_else(|_| {
            Err(Failure::Connector(ConnectorError::Timeout {
                connector: self.inner.connector.clone(),
                timeout_ms: self.inner.timeout.as_millis() as u64,
            }))
        });
        drop(guard);
        outcome
    }

    /// Ends the connection on purpose (idle); the next request connects again.
    pub fn disconnect(&self) {
        if self.inner.connection.borrow().is_some() {
            self.drop_connection("idle");
        }
    }

    /// Forgets the connection (the next request connects again). A process's requests under
    /// way fail at once, as it is ended and will not answer them; over HTTP each request's
    /// answer comes on a stream of its own, which ends by itself.
    fn drop_connection(&self, reason: &str) -> ConnectorError {
        let dropped = self.inner.connection.borrow_mut().take();
        if let Some(connection) = dropped {
            connection.close();
            log::warn!(
                "connector `{}`: upstream connection dropped: {reason}",
                self.inner.connector
            );
            if matches!(*connection, Connection::Stdio(_)) {
                self.fail_pending(reason);
            }
        }
        self.unreachable(reason)
    }

    /// Fails every request waiting for an answer as unreachable, for `reason`.
    fn fail_pending(&self, reason: &str) {
        let pending: Vec<_> = self.inner.pending.borrow_mut().drain().collect();
        for (_, waiter) in pending {
            let _ = waiter.send(Err(Failure::Connector(self.unreachable(reason))));
        }
    }

    /// Whether requests are waiting for the server's answers.
    pub fn busy(&self) -> bool {
        !self.inner.pending.borrow().is_empty()
    }

    /// The end of connection `generation`: if it is the current one, everything waiting fails
    /// and the next connection waits out a backoff that grows with each crash in a row.
    pub(crate) fn connection_lost(&self, generation: u64, reason: &str) {
        let current = generation == self.inner.generation.get();
        if !current || self.inner.connection.borrow().is_none() {
            return;
        }
        let lasted = self.inner.connected_at.get().map(|at| at.elapsed());
        let crashes = match lasted {
            Some(lasted) if lasted >= STABLE => 1,
            _ => self.inner.crashes.get() + 1,
        };
        self.inner.crashes.set(crashes);
        self.inner.lost_at.set(Some(Instant::now()));
        self.drop_connection(reason);
        self.fail_pending(reason);
    }

    fn unreachable(&self, reason: &str) -> ConnectorError {
        ConnectorError::Unreachable {
            connector: self.inner.connector.clone(),
            reason: reason.to_string(),
        }
    }

    fn bad_response(&self, reason: &str) -> ConnectorError {
        ConnectorError::BadResponse {
            connector: self.inner.connector.clone(),
            reason: reason.to_string(),
        }
    }

    /// Replaces the client's progress token with one unique to the gateway.
    fn map_progress(&self, params: &mut Value, link: Option<&ClientLink>) -> Option<String> {
        let link = link?;
        let original = params.get("_meta")?.get("progressToken")?.clone();
        let token = format!("mcpgate-{}-{}", link.session_id, self.inner.next_id.get());
        params["_meta"]["progressToken"] = json!(token);
        self.inner
            .progress
            .borrow_mut()
            .insert(token.clone(), (link.clone(), original));
        Some(token)
    }
}

/// The wait before reconnecting after `crashes` crashes in a row: 250 ms, doubled each time.
fn backoff(crashes: u32) -> Duration {
    Duration::from_millis(250)
        .saturating_mul(1 << crashes.saturating_sub(1).min(10))
        .min(MAX_BACKOFF)
}

/// Cleans up a request however it ends; tells the server when it was abandoned.
struct CallGuard<'a> {
    client: &'a McpClient,
    id: u64,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let inner = &self.client.inner;
        inner.calls.borrow_mut().remove(&self.id);
        let waiting = inner.pending.borrow_mut().remove(&self.id).is_some();
        // Only over the connection that carried the request: a new one would not know it, and
        // connecting to cancel would loop while the server is down (each failed connect drops
        // an `initialize` that would be cancelled in turn).
        let connection = inner.connection.borrow().clone();
        if let (true, Some(connection)) = (waiting, connection) {
            let client = self.client.clone();
            let params = json!({"requestId": self.id, "reason": "cancelled by the gateway"});
            let message = jsonrpc::notification("notifications/cancelled", Some(params));
            actix_rt::spawn(async move {
                let _ = connection.send(&client, message, None).await;
            });
        }
    }
}

/// Why one attempt failed.
pub(crate) enum Failure {
    Connector(ConnectorError),
    Rpc(RpcError),
    SessionGone,
}

impl Failure {
    fn into_connector(self, connector: &str) -> ConnectorError {
        match self {
            Failure::Connector(err) => err,
            Failure::Rpc(error) => ConnectorError::Remote {
                connector: connector.to_string(),
                error,
            },
            Failure::SessionGone => ConnectorError::Unreachable {
                connector: connector.to_string(),
                reason: "the server ended the session twice".into(),
            },
        }
    }
}

/// A JSON-RPC error object from the server.
fn rpc_error(error: Value) -> RpcError {
    RpcError {
        code: error["code"].as_i64().unwrap_or(jsonrpc::INTERNAL_ERROR),
        message: error["message"]
            .as_str()
            .unwrap_or("the server answered with an error")
            .to_string(),
        data: error.get("data").cloned(),
    }
}
