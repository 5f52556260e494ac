//! One stateless request under way: what it waits on (the messages related to it, backends'
//! requests for the client, its answer), and the table of requests parked until the client
//! replies to their input requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::session::{Ask, Asks, EndSession, Session};

/// How long after a backend's request for the client others are awaited, to ask them together.
const GATHER: Duration = Duration::from_millis(50);

/// What came first.
pub enum Next {
    /// A message related to the request (progress, a log message), framed as an SSE event.
    Event(Bytes),
    /// A backend's request for the client.
    Ask(Ask),
    /// The answer (none when the request was cancelled).
    Done(Option<Value>),
}

/// A stateless request under way.
pub struct Running {
    /// Its session, ended with the request.
    session: Addr<Session>,
    /// Messages related to it.
    events: mpsc::Receiver<Bytes>,
    /// Backends' requests for the client, and what the client failed to declare.
    pub asks: Asks,
    /// The answer.
    answer: oneshot::Receiver<Option<Value>>,
    /// The method asked.
    pub method: String,
    /// The params, less `_meta`, `inputResponses` and `requestState`, as canonical JSON: a
    /// retry must carry the same.
    pub params: String,
    /// The `Authorization` header it came with: a retry must carry the same.
    pub principal: Option<String>,
    /// The virtual server it came to (none for the whole catalog's): a retry must come there.
    pub endpoint: Option<String>,
    /// Requests for the client not yet replied to, by their key in `inputRequests`.
    pub waiting: Vec<(String, Ask)>,
    /// The number of the next input request's key.
    next_key: u64,
}

impl Running {
    /// A request whose session is `session`.
    pub fn new(
        session: Addr<Session>,
        events: mpsc::Receiver<Bytes>,
        asks: Asks,
        answer: oneshot::Receiver<Option<Value>>,
        method: &str,
        params: Option<&Value>,
        principal: Option<String>,
    ) -> Self {
        Running {
            session,
            events,
            asks,
            answer,
            method: method.to_string(),
            params: canonical(params),
            principal,
            endpoint: None,
            waiting: Vec::new(),
            next_key: 1,
        }
    }

    /// Waits for what comes next.
    pub async fn next(&mut self) -> Next {
        tokio::select! {
            biased;
            Some(event) = self.events.recv() => Next::Event(event),
            Some(ask) = self.asks.receiver.recv() => Next::Ask(ask),
            answer = &mut self.answer => Next::Done(answer.ok().flatten()),
        }
    }

    /// Keeps `ask` until the client replies, with the requests that follow it within
    /// [`GATHER`]: a backend asking several things at once gets them in one round.
    pub async fn wait_for(&mut self, ask: Ask) {
        self.keep(ask);
        let deadline = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(more)) =
            tokio::time::timeout_at(deadline, self.asks.receiver.recv()).await
        {
            self.keep(more);
        }
    }

    /// Keeps `ask` under the backend's key, or a key of the gateway's (`sampling-1`) when the
    /// backend named none or its key is taken.
    fn keep(&mut self, ask: Ask) {
        let taken = |key: &str| self.waiting.iter().any(|(k, _)| k == key);
        let key = match ask.key.as_deref() {
            Some(key) if !taken(key) => key.to_string(),
            _ => {
                let kind = ask.method.split('/').next().unwrap_or("input");
                self.next_key += 1;
                format!("{kind}-{}", self.next_key - 1)
            }
        };
        self.waiting.push((key, ask));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.session.do_send(EndSession);
    }
}

/// The params less the fields that change from one attempt to the next, as
/// [`Running::params`] holds them.
pub fn canonical(params: Option<&Value>) -> String {
    let mut params = params
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    for field in ["_meta", "inputResponses", "requestState"] {
        params.remove(field);
    }
    Value::Object(params).to_string()
}

/// What a retry finds under the `requestState` it names.
pub enum Claim {
    /// The request, taken up.
    Taken(Running),
    /// No request waits under it (unknown, altered or expired).
    Missing,
    /// Another request's: the retry differs in method, params, credentials or endpoint.
    Foreign,
}

/// Requests parked until their client replies, by `requestState`; cheap to clone.
#[derive(Clone, Default)]
pub struct Parked {
    inner: Arc<Mutex<HashMap<String, Running>>>,
}

impl Parked {
    /// Parks `running` for at most `keep`, unless `max` requests are parked already (then it
    /// is dropped, which ends it); returns its `requestState`, a random handle that names
    /// nothing else.
    pub fn park(&self, running: Running, keep: Duration, max: usize) -> Option<String> {
        let state = uuid::Uuid::new_v4().simple().to_string();
        {
            let mut map = self.inner.lock().ok()?;
            if map.len() >= max {
                drop(map);
                drop(running);
                return None;
            }
            running.asks.set_parked(true);
            map.insert(state.clone(), running);
        }
        let (parked, key) = (self.clone(), state.clone());
        actix_rt::spawn(async move {
            actix_rt::time::sleep(keep).await;
            let _ = parked.take(&key);
        });
        Some(state)
    }

    /// Whether a request is parked under `state`.
    pub fn holds(&self, state: &str) -> bool {
        self.inner.lock().is_ok_and(|map| map.contains_key(state))
    }

    /// Takes the request parked under `state` if `fits` says the retry is its own; one that is
    /// another request's leaves it parked, its keep unchanged.
    pub fn claim(&self, state: &str, fits: impl FnOnce(&Running) -> bool) -> Claim {
        let Ok(mut map) = self.inner.lock() else {
            return Claim::Missing;
        };
        match map.get(state) {
            None => Claim::Missing,
            Some(running) if !fits(running) => Claim::Foreign,
            Some(_) => match map.remove(state) {
                Some(running) => {
                    running.asks.set_parked(false);
                    Claim::Taken(running)
                }
                None => Claim::Missing,
            },
        }
    }

    /// Takes the request parked under `state`, if it is still there.
    pub fn take(&self, state: &str) -> Option<Running> {
        let running = self.inner.lock().ok()?.remove(state)?;
        running.asks.set_parked(false);
        Some(running)
    }

    /// How many requests are parked.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
