//! Stateless requests on `mcpgate stdio` (revision 2026-07-28), beside its one session: the
//! same as on `/mcp` ([`super::stateless`]) but framed as lines, with no headers to check, and
//! cancelled by `notifications/cancelled`. Each request runs on its own; its related messages,
//! input requests and answer are written as they come. A `subscriptions/listen` request is a
//! listener session writing to stdout until it is cancelled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::Addr;
use actix_web::web;
use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable};
use serde_json::Value;
use tokio::sync::mpsc;

use super::running::Next;
use super::stateless::{self, ask_client, finish, resume, take_ask, DISPATCHED};
use crate::gateway::Gateway;
use crate::mcp::jsonrpc::{self, classify, Incoming, RpcError, METHOD_NOT_FOUND};
use crate::mcp::modern::{self, RequestMeta};
use crate::mcp::scope::Scope;
use crate::session::{EndSession, RelatedStream, Session, Transport, STREAM_CAPACITY};

/// What a request under way can be stopped by.
enum Stop {
    Task(AbortHandle),
    Listener(Addr<Session>),
}

/// The stateless side of `mcpgate stdio`; cheap to clone.
#[derive(Clone)]
pub struct StdioStateless {
    gateway: web::Data<Gateway>,
    out: mpsc::Sender<Bytes>,
    under_way: Arc<Mutex<HashMap<String, Stop>>>,
    /// Requests cancelled, which get no answer.
    cancelled: Arc<AtomicUsize>,
    /// Who the requests come from, to the trainer: the one client of this process, so that a
    /// live experiment's versions stick to it as they stick to a session.
    principal: String,
}

