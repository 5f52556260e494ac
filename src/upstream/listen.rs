//! A stateless server's `subscriptions/listen` stream (revision 2026-07-28): what it asks for
//! (the list changes the server offers, and the resources the gateway's sessions subscribed
//! to), opening it again when it ends or when what it should ask for changes, and resource
//! subscriptions, which the revision makes part of the stream: subscribing opens a new stream
//! that names the resource, and waits for the server to acknowledge it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Instant;

use awc::Client;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use super::resume::read_events;
use super::sse::Parser;
use super::{McpClient, Target, UpstreamEvent};
use crate::connector::ConnectorError;
use crate::mcp::jsonrpc::{self, RpcError};
use crate::mcp::modern::META_SUBSCRIPTION;

/// The id prefix of the gateway's listen requests; a number follows.
const ID_PREFIX: &str = "mcpgate-listen-";

/// What the listen streams of one server have to ask for, across its connections.
pub(super) struct Wishes {
    /// The server's URIs of the resources subscribed to.
    subscribed: RefCell<BTreeSet<String>>,
    /// Listen requests sent so far; the newest one's number.
    sent: Cell<u64>,
    /// The newest acknowledgment: the listen request's number and its `notifications`.
    acknowledged: watch::Sender<(u64, Value)>,
}

impl Default for Wishes {
    fn default() -> Self {
        Wishes {
            subscribed: RefCell::default(),
            sent: Cell::new(0),
            acknowledged: watch::Sender::new((0, Value::Null)),
        }
    }
}

/// The listen stream of one connection.
#[derive(Default)]
pub(super) struct Stream {
    /// Whether a loop keeps it open.
    running: Cell<bool>,
    /// Wakes the loop to send a new request now (the wishes changed, or the connection closed).
    again: Notify,
}

impl Stream {
    /// Wakes the loop, which sends a new request or, once closed, stops.
    pub(super) fn wake(&self) {
        self.again.notify_one();
    }
}

/// Keeps `stream` open while `closed` is not set and there is something to ask for: started
/// when not running, else asked to send its request again.
pub(super) fn keep_open(
    mcp: &McpClient,
    stream: &Rc<Stream>,
    client: &Client,
    url: &str,
    closed: &Rc<Cell<bool>>,
) {
    if stream.running.replace(true) {
        stream.wake();
        return;
    }
    let (mcp, stream, client, url, closed) = (
        mcp.clone(),
        stream.clone(),
        client.clone(),
        url.to_string(),
        closed.clone(),
    );
    actix_rt::spawn(async move {
        run(&mcp, &stream, &client, &url, &closed).await;
        stream.running.set(false);
    });
}

/// Opens the stream again each time it ends (a server restarts; the revision resumes nothing,
/// so the lists are loaded again and subscribers told to read again), after a wait that
/// doubles while it keeps ending soon (see [`super::resume::next_backoff`]); and at once when
/// woken.
async fn run(mcp: &McpClient, stream: &Stream, client: &Client, url: &str, closed: &Cell<bool>) {
    let mut wait = super::resume::FIRST_WAIT;
    let mut ended = false;
    while !closed.get() {
        let Some((message, headers)) = request(mcp) else {
            return;
        };
        let mut request = client
            .post(url)
            .insert_header(("accept", "application/json, text/event-stream"))
            .insert_header(("content-type", "application/json"));
        for (name, value) in headers {
            request = request.insert_header((name, value));
        }
        let opened = Instant::now();
        let refetch = std::mem::take(&mut ended);
        let reading = async {
            if let Ok(mut response) = request.send_body(message.to_string()).await {
                if response.status().is_success() {
                    if refetch {
                        mcp.upstream_event(UpstreamEvent::Missed);
                    }
                    let mut parser = Parser::new(mcp.max_message_bytes());
                    read_events(mcp, &mut response, &mut parser, closed).await;
                }
            }
        };
        tokio::select! {
            _ = reading => ended = true,
            _ = stream.again.notified() => continue,
        }
        wait = super::resume::next_backoff(wait, opened.elapsed());
        tokio::select! {
            _ = actix_rt::time::sleep(wait) => {}
            _ = stream.again.notified() => {}
        }
    }
}

