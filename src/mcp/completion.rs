//! `completion/complete`: argument completion for a prompt or a resource template, passed to the
//! connector that serves it with the reference rewritten to the backend's own name or URI. A
//! backend that cannot complete (a REST connector, an MCP server without `completions`) offers
//! no values, since the gateway declares the capability for all of them.

use serde_json::{json, Value};

use super::dispatch::{object, send_to, Context};
use super::jsonrpc::{RpcError, METHOD_NOT_FOUND};
use crate::connector::Forward;

/// Completes an argument through the connector that `ref` names.
pub async fn complete(ctx: &Context, params: Option<Value>) -> Result<Value, RpcError> {
    let mut params = object(params, "completion/complete")?;
    let reference = params
        .get("ref")
        .and_then(Value::as_object)
        .ok_or_else(|| RpcError::invalid_params("completion/complete needs a `ref` object"))?
        .clone();
    check_argument(&params)?;
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
    match send_to(addr, &connector, message).await {
        Err(error) if error.code == METHOD_NOT_FOUND => Ok(no_values()),
        other => other,
    }
}

/// The answer of a backend that has nothing to offer.
fn no_values() -> Value {
    json!({"completion": {"values": [], "total": 0, "hasMore": false}})
}

/// `argument` must name the argument and give its value so far, both as strings, and
/// `context.arguments`, when given, must map names to strings.
fn check_argument(params: &serde_json::Map<String, Value>) -> Result<(), RpcError> {
    let argument = params
        .get("argument")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            RpcError::invalid_params("completion/complete needs an `argument` object")
        })?;
    for field in ["name", "value"] {
        if !argument.get(field).is_some_and(Value::is_string) {
            return Err(RpcError::invalid_params(format!(
                "`argument.{field}` must be a string"
            )));
        }
    }
    let Some(context) = params.get("context") else {
        return Ok(());
    };
    let arguments = match context.as_object() {
        Some(context) => context.get("arguments"),
        None => return Err(RpcError::invalid_params("`context` must be an object")),
    };
    match arguments {
        None => Ok(()),
        Some(Value::Object(map)) if map.values().all(Value::is_string) => Ok(()),
        Some(_) => Err(RpcError::invalid_params(
            "`context.arguments` must map argument names to strings",
        )),
    }
}