impl StdioStateless {
    /// Writes to `out`.
    pub fn new(gateway: web::Data<Gateway>, out: mpsc::Sender<Bytes>) -> Self {
        StdioStateless {
            gateway,
            out,
            under_way: Arc::default(),
            cancelled: Arc::default(),
            principal: format!("stdio-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// How many requests were cancelled: they are owed no answer.
    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Whether `message` is a request owed an answer (a listen stream is owed none: it ends
    /// when cancelled, or when stdin does).
    pub fn owes_answer(message: &Value) -> bool {
        message.get("id").is_some() && message["method"] != "subscriptions/listen"
    }

    /// Whether `message` is for this side: a request naming a stateless revision in its `_meta`,
    /// or the cancellation of one.
    pub fn takes(&self, message: &Value) -> bool {
        let params = message.get("params");
        if modern::is_stateless(params, None, true) {
            return true;
        }
        let cancelled = message["method"] == "notifications/cancelled";
        let id = params
            .and_then(|p| p.get("requestId"))
            .map(Value::to_string);
        let under_way = self
            .under_way
            .lock()
            .map(|m| id.is_some_and(|id| m.contains_key(&id)));
        cancelled && under_way.unwrap_or(false)
    }

    /// Handles `message` ([`StdioStateless::takes`] said yes).
    pub fn handle(&self, message: Value) {
        match classify(message) {
            Ok(Incoming::Request { id, method, params }) => self.request(id, method, params),
            Ok(Incoming::Notification { params, .. }) => {
                let id = params.as_ref().and_then(|p| p.get("requestId"));
                let stop = id.and_then(|id| self.under_way.lock().ok()?.remove(&id.to_string()));
                match stop {
                    Some(Stop::Task(handle)) => {
                        handle.abort();
                        self.cancelled.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(Stop::Listener(session)) => session.do_send(EndSession),
                    None => {}
                }
            }
            Ok(Incoming::Response { .. }) => {}
            Err((id, error)) => self.write(jsonrpc::error(id, &error)),
        }
    }

    /// Writes `message` as a line, waiting for room rather than dropping it.
    fn write(&self, message: Value) {
        let (out, line) = (self.out.clone(), Bytes::from(format!("{message}\n")));
        actix_rt::spawn(async move {
            let _ = out.send(line).await;
        });
    }

    fn refuse(&self, id: Value, error: RpcError) {
        self.write(jsonrpc::error(id, &error));
    }

    fn request(&self, id: Value, method: String, params: Option<Value>) {
        let meta = match modern::request_meta(params.as_ref()) {
            Ok(meta) => meta,
            Err(error) => return self.refuse(id, error),
        };
        if !modern::VERSIONS.contains(&meta.version.as_str()) {
            return self.refuse(id, modern::unsupported_version(&meta.version));
        }
        let mcp = &self.gateway.mcp;
        match method.as_str() {
            "server/discover" => {
                let result = modern::complete(&method, modern::discover(mcp), mcp, false);
                self.write(jsonrpc::result(id, result));
            }
            "subscriptions/listen" => self.listen(id, params),
            m if DISPATCHED.contains(&m) => self.run(id, method, params, meta),
            m => {
                let message = match modern::is_removed(m) {
                    true => format!("`{m}` is not a method of revision 2026-07-28"),
                    false => format!("unknown method `{m}`"),
                };
                self.refuse(id, RpcError::new(METHOD_NOT_FOUND, message));
            }
        }
    }

    /// A listener session writing lines to stdout, until cancelled.
    fn listen(&self, id: Value, params: Option<Value>) {
        let listen = match super::listen::read(id.clone(), params.as_ref()) {
            Ok(listen) => listen,
            Err(error) => return self.refuse(id, error),
        };
        let stream = (Transport::Stdio, None, (self.out.clone(), 0));
        let shared = self.gateway.clone().into_inner();
        match Session::start_listener(shared, Scope::All, stream, listen) {
            Ok(session) => {
                if let Ok(mut map) = self.under_way.lock() {
                    map.insert(id.to_string(), Stop::Listener(session));
                }
            }
            Err(full) => {
                let message = format!("no room for a listener: server.max_sessions ({})", full.max);
                self.refuse(id, RpcError::new(jsonrpc::BACKEND_UNAVAILABLE, message));
            }
        }
    }

    /// Runs a method, or takes up the request its `requestState` names, writing what comes.
    fn run(&self, id: Value, method: String, params: Option<Value>, meta: RequestMeta) {
        let this = self.clone();
        let key = id.to_string();
        let (handle, registration) = AbortHandle::new_pair();
        if let Ok(mut map) = self.under_way.lock() {
            map.insert(key.clone(), Stop::Task(handle));
        }
        let work = async move {
            let principal = Some(this.principal.clone());
            // `null` is no state, as for `inputResponses`: a first attempt.
            let state = params.as_ref().and_then(|p| p.get("requestState"));
            let state = state.filter(|s| !s.is_null()).cloned();
            let gateway = &this.gateway;
            let mut running = match state {
                Some(state) => {
                    match resume(gateway, (&method, params.as_ref(), &state), principal, None) {
                        Ok(running) => running,
                        Err(refusal) => return this.refuse(id, refusal.error),
                    }
                }
                None => {
                    let (sender, events) = mpsc::channel(STREAM_CAPACITY);
                    let related = (RelatedStream::lines(sender), events);
                    let request = (&id, method.as_str(), &params);
                    stateless::start(gateway, Scope::All, &meta, request, principal, related)
                }
            };
            loop {
                if !running.waiting.is_empty() {
                    let (_, body) = ask_client(gateway, running, id).await;
                    return this.write(body);
                }
                match running.next().await {
                    Next::Event(event) => {
                        let _ = this.out.send(event).await;
                    }
                    Next::Ask(ask) => take_ask(&mut running, ask).await,
                    Next::Done(reply) => {
                        let (_, body) = finish(gateway, &running, reply, &id);
                        return this.write(body);
                    }
                }
            }
        };
        let under_way = self.under_way.clone();
        actix_rt::spawn(async move {
            let _ = Abortable::new(work, registration).await;
            if let Ok(mut map) = under_way.lock() {
                map.remove(&key);
            }
        });
    }
}
