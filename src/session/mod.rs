//! The `Session` actor: one per connected client session (a legacy SSE stream, a Streamable
//! HTTP session, or stdio).
//!
//! Owns the session's protocol state (negotiated revision, declared client capabilities, log
//! level), its outbound event stream if one is open, the requests under way (so a
//! `notifications/cancelled` can stop one), the requests it forwards to the client on a backend's
//! behalf (sampling, elicitation, roots) until their answers come back, and its subscription to
//! catalog changes. It answers `initialize` and `logging/setLevel` itself and passes every other
//! request to [`crate::mcp::dispatch`]. HTTP framing belongs to [`crate::transport`].

mod asks;
mod exchange;
mod link;
mod listen;
mod sessions;
mod start;
mod stream;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

pub use exchange::{Ask, Asks, Exchange};
pub use link::{ClientLink, RelatedStream};
pub use listen::Listen;
use sessions::Presence;
pub use sessions::{Found, Sessions};

use crate::connector::Forward;
use crate::gateway::Gateway;
use crate::mcp::dispatch::{self, Context as DispatchContext};
use crate::mcp::jsonrpc::{self, Incoming, RpcError, BACKEND_UNAVAILABLE, REQUEST_TIMEOUT};
use crate::mcp::lifecycle;
use crate::mcp::scope::Scope;
use crate::registry::{Subscribe, Unsubscribe};

/// Events waiting for a slow client, at most; past that the client is taken to be gone.
pub const STREAM_CAPACITY: usize = 1024;

/// The JSON-RPC code of a request the client cancelled.
const CANCELLED: i64 = -32800;

/// How the client reaches the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /sse` + `POST /messages`: every answer goes on the stream.
    LegacySse,
    /// `/mcp`: answers go in the HTTP response; the stream carries only server messages.
    Streamable,
    /// stdin/stdout: every message goes on the stream.
    Stdio,
    /// One stateless request on `/mcp` (revision 2026-07-28): the session lives as long as the
    /// request, in no table, and its answer goes in the HTTP response.
    Stateless,
}

/// A new session was refused: `max` sessions are open, in all (`server.max_sessions`) or of
/// its client (`server.max_sessions_per_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionsFull {
    /// The limit that was reached.
    pub max: usize,
    /// Whether it is the client's own.
    pub per_client: bool,
}

impl Transport {
    /// Its name in metrics: `sse`, `streamable` or `stdio`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::LegacySse => "sse",
            Transport::Streamable => "streamable",
            Transport::Stdio => "stdio",
            Transport::Stateless => "stateless",
        }
    }
}

/// Handles one message from the client; the answer, if any, comes back (Streamable HTTP) or goes
/// on the stream (legacy SSE, stdio: then `None` comes back).
#[derive(Message)]
#[rtype(result = "Option<Value>")]
pub struct HandleMessage {
    /// The message, or why it is not one.
    pub message: Result<Incoming, (Value, RpcError)>,
    /// The stream of this request's answer, when it is answered as SSE.
    pub related: Option<RelatedStream>,
}

impl HandleMessage {
    /// A message without a stream of its own.
    pub fn plain(message: Result<Incoming, (Value, RpcError)>) -> Self {
        HandleMessage {
            message,
            related: None,
        }
    }
}

/// Opens (or replaces) the session's outbound event stream.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachStream {
    /// Where events go.
    pub sender: mpsc::Sender<Bytes>,
    /// Tells this stream apart from the one it replaces.
    pub generation: u64,
}

/// The client closed the outbound stream of `generation`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamClosed {
    /// Which stream closed.
    pub generation: u64,
}

/// Ends the session (`DELETE /mcp`, end of stdin).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndSession;

/// Sends a notification to the client on the session's stream (log messages are filtered by
/// the level the client set).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Push(pub Value);

/// Asks the client a request on a backend's behalf and waits for its answer.
#[derive(Message)]
#[rtype(result = "Result<Value, RpcError>")]
pub struct AskClient {
    /// The method, such as `sampling/createMessage`.
    pub method: String,
    /// Its params.
    pub params: Option<Value>,
    /// The stream of the client request being served, if open.
    pub related: Option<RelatedStream>,
}

