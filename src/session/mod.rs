//! The `Session` actor: one per connected client session (a legacy SSE stream or a Streamable
//! HTTP session).
//!
//! Owns the session's protocol state (negotiated revision, declared client capabilities, log
//! level), its outbound event stream if one is open, and its subscription to catalog changes. It
//! answers `initialize` and `logging/setLevel` itself and passes every other request to
//! [`crate::mcp::dispatch`]. HTTP framing belongs to [`crate::transport`].

mod sessions;

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub use sessions::Sessions;

use crate::gateway::Gateway;
use crate::mcp::dispatch::{self, Context as DispatchContext};
use crate::mcp::jsonrpc::{self, Incoming, RpcError, BACKEND_UNAVAILABLE, REQUEST_TIMEOUT};
use crate::mcp::lifecycle;
use crate::registry::{CatalogChanged, Subscribe, Unsubscribe};

/// Events waiting for a slow client, at most; past that the client is taken to be gone.
pub const STREAM_CAPACITY: usize = 1024;

/// How the client reaches the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /sse` + `POST /messages`: every answer goes on the stream.
    LegacySse,
    /// `/mcp`: answers go in the HTTP response; the stream carries only server messages.
    Streamable,
}

/// Handles one message from the client; the answer, if any, comes back (Streamable HTTP) or goes
/// on the stream (legacy SSE, which then gets `None`).
#[derive(Message)]
#[rtype(result = "Option<Value>")]
pub struct HandleMessage(pub Result<Incoming, (Value, RpcError)>);

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

/// Ends the session (`DELETE /mcp`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndSession;

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
    client_capabilities: Value,
    /// The rank of the level set with `logging/setLevel`, if any.
    log_level: Option<usize>,
    /// When the client last sent something.
    last_seen: Instant,
}

impl Session {
    /// Starts a session and enters it in the session table; returns its id and address.
    pub fn start(
        gateway: Arc<Gateway>,
        transport: Transport,
        stream: Option<(mpsc::Sender<Bytes>, u64)>,
    ) -> (Arc<str>, Addr<Session>) {
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let sessions = gateway.sessions.clone();
        let session = Session {
            id: id.clone(),
            transport,
            gateway,
            stream,
            version: None,
            client_capabilities: json!({}),
            log_level: None,
            last_seen: Instant::now(),
        };
        let addr = session.start();
        sessions.insert(id.clone(), addr.clone());
        (id, addr)
    }

    /// The declared client capabilities (for features forwarded to the client).
    pub fn client_capabilities(&self) -> &Value {
        &self.client_capabilities
    }

    /// Puts one JSON-RPC message on the outbound stream, if there is one.
    fn push(&mut self, message: &Value, ctx: &mut Context<Self>) {
        let event = format!("event: message\ndata: {message}\n\n");
        self.push_raw(Bytes::from(event), ctx);
    }

    fn push_raw(&mut self, event: Bytes, ctx: &mut Context<Self>) {
        let Some((sender, _)) = &self.stream else {
            return;
        };
        match sender.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                log::warn!("session {} does not read its stream; ending it", self.id);
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.stream_gone(ctx),
        }
    }

    fn stream_gone(&mut self, ctx: &mut Context<Self>) {
        self.stream = None;
        if self.transport == Transport::LegacySse {
            ctx.stop();
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
                    self.client_capabilities = init.client_capabilities;
                    init.result
                }),
            ),
            "ping" => None,
            _ if self.version.is_none() => {
                Some(Err(RpcError::invalid_request("send initialize first")))
            }
            "logging/setLevel" => Some(lifecycle::set_level(params).map(|level| {
                self.log_level = Some(level);
                json!({})
            })),
            _ => None,
        }
    }

    fn dispatch_context(&self) -> DispatchContext {
        DispatchContext {
            session_id: self.id.clone(),
            catalog: self.gateway.catalog.clone(),
            recorder: self.gateway.recorder.clone(),
            page_size: self.gateway.mcp.page_size,
            metrics: self.gateway.metrics.clone(),
            registry: self.gateway.registry.clone(),
            first_load_wait: self.gateway.mcp.first_load_wait(),
        }
    }

    /// Ends an idle Streamable HTTP session; probes the stream of any session.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.stream.is_some() {
            self.push_raw(Bytes::from_static(b": keep-alive\n\n"), ctx);
        } else if self.transport == Transport::Streamable
            && self.last_seen.elapsed() > self.gateway.server.session_idle_timeout()
        {
            log::info!("session {} idle; ending it", self.id);
            ctx.stop();
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.gateway.registry.do_send(Subscribe {
            session: self.id.to_string(),
            recipient: ctx.address().recipient(),
        });
        ctx.run_interval(self.gateway.server.keep_alive(), |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.gateway.sessions.remove(&self.id);
        self.gateway.registry.do_send(Unsubscribe {
            session: self.id.to_string(),
        });
    }
}