/// The next `subscriptions/listen` request with its headers: every list change the server
/// offers, and the resources subscribed to; `None` when there is nothing to ask for.
fn request(mcp: &McpClient) -> Option<(Value, Vec<(String, String)>)> {
    let wishes = &mcp.inner.listen;
    let capabilities = mcp.capabilities();
    let mut notifications = serde_json::Map::new();
    for (kind, key) in [
        ("tools", "toolsListChanged"),
        ("prompts", "promptsListChanged"),
        ("resources", "resourcesListChanged"),
    ] {
        if capabilities[kind]["listChanged"] == true {
            notifications.insert(key.into(), json!(true));
        }
    }
    let subscribed = wishes.subscribed.borrow();
    if !subscribed.is_empty() {
        notifications.insert("resourceSubscriptions".into(), json!(*subscribed));
    }
    if notifications.is_empty() {
        return None;
    }
    let number = wishes.sent.get() + 1;
    wishes.sent.set(number);
    let params = json!({ "notifications": notifications });
    let params = super::stateless::with_meta(params, None);
    let id = json!(format!("{ID_PREFIX}{number}"));
    let message = jsonrpc::request(id, "subscriptions/listen", Some(params));
    let headers = super::stateless::headers(mcp, &message);
    Some((message, headers))
}

impl McpClient {
    /// Keeps what a listen stream's acknowledgment says the server will send.
    pub(super) fn on_acknowledged(&self, params: Option<Value>) {
        let params = params.unwrap_or_default();
        let id = params["_meta"][META_SUBSCRIPTION]
            .as_str()
            .unwrap_or_default();
        let Some(number) = id.strip_prefix(ID_PREFIX).and_then(|n| n.parse().ok()) else {
            return;
        };
        let notifications = params["notifications"].clone();
        self.inner
            .listen
            .acknowledged
            .send_replace((number, notifications));
    }

    /// `resources/subscribe` or `resources/unsubscribe` to a stateless server: the listen
    /// stream is opened again with the resource added or left out. A subscription is taken
    /// when the new stream's acknowledgment names the resource.
    pub(super) async fn subscribe_statelessly(
        &self,
        subscribe: bool,
        params: &Value,
    ) -> Result<Value, RpcError> {
        let Some(uri) = params["uri"].as_str() else {
            return Err(RpcError::new(jsonrpc::INVALID_PARAMS, "`uri` is required"));
        };
        if subscribe && self.capabilities()["resources"]["subscribe"] != true {
            return Err(RpcError::new(
                jsonrpc::METHOD_NOT_FOUND,
                "the server offers no resource subscriptions",
            ));
        }
        let wishes = &self.inner.listen;
        let changed = match subscribe {
            true => wishes.subscribed.borrow_mut().insert(uri.to_string()),
            false => wishes.subscribed.borrow_mut().remove(uri),
        };
        if !changed {
            return Ok(json!({}));
        }
        let since = wishes.sent.get();
        let mut acknowledged = wishes.acknowledged.subscribe();
        self.listen_again().await;
        if !subscribe {
            return Ok(json!({}));
        }
        let newer = acknowledged.wait_for(|(number, _)| *number > since);
        let taken = match tokio::time::timeout(self.inner.timeout, newer).await {
            Ok(Ok(ack)) => {
                let uris = ack.1["resourceSubscriptions"].as_array();
                Ok(uris.is_some_and(|u| u.iter().any(|v| v == uri)))
            }
            _ => Err(format!(
                "the server did not acknowledge a listen stream within {} ms",
                self.inner.timeout.as_millis()
            )),
        };
        if taken != Ok(true) {
            wishes.subscribed.borrow_mut().remove(uri);
            self.listen_again().await;
        }
        match taken {
            Ok(true) => Ok(json!({})),
            Ok(false) => Err(RpcError::new(
                jsonrpc::INVALID_PARAMS,
                format!("the server did not take the subscription to `{uri}`"),
            )),
            Err(message) => Err(RpcError::new(jsonrpc::INTERNAL_ERROR, message)),
        }
    }

