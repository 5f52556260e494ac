//! One entry point for the methods that do not change session state: `ping`, `tools/*`,
//! `resources/*`, `prompts/*`. The [`crate::session::Session`] handles `initialize` and
//! `logging/setLevel` itself and sends everything else here.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde_json::{json, Map, Value};

use super::jsonrpc::{RpcError, METHOD_NOT_FOUND};
use super::scope::Scope;
use super::{completion, prompts, resources, tools};
use crate::connector::{Connector, ConnectorError};
use crate::feedback::FeedbackSink;
use crate::metrics::Metrics;
use crate::recorder::CallRecorder;
use crate::registry::{AwaitLoaded, CatalogHandle, ConnectorRegistry, Snapshot};
use crate::session::ClientLink;
use crate::trainer::served::ServedVersions;

/// What a method handler may use.
#[derive(Clone)]
pub struct Context {
    /// The session the request came in on, as the trainer knows it (empty for a stateless
    /// request that names no principal).
    pub session_id: Arc<str>,
    /// The published catalog.
    pub catalog: CatalogHandle,
    /// Where tool calls are recorded.
    pub recorder: CallRecorder,
    /// Items per list page.
    pub page_size: usize,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// The registry, to wait for a first load.
    pub registry: Addr<ConnectorRegistry>,
    /// Longest wait of a list request for connectors' first load.
    pub first_load_wait: Duration,
    /// The way back to the client, for backends that notify or ask it.
    pub client: ClientLink,
    /// What this session sees of the catalog.
    pub scope: Scope,
    /// Where feedback and automatic signals go.
    pub feedback: FeedbackSink,
    /// The built-in feedback tool's name, if it is on.
    pub feedback_tool: Option<String>,
    /// Versions served in place of the backends' own texts.
    pub served: Arc<ServedVersions>,
}

impl Context {
    /// The session to record signals and calls under, if the request has one.
    pub(super) fn session(&self) -> Option<String> {
        Some(self.session_id.to_string()).filter(|s| !s.is_empty())
    }

    /// The snapshot to route a call with: at once when every connector has loaded, else after
    /// waiting for the first load, at most `first_load_wait` (a client may call right after
    /// start-up).
    pub(super) async fn snapshot_for_call(&self) -> Arc<Snapshot> {
        let snapshot = self.catalog.load_full();
        if snapshot.loaded {
            return snapshot;
        }
        let _ = self
            .registry
            .send(AwaitLoaded)
            .timeout(self.first_load_wait)
            .await;
        self.catalog.load_full()
    }

    /// The snapshot to answer a list from, as for a call; counted as a cache hit when no wait
    /// was needed.
    pub(super) async fn snapshot_for_list(&self, cache: &str) -> Arc<Snapshot> {
        self.metrics.cache_lookup(cache, self.catalog.load().loaded);
        self.snapshot_for_call().await
    }
}

/// Sends `message` to a connector; a connector that is gone answers as stopped.
pub(super) async fn send_to<M>(
    addr: &Addr<Connector>,
    connector: &str,
    message: M,
) -> Result<Value, RpcError>
where
    M: actix::Message<Result = Result<Value, ConnectorError>> + Send + 'static,
    Connector: actix::Handler<M>,
{
    let stopped = || ConnectorError::Stopped {
        connector: connector.to_string(),
    };
    Ok(addr
        .send(message)
        .await
        .unwrap_or_else(|_| Err(stopped()))?)
}

/// Answers one request.
pub async fn handle(ctx: &Context, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
    match method {
        "ping" => Ok(json!({})),
        "tools/list" => tools::list(ctx, params.as_ref()).await,
        "tools/call" => tools::call(ctx, params).await,
        "resources/list" => resources::list(ctx, params.as_ref()).await,
        "resources/templates/list" => resources::list_templates(ctx, params.as_ref()).await,
        "resources/read" => resources::read(ctx, params).await,
        "resources/subscribe" => resources::subscribe(ctx, params).await,
        "resources/unsubscribe" => resources::unsubscribe(ctx, params).await,
        "completion/complete" => completion::complete(ctx, params).await,
        "prompts/list" => prompts::list(ctx, params.as_ref()).await,
        "prompts/get" => prompts::get(ctx, params).await,
        _ => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("unknown method `{method}`"),
        )),
    }
}

/// The params as an object; `method` names the request in the error.
pub(super) fn object(params: Option<Value>, method: &str) -> Result<Map<String, Value>, RpcError> {
    match params {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(RpcError::invalid_params(format!("{method} needs params"))),
    }
}

/// A required string field of the params.
pub(super) fn string(
    params: &Map<String, Value>,
    field: &str,
    method: &str,
) -> Result<String, RpcError> {
    params
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| RpcError::invalid_params(format!("{method} needs a string `{field}`")))
}

/// A list result: `key` holding one page of `items`, and `nextCursor` if there is more.
pub(super) fn list_result(
    key: &str,
    items: impl Iterator<Item = Value>,
    next: Option<String>,
) -> Value {
    let mut result = Map::new();
    result.insert(key.into(), Value::Array(items.collect()));
    if let Some(next) = next {
        result.insert("nextCursor".into(), Value::String(next));
    }
    Value::Object(result)
}
