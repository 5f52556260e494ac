//! The MCP-only requests a connector passes on to its backend (`completion/complete`, resource
//! subscriptions, `logging/setLevel`), and what an MCP backend sends on its own (list changes,
//! resource updates), turned into a catalog reload or notifications to subscribed sessions;
//! when it may have sent them unheard, both. A new session with the backend is subscribed again
//! to what the connector's sessions are subscribed to.

use std::rc::Rc;

use actix::prelude::*;
use serde_json::Value;

use super::backend::Backend;
use super::replicas::Replicas;
use super::{
    Connector, ConnectorError, Forward, SubscribeResource, UnsubscribeResource, Upstream,
    LIST_CHANGED_DEBOUNCE,
};
use crate::session::ClientLink;
use crate::upstream::UpstreamEvent;

impl Handler<Forward> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: Forward, _ctx: &mut Self::Context) -> Self::Result {
        let replicas = self.replicas();
        Box::pin(forward(replicas, msg.method, msg.params, msg.client).into_actor(self))
    }
}

impl Handler<SubscribeResource> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: SubscribeResource, _ctx: &mut Self::Context) -> Self::Result {
        let first = !self.subscriptions.contains_key(&msg.uri);
        let session = msg.client.session_id.to_string();
        self.subscriptions
            .entry(msg.uri.clone())
            .or_default()
            .insert(session, msg.client);
        if !first {
            return Box::pin(fut::ready(Ok(serde_json::json!({}))));
        }
        let params = serde_json::json!({ "uri": msg.uri });
        let work = forward(self.replicas(), "resources/subscribe".into(), params, None);
        let uri = msg.uri;
        // A subscription the backend refused is no subscription: the session is not kept, so
        // that its unsubscribe is answered as for any URI it never subscribed to. One that no
        // session wants by the time it is taken (its session ended meanwhile) is withdrawn.
        Box::pin(work.into_actor(self).map(move |result, act, _| {
            if result.is_err() {
                act.subscriptions.remove(&uri);
            } else if !act.subscriptions.contains_key(&uri) {
                let params = serde_json::json!({ "uri": uri });
                let withdraw =
                    forward(act.replicas(), "resources/unsubscribe".into(), params, None);
                actix_rt::spawn(async move {
                    let _ = withdraw.await;
                });
            }
            result
        }))
    }
}

impl Handler<UnsubscribeResource> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: UnsubscribeResource, _ctx: &mut Self::Context) -> Self::Result {
        let Some(sessions) = self.subscriptions.get_mut(&msg.uri) else {
            return Box::pin(fut::ready(Ok(serde_json::json!({}))));
        };
        sessions.remove(&msg.session);
        if !sessions.is_empty() {
            return Box::pin(fut::ready(Ok(serde_json::json!({}))));
        }
        self.subscriptions.remove(&msg.uri);
        let params = serde_json::json!({ "uri": msg.uri });
        let work = forward(
            self.replicas(),
            "resources/unsubscribe".into(),
            params,
            None,
        );
        Box::pin(work.into_actor(self))
    }
}

/// Sends `method` to a replica, retrying as for any safe request.
async fn forward(
    replicas: Result<Rc<Replicas>, ConnectorError>,
    method: String,
    params: Value,
    client: Option<ClientLink>,
) -> Result<Value, ConnectorError> {
    let run = |backend: Backend| {
        let (method, params, client) = (method.clone(), params.clone(), client.clone());
        async move { backend.forward(&method, params, client).await }
    };
    replicas?.call(true, |_| true, run).await
}

impl Handler<Upstream> for Connector {
    type Result = ();

    fn handle(&mut self, msg: Upstream, ctx: &mut Self::Context) {
        match msg.0 {
            UpstreamEvent::ListChanged if !self.reload_pending => {
                self.reload_pending = true;
                ctx.run_later(LIST_CHANGED_DEBOUNCE, |act, ctx| {
                    act.reload_pending = false;
                    act.reload_all = true;
                    act.check(ctx);
                });
            }
            UpstreamEvent::ListChanged => {}
            UpstreamEvent::Missed => {
                self.handle(Upstream(UpstreamEvent::ListChanged), ctx);
                let uris: Vec<String> = self.subscriptions.keys().cloned().collect();
                for uri in uris {
                    self.handle(Upstream(UpstreamEvent::ResourceUpdated(uri)), ctx);
                }
            }
            // A new session knows none of the subscriptions: they are taken again, and their
            // sessions told to read again what may have changed meanwhile.
            UpstreamEvent::Connected if !self.subscriptions.is_empty() => {
                let replicas = self.replicas();
                let uris: Vec<String> = self.subscriptions.keys().cloned().collect();
                let name = self.settings.name.clone();
                actix_rt::spawn(async move {
                    for uri in uris {
                        let params = serde_json::json!({ "uri": uri });
                        let method = "resources/subscribe".to_string();
                        if let Err(err) = forward(replicas.clone(), method, params, None).await {
                            log::warn!(
                                "connector `{name}`: subscribing again to {}: {err}",
                                crate::catalog::shown(&uri)
                            );
                        }
                    }
                });
                self.handle(Upstream(UpstreamEvent::Missed), ctx);
            }
            UpstreamEvent::Connected => {}
            UpstreamEvent::ResourceUpdated(uri) => {
                let params = serde_json::json!({ "uri": format!("{}:{uri}", self.settings.name) });
                let note = crate::mcp::jsonrpc::notification(
                    "notifications/resources/updated",
                    Some(params),
                );
                for link in self
                    .subscriptions
                    .get(&uri)
                    .into_iter()
                    .flat_map(|s| s.values())
                {
                    link.notify(note.clone());
                }
            }
        }
    }
}