    /// Opens the connection's listen stream, or sends its request again.
    async fn listen_again(&self) {
        if !matches!(self.inner.target, Target::Http { .. }) {
            return;
        }
        let connected: Result<_, ConnectorError> = self.connect().await;
        if let Ok(connection) = connected {
            if let super::Connection::Http(http) = connection.as_ref() {
                http.open_listen_stream(self);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::ConnectorSettings;

    fn client(capabilities: Value) -> McpClient {
        let settings: ConnectorSettings = serde_json::from_value(
            json!({"name": "c", "kind": "mcp", "url": "http://127.0.0.1:9/mcp"}),
        )
        .unwrap();
        let target = Target::Http {
            url: "http://127.0.0.1:9/mcp".into(),
            mode: super::super::Mode::Stateless,
        };
        let mcp = McpClient::new(&settings, target, vec![], Box::new(|_| {}));
        *mcp.inner.capabilities.borrow_mut() = capabilities;
        mcp
    }

    #[test]
    fn a_listen_request_asks_for_what_the_server_offers_and_what_was_subscribed() {
        let mcp = client(json!({"tools": {"listChanged": true}, "resources": {"subscribe": true}}));
        let (message, headers) = request(&mcp).unwrap();
        assert_eq!(message["id"], "mcpgate-listen-1");
        assert_eq!(
            message["params"]["notifications"],
            json!({"toolsListChanged": true})
        );
        assert!(headers.contains(&("mcp-method".into(), "subscriptions/listen".into())));
        mcp.inner
            .listen
            .subscribed
            .borrow_mut()
            .insert("a://b".into());
        let (message, _) = request(&mcp).unwrap();
        assert_eq!(message["id"], "mcpgate-listen-2");
        assert_eq!(
            message["params"]["notifications"]["resourceSubscriptions"],
            json!(["a://b"])
        );
    }

    #[test]
    fn nothing_to_ask_for_opens_no_stream() {
        let mcp = client(json!({"resources": {"subscribe": true}}));
        assert!(request(&mcp).is_none());
    }

    #[actix_rt::test]
    async fn a_subscription_needs_a_uri_and_a_server_that_offers_them() {
        let mcp = client(json!({"resources": {"listChanged": true}}));
        let uri = json!({"uri": "a://b"});
        let refused = mcp.subscribe_statelessly(true, &uri).await.unwrap_err();
        let unnamed = mcp
            .subscribe_statelessly(true, &json!({}))
            .await
            .unwrap_err();
        assert_eq!(refused.code, jsonrpc::METHOD_NOT_FOUND);
        assert_eq!(
            refused.message,
            "the server offers no resource subscriptions"
        );
        assert_eq!(unnamed.code, jsonrpc::INVALID_PARAMS);
        assert!(mcp.inner.listen.subscribed.borrow().is_empty());
    }

    #[test]
    fn an_acknowledgment_is_kept_only_for_the_gateways_own_listen_requests() {
        let mcp = client(json!({}));
        let ack = |id: &str| json!({"_meta": {META_SUBSCRIPTION: id}, "notifications": {"resourceSubscriptions": ["a://b"]}});
        mcp.on_acknowledged(Some(ack("someone-else")));
        assert_eq!(mcp.inner.listen.acknowledged.borrow().0, 0);
        mcp.on_acknowledged(Some(ack("mcpgate-listen-3")));
        let kept = mcp.inner.listen.acknowledged.borrow().clone();
        assert_eq!(kept, (3, json!({"resourceSubscriptions": ["a://b"]})));
    }
}