/// One client session.
pub struct Session {
    /// Its id, as the client knows it.
    id: Arc<str>,
    /// How the client reaches it.
    transport: Transport,
    /// Shared gateway state.
    gateway: Arc<Gateway>,
    /// The open outbound stream and its generation.
    stream: Option<(mpsc::Sender<Bytes>, u64)>,
    /// The negotiated revision, once `initialize` succeeded.
    version: Option<&'static str>,
    /// What the client declared it supports.
    client_capabilities: Arc<Value>,
    /// The rank of the level set with `logging/setLevel`, if any.
    log_level: Option<usize>,
    /// When the client last sent something.
    last_seen: Instant,
    /// Requests under way, by their id as JSON text, to cancel them.
    in_flight: HashMap<String, AbortHandle>,
    /// Requests sent to the client, by id, waiting for its answer.
    asked: HashMap<String, oneshot::Sender<Result<Value, RpcError>>>,
    /// The number of the next request sent to the client.
    next_ask: u64,
    /// What it sees of the catalog.
    scope: Scope,
    /// For a stateless request: where backends' requests for the client go.
    exchange: Option<Exchange>,
    /// Who the client is to the trainer (sticky versions, signals): the session's id, or for a
    /// stateless request its principal's key (empty when it names none).
    client: Arc<str>,
    /// For a `subscriptions/listen` stream: the changes the client listens for.
    listen: Option<Listen>,
    /// The resources (as the client names them) this session subscribed to, unsubscribed when
    /// it ends.
    subscribed: HashSet<String>,
    /// What the session table knows of the client's presence (none for a stateless request).
    presence: Option<Arc<Presence>>,
}

impl Session {
    /// The rank of the least severe log message the client takes: all by default, none for a
    /// stateless request that names no level.
    fn log_floor(&self) -> usize {
        match (self.log_level, self.transport) {
            (Some(level), _) => level,
            (None, Transport::Stateless) => usize::MAX,
            (None, _) => 0,
        }
    }

    /// Answers a request that changes session state, or returns `None` to dispatch it.
    fn answer_here(
        &mut self,
        method: &str,
        params: Option<&Value>,
    ) -> Option<Result<Value, RpcError>> {
        match method {
            "initialize" if self.version.is_some() => Some(Err(RpcError::invalid_request(
                "the session is already initialized",
            ))),
            "initialize" => Some(
                lifecycle::initialize(params, &self.gateway.mcp).map(|init| {
                    self.version = Some(init.version);
                    self.client_capabilities = Arc::new(init.client_capabilities);
                    init.result
                }),
            ),
            "ping" => None,
            _ if self.version.is_none() => {
                Some(Err(RpcError::invalid_request("send initialize first")))
            }
            "logging/setLevel" => Some(lifecycle::set_level(params).map(|level| {
                self.log_level = Some(level);
                self.forward_level(level);
                json!({})
            })),
            _ => None,
        }
    }

    /// Passes the level on to every MCP backend, whose log messages this session then filters.
    fn forward_level(&self, level: usize) {
        let snapshot = self.gateway.catalog.load();
        for name in &snapshot.streaming {
            if let Some(addr) = snapshot.connectors.get(name) {
                addr.do_send(Forward {
                    method: "logging/setLevel".into(),
                    params: json!({ "level": lifecycle::LEVELS[level] }),
                    client: None,
                });
            }
        }
    }

    fn dispatch_context(
        &self,
        related: Option<RelatedStream>,
        ctx: &Context<Self>,
    ) -> DispatchContext {
        let client = ClientLink::new(
            self.id.clone(),
            ctx.address(),
            related,
            self.client_capabilities.clone(),
            self.log_floor(),
        )
        .with_exchange(self.exchange.clone());
        DispatchContext {
            session_id: self.client.clone(),
            catalog: self.gateway.catalog.clone(),
            recorder: self.gateway.recorder.clone(),
            page_size: self.gateway.mcp.page_size,
            metrics: self.gateway.metrics.clone(),
            registry: self.gateway.registry.clone(),
            first_load_wait: self.gateway.mcp.first_load_wait(),
            client,
            scope: self.scope.clone(),
            feedback: self.gateway.feedback.clone(),
            feedback_tool: self.gateway.feedback_tool.clone(),
            served: self.gateway.served.clone(),
        }
    }

    /// Handles a notification from the client.
    fn notified(&mut self, method: &str, params: Option<&Value>) {
        if method == "notifications/cancelled" {
            let id = params
                .and_then(|p| p.get("requestId"))
                .map(Value::to_string);
            if let Some(handle) = id.and_then(|id| self.in_flight.remove(&id)) {
                handle.abort();
            }
        }
    }

    /// Sends `reply` on the stream for legacy SSE and stdio, or hands it back for Streamable
    /// HTTP.
    fn deliver(&mut self, reply: Option<Value>, ctx: &mut Context<Self>) -> Option<Value> {
        match (self.transport, reply) {
            (Transport::LegacySse | Transport::Stdio, Some(reply)) => {
                self.push(&reply, ctx);
                None
            }
            (_, reply) => reply,
        }
    }

    /// The start of the session's id, for the log: enough to tell sessions apart, too little
    /// to use the session (its id is all a client needs to).
    pub(super) fn shown_id(&self) -> String {
        format!("{}…", self.id.get(..8).unwrap_or(""))
    }