impl Handler<HandleMessage> for Session {
    type Result = ResponseActFuture<Self, Option<Value>>;

    fn handle(&mut self, msg: HandleMessage, _ctx: &mut Self::Context) -> Self::Result {
        self.last_seen = Instant::now();
        let (id, method, params) = match msg.0 {
            Ok(Incoming::Request { id, method, params }) => (id, method, params),
            Ok(Incoming::Notification { .. } | Incoming::Response) => {
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
        let answer: futures_util::future::LocalBoxFuture<'static, Result<Value, RpcError>> =
            match self.answer_here(&method, params.as_ref()) {
                Some(answer) => Box::pin(std::future::ready(answer)),
                None => {
                    let context = self.dispatch_context();
                    let deadline = self.gateway.mcp.request_timeout();
                    Box::pin(async move {
                        let work = dispatch::handle(&context, &method, params);
                        actix_rt::time::timeout(deadline, work)
                            .await
                            .unwrap_or_else(|_| {
                                Err(RpcError::new(
                                    REQUEST_TIMEOUT,
                                    format!("request timed out after {} ms", deadline.as_millis()),
                                ))
                            })
                    })
                }
            };
        Box::pin(answer.into_actor(self).map(move |answer, act, ctx| {
            let reply = match answer {
                Ok(result) => jsonrpc::result(id, result),
                Err(err) => {
                    if matches!(err.code, BACKEND_UNAVAILABLE | REQUEST_TIMEOUT) {
                        log::warn!("session {}: {}", act.id, err.message);
                    }
                    act.log_to_client(&err, ctx);
                    jsonrpc::error(id, &err)
                }
            };
            act.deliver(Some(reply), ctx)
        }))
    }
}

impl Session {
    /// Sends `reply` on the stream for legacy SSE, or hands it back for Streamable HTTP.
    fn deliver(&mut self, reply: Option<Value>, ctx: &mut Context<Self>) -> Option<Value> {
        match (self.transport, reply) {
            (Transport::LegacySse, Some(reply)) => {
                self.push(&reply, ctx);
                None
            }
            (_, reply) => reply,
        }
    }
}

impl Session {
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
        self.push(
            &jsonrpc::notification("notifications/message", Some(params)),
            ctx,
        );
    }
}

impl Handler<AttachStream> for Session {
    type Result = ();

    fn handle(&mut self, msg: AttachStream, _ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        self.stream = Some((msg.sender, msg.generation));
    }
}

impl Handler<StreamClosed> for Session {
    type Result = ();

    fn handle(&mut self, msg: StreamClosed, ctx: &mut Self::Context) {
        if self
            .stream
            .as_ref()
            .is_some_and(|(_, g)| *g == msg.generation)
        {
            self.last_seen = Instant::now();
            self.stream_gone(ctx);
        }
    }
}

impl Handler<EndSession> for Session {
    type Result = ();

    fn handle(&mut self, _msg: EndSession, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<CatalogChanged> for Session {
    type Result = ();

    fn handle(&mut self, msg: CatalogChanged, ctx: &mut Self::Context) {
        if self.version.is_none() {
            return;
        }
        let changes = msg.0;
        for (changed, method) in [
            (changes.tools, "notifications/tools/list_changed"),
            (changes.resources, "notifications/resources/list_changed"),
            (changes.prompts, "notifications/prompts/list_changed"),
        ] {
            if changed {
                self.push(&jsonrpc::notification(method, None), ctx);
            }
        }
    }
}
