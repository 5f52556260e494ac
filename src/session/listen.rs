//! `subscriptions/listen` streams (revision 2026-07-28), and the resources a session subscribed
//! to, for every transport.
//!
//! A listener is a [`Session`] of the stateless transport that holds one SSE stream: it
//! subscribes to the resources the client named, acknowledges what it will carry, then tells
//! of the list changes and resource updates asked for, each naming the listen request. Any
//! session unsubscribes from its resources when it ends, so that a backend stops telling of
//! changes nobody hears.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::{Session, SessionsFull, Transport};
use crate::gateway::Gateway;
use crate::mcp::dispatch;
use crate::mcp::jsonrpc;
use crate::mcp::modern::META_SUBSCRIPTION;
use crate::mcp::scope::Scope;
use crate::registry::CatalogChanged;

/// What a `subscriptions/listen` stream carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    /// The listen request's id, named in every notification.
    pub id: Value,
    /// `notifications/tools/list_changed`.
    pub tools: bool,
    /// `notifications/prompts/list_changed`.
    pub prompts: bool,
    /// `notifications/resources/list_changed`.
    pub resources: bool,
    /// `notifications/resources/updated` of these resources, as the client names them.
    pub updates: Vec<String>,
}

impl Listen {
    /// `message` as this stream carries it, naming the listen request; `None` for what it does
    /// not carry (all but updates of the resources in `subscribed`).
    pub(super) fn tag(&self, mut message: Value, subscribed: &HashSet<String>) -> Option<Value> {
        let uri = message["params"]["uri"].as_str()?;
        let updated = message["method"] == "notifications/resources/updated";
        if !updated || !subscribed.contains(uri) {
            return None;
        }
        message["params"]["_meta"] = json!({ META_SUBSCRIPTION: self.id });
        Some(message)
    }
}

/// `(true, uri)` for a `resources/subscribe`, `(false, uri)` for an unsubscribe.
pub(super) fn subscription(method: &str, params: Option<&Value>) -> Option<(bool, String)> {
    let subscribe = match method {
        "resources/subscribe" => true,
        "resources/unsubscribe" => false,
        _ => return None,
    };
    let uri = params?.get("uri")?.as_str()?;
    Some((subscribe, uri.to_string()))
}

impl Session {
    /// Starts the session behind one `subscriptions/listen` stream: it tells the client of the
    /// changes that `listen` names until the client closes `stream` (SSE events for
    /// [`Transport::Stateless`], lines for [`Transport::Stdio`]). It counts against
    /// `server.max_sessions`, and against its `client`'s `server.max_sessions_per_client`, like
    /// any session.
    pub fn start_listener(
        gateway: Arc<Gateway>,
        scope: Scope,
        (transport, client, stream): (Transport, Option<String>, (mpsc::Sender<Bytes>, u64)),
        listen: Listen,
    ) -> Result<Addr<Session>, SessionsFull> {
        let (_, addr) = Session::start(gateway, (transport, client), Some(stream), scope)?;
        addr.do_send(StartListening(listen));
        Ok(addr)
    }

    /// Notes a subscription that succeeded, or its end.
    pub(super) fn subscribed(&mut self, subscribe: bool, uri: String) {
        if subscribe {
            self.subscribed.insert(uri);
        } else {
            self.subscribed.remove(&uri);
        }
    }

    /// Unsubscribes from every resource the session subscribed to.
    pub(super) fn unsubscribe_all(&mut self, ctx: &mut Context<Self>) {
        if self.subscribed.is_empty() {
            return;
        }
        let context = self.dispatch_context(None, ctx);
        let uris: Vec<String> = self.subscribed.drain().collect();
        actix_rt::spawn(async move {
            for uri in uris {
                let params = Some(json!({ "uri": uri }));
                if let Err(err) = dispatch::handle(&context, "resources/unsubscribe", params).await
                {
                    log::debug!(
                        "unsubscribing from {uri} at the session's end: {}",
                        err.message
                    );
                }
            }
        });
    }
}

/// Makes the session a `subscriptions/listen` stream: subscribes, then acknowledges.
#[derive(Message)]
#[rtype(result = "()")]
struct StartListening(Listen);

impl Handler<StartListening> for Session {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: StartListening, ctx: &mut Self::Context) -> Self::Result {
        let listen = msg.0;
        let context = self.dispatch_context(None, ctx);
        let uris = listen.updates.clone();
        // The session's from the start, so that a stream closed before the backends answer
        // still withdraws them; those refused are taken out once known.
        self.subscribed.extend(uris.iter().cloned());
        let subscribing = async move {
            let mut honoured = Vec::new();
            for uri in uris {
                let params = Some(json!({ "uri": uri }));
                if dispatch::handle(&context, "resources/subscribe", params)
                    .await
                    .is_ok()
                {
                    honoured.push(uri);
                }
            }
            honoured
        };
        Box::pin(subscribing.into_actor(self).map(move |honoured, act, ctx| {
            let mut carried: Map<String, Value> = [
                ("toolsListChanged", listen.tools),
                ("promptsListChanged", listen.prompts),
                ("resourcesListChanged", listen.resources),
            ]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(key, on)| (key.to_string(), json!(on)))
            .collect();
            if !honoured.is_empty() {
                carried.insert("resourceSubscriptions".into(), json!(honoured));
            }
            for refused in listen.updates.iter().filter(|uri| !honoured.contains(uri)) {
                act.subscribed.remove(refused);
            }
            let params = json!({
                "_meta": { META_SUBSCRIPTION: listen.id },
                "notifications": carried,
            });
            let ack =
                jsonrpc::notification("notifications/subscriptions/acknowledged", Some(params));
            act.push(&ack, ctx);
            act.listen = Some(listen);
        }))
    }
}

impl Handler<CatalogChanged> for Session {
    type Result = ();

    fn handle(&mut self, msg: CatalogChanged, ctx: &mut Self::Context) {
        if self.version.is_none() && self.listen.is_none() {
            return;
        }
        let changes = msg.0;
        let wanted = match &self.listen {
            Some(l) => (l.tools, l.resources, l.prompts),
            None => (true, true, true),
        };
        let params = self
            .listen
            .as_ref()
            .map(|l| json!({"_meta": {META_SUBSCRIPTION: l.id}}));
        for (changed, wanted, method) in [
            (changes.tools, wanted.0, "notifications/tools/list_changed"),
            (
                changes.resources,
                wanted.1,
                "notifications/resources/list_changed",
            ),
            (
                changes.prompts,
                wanted.2,
                "notifications/prompts/list_changed",
            ),
        ] {
            if changed && wanted {
                self.push(&jsonrpc::notification(method, params.clone()), ctx);
            }
        }
    }
}