    /// Tells the client of a backend failure with `notifications/message`, if it asked for
    /// messages at level `error` or below.
    fn log_to_client(&mut self, err: &RpcError, ctx: &mut Context<Self>) {
        let error_rank = 4;
        if err.code != BACKEND_UNAVAILABLE || self.log_level.is_none_or(|l| l > error_rank) {
            return;
        }
        let params = json!({
            "level": lifecycle::LEVELS[error_rank],
            "logger": "mcpgate",
            "data": {"message": err.message, "detail": err.data},
        });
        let message = jsonrpc::notification("notifications/message", Some(params));
        self.push(&message, ctx);
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.exchange.is_some() {
            return;
        }
        self.gateway.registry.do_send(Subscribe {
            session: self.id.to_string(),
            recipient: ctx.address().recipient(),
        });
        self.gateway.metrics.sessions_open.inc();
        ctx.run_interval(self.gateway.server.keep_alive(), |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        for handle in self.in_flight.values() {
            handle.abort();
        }
        self.unsubscribe_all(ctx);
        if self.exchange.is_some() {
            return;
        }
        self.gateway.metrics.sessions_open.dec();
        self.gateway.sessions.remove(&self.id);
        let held = crate::transport::forward::Held::Session(&self.id);
        crate::transport::forward::release(&self.gateway, held);
        self.gateway.registry.do_send(Unsubscribe {
            session: self.id.to_string(),
        });
    }
}

impl Handler<HandleMessage> for Session {
    type Result = ResponseActFuture<Self, Option<Value>>;

    fn handle(&mut self, msg: HandleMessage, ctx: &mut Self::Context) -> Self::Result {
        self.heard();
        let (id, method, params) = match msg.message {
            Ok(Incoming::Request { id, method, params }) => (id, method, params),
            Ok(Incoming::Notification { method, params }) => {
                self.notified(&method, params.as_ref());
                return Box::pin(fut::ready(None));
            }
            Ok(Incoming::Response { id, outcome }) => {
                self.answered(&id, outcome);
                return Box::pin(fut::ready(None));
            }
            Err((id, err)) => {
                let reply = jsonrpc::error(id, &err);
                return Box::pin(
                    fut::ready(Some(reply))
                        .map(|reply, act: &mut Self, ctx| act.deliver(reply, ctx)),
                );
            }
        };
        let key = id.to_string();
        let subscription = listen::subscription(&method, params.as_ref());
        // A subscription is the session's from its request on, so that a session ending before
        // the backend's answer still withdraws it.
        let fresh = match &subscription {
            Some((true, uri)) => self.subscribed.insert(uri.clone()),
            _ => false,
        };
        let answer: futures_util::future::LocalBoxFuture<'static, Result<Value, RpcError>> =
            match self.answer_here(&method, params.as_ref()) {
                Some(answer) => Box::pin(std::future::ready(answer)),
                None => {
                    let context = self.dispatch_context(msg.related, ctx);
                    let deadline = self.gateway.mcp.request_timeout();
                    let (abort, registration) = AbortHandle::new_pair();
                    self.in_flight.insert(key.clone(), abort);
                    let work = async move {
                        let work = dispatch::handle(&context, &method, params);
                        actix_rt::time::timeout(deadline, work)
                            .await
                            .unwrap_or_else(|_| {
                                Err(RpcError::new(
                                    REQUEST_TIMEOUT,
                                    format!("request timed out after {} ms", deadline.as_millis()),
                                ))
                            })
                    };
                    Box::pin(async move {
                        Abortable::new(work, registration)
                            .await
                            .unwrap_or_else(|_| Err(RpcError::new(CANCELLED, "request cancelled")))
                    })
                }
            };
        Box::pin(answer.into_actor(self).map(move |answer, act, ctx| {
            let cancelled = act.in_flight.remove(&key).is_none()
                && matches!(&answer, Err(e) if e.code == CANCELLED);
            match (&answer, subscription) {
                (Ok(_), Some((subscribed, uri))) => act.subscribed(subscribed, uri),
                (Err(_), Some((true, uri))) if fresh => act.subscribed(false, uri),
                _ => {}
            }
            let reply = match answer {
                Ok(result) => jsonrpc::result(id, result),
                Err(err) => {
                    if matches!(err.code, BACKEND_UNAVAILABLE | REQUEST_TIMEOUT) {
                        log::warn!("session {}: {}", act.shown_id(), err.message);
                    }
                    act.log_to_client(&err, ctx);
                    jsonrpc::error(id, &err)
                }
            };
            match (cancelled, act.transport) {
                (true, Transport::LegacySse | Transport::Stdio) => None,
                _ => act.deliver(Some(reply), ctx),
            }
        }))
    }
}

impl Handler<EndSession> for Session {
    type Result = ();

    fn handle(&mut self, _msg: EndSession, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
