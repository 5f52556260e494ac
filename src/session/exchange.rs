//! An [`Exchange`]: how the backend serving one stateless request (revision 2026-07-28) reaches
//! its client. That revision forbids requests from server to client; a backend's request
//! (sampling, elicitation, roots) instead becomes an input request in the answer, and the
//! client's next attempt carries the reply back (see [`crate::transport`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::mcp::jsonrpc::RpcError;

/// A backend's request for the client, waiting for the client's reply.
#[derive(Debug)]
pub struct Ask {
    /// The key the backend gave it, if it speaks 2026-07-28 itself.
    pub key: Option<String>,
    /// The method, such as `elicitation/create`.
    pub method: String,
    /// Its params.
    pub params: Option<Value>,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Result<Value, RpcError>>,
}

/// The backend side of one stateless request's exchange with its client.
#[derive(Clone)]
pub struct Exchange {
    asks: mpsc::UnboundedSender<Ask>,
    missing: Arc<Mutex<Option<String>>>,
    parked: Arc<AtomicBool>,
}

/// The transport side: the asks to pass on, and what the client failed to declare.
pub struct Asks {
    /// Backends' requests, in the order they came.
    pub receiver: mpsc::UnboundedReceiver<Ask>,
    missing: Arc<Mutex<Option<String>>>,
    parked: Arc<AtomicBool>,
}

impl Exchange {
    /// A new exchange and its transport side.
    pub fn new() -> (Exchange, Asks) {
        let (asks, receiver) = mpsc::unbounded_channel();
        let missing = Arc::new(Mutex::new(None));
        let parked = Arc::new(AtomicBool::new(false));
        let exchange = Exchange {
            asks,
            missing: missing.clone(),
            parked: parked.clone(),
        };
        let asks = Asks {
            receiver,
            missing,
            parked,
        };
        (exchange, asks)
    }

    /// Whether the request waits for its client's next attempt, its input requests answered
    /// to the client already.
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Relaxed)
    }

    /// Notes that a backend needed `capability`, which the client did not declare.
    pub fn capability_missing(&self, capability: &str) {
        if let Ok(mut missing) = self.missing.lock() {
            missing.get_or_insert_with(|| capability.to_string());
        }
    }

    /// Passes a backend's request (named `key` by the backend, if it named it) to the client
    /// and waits for the reply.
    pub async fn ask(
        &self,
        key: Option<&str>,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, RpcError> {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            key: key.map(str::to_string),
            method: method.to_string(),
            params,
            reply,
        };
        if self.asks.send(ask).is_err() {
            return Err(RpcError::new(-32603, "the client request has ended"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(RpcError::new(-32603, "the client did not reply in time")))
    }
}

impl Asks {
    /// The capability a backend needed and the client did not declare, if any.
    pub fn missing(&self) -> Option<String> {
        self.missing.lock().ok().and_then(|m| m.clone())
    }

    /// The request was parked (or taken up again).
    pub fn set_parked(&self, parked: bool) {
        self.parked.store(parked, Ordering::Relaxed);
    }
}
