//! `completion/complete`: argument completion for a prompt or a resource template, passed to the
//! connector that serves it with the reference rewritten to the backend's own name or URI.

use serde_json::{json, Value};

use super::dispatch::{object, send_to, Context};
use super::jsonrpc::RpcError;
use crate::connector::Forward;

/// Completes an argument through the connector that `ref` names.
pub async fn complete(ctx: &Context, params: Option<Value>) -> Result<Value, RpcError> {
    let mut params = object(params, "completion/complete")?;
    let reference = params
        .get("ref")
        .and_then(Value::as_object)
        .ok_or_else(|| RpcError::invalid_params("completion/complete needs a `ref` object"))?
        .clone();
    let snapshot = ctx.snapshot_for_call().await;
    let (connector, own) = match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
            let unknown = || RpcError::invalid_params(format!("unknown prompt `{name}`"));
            let name = ctx.scope.prompt_name(&snapshot, name).ok_or_else(unknown)?;
            let entry = snapshot.catalog.prompt(&name).ok_or_else(unknown)?;
            let own = json!({"type": "ref/prompt", "name": entry.original});
            (entry.connector.to_string(), own)
        }
        Some("ref/resource") => {
            let uri = reference.get("uri").and_then(Value::as_str).unwrap_or("");
            let uri = ctx
                .scope
                .resource_uri(uri)
                .ok_or_else(|| RpcError::invalid_params(format!("unknown resource `{uri}`")))?;
            let (connector, inner) = uri
                .split_once(':')
                .ok_or_else(|| RpcError::invalid_params(format!("unknown resource `{uri}`")))?;
            (
                connector.to_string(),
                json!({"type": "ref/resource", "uri": inner}),
            )
        }
        _ => {
            return Err(RpcError::invalid_params(
                "`ref.type` must be ref/prompt or ref/resource",
            ))
        }
    };
    if snapshot.unavailable.contains_key(&connector) {
        return Err(super::tools::unavailable(&snapshot, &connector));
    }
    let addr = snapshot
        .connectors
        .get(&connector)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown connector `{connector}`")))?;
    params.insert("ref".into(), own);
    let message = Forward {
        method: "completion/complete".into(),
        params: Value::Object(params),
        client: Some(ctx.client.clone()),
    };
    send_to(addr, &connector, message).await
}
