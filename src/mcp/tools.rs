//! `tools/list` and `tools/call`. A call is routed to the connector that the catalog names, by
//! the backend's own tool name, and recorded off the request path.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::dispatch::{list_result, object, string, Context};
use super::feedback_tool;
use super::jsonrpc::RpcError;
use super::paging::page;
use super::scope::Scope;
use crate::connector::{CallTool, ConnectorError};
use crate::registry::Snapshot;
use crate::store::feedback::{NewFeedback, ASSIGNED, AUTOMATIC};
use crate::store::tool_calls::{NewToolCall, Outcome};
use crate::trainer::served::Served;

/// One page of the aggregated tools.
pub async fn list(ctx: &Context, params: Option<&Value>) -> Result<Value, RpcError> {
    let snapshot = ctx.snapshot_for_list("tools_list").await;
    let first_page = params
        .and_then(|p| p.get("cursor"))
        .is_none_or(Value::is_null);
    let builtin = ctx
        .feedback_tool
        .as_deref()
        .filter(|_| first_page)
        .map(feedback_tool::definition);
    if let Scope::All = ctx.scope {
        let (tools, next) = page(&snapshot.catalog.tools, params, ctx.page_size)?;
        let items = tools.iter().map(|t| served(ctx, &t.item)).chain(builtin);
        return Ok(list_result("tools", items, next));
    }
    let tools = ctx.scope.tools(&snapshot);
    let (tools, next) = page(&tools, params, ctx.page_size)?;
    let items = tools.iter().map(|t| served(ctx, t)).chain(builtin);
    Ok(list_result("tools", items, next))
}

/// A tool as served: with its deployed description, if one was deployed.
fn served(ctx: &Context, tool: &Value) -> Value {
    if ctx.served.is_empty() {
        return tool.clone();
    }
    let name = tool["name"].as_str().unwrap_or_default();
    let served = version_for(ctx, name, tool);
    let mut tool = tool.clone();
    if let Some((_, Some(served))) = served {
        tool["description"] = Value::String(served.text);
    }
    tool
}

/// What the session is served of tool `name` in place of the backend's description of it in
/// `tool` ([`ServedVersions::serve`](crate::trainer::served::ServedVersions::serve)): a
/// version made from another description or for another input schema than the backend's now
/// (a new release of the backend) is not ([`Served::made_for`]). A session that joins a live
/// experiment's arm now is recorded ([`joined`]).
fn version_for(ctx: &Context, name: &str, tool: &Value) -> Option<(i64, Option<Served>)> {
    let own = tool["description"].as_str().unwrap_or_default();
    let schema = crate::catalog::input_schema(tool);
    let fits = |served: &Served| served.made_for(own, schema);
    let (version, served, joined) = ctx.served.serve("tool", name, &ctx.session_id, fits)?;
    if joined {
        self::joined(ctx, "tool", name, version);
    }
    Some((version, served))
}

/// Records that this session joined the arm of a live experiment serving `version` of
/// `target`: the trainer of every gateway on the store counts the session for that arm
/// ([`ASSIGNED`]).
pub(super) fn joined(ctx: &Context, kind: &str, target: &str, version: i64) {
    let mut signal = signal_of(ctx, kind, target, ASSIGNED, None);
    signal.version = Some(version);
    ctx.feedback.record(signal);
}

/// Runs a tool on its connector.
pub async fn call(ctx: &Context, params: Option<Value>) -> Result<Value, RpcError> {
    let mut params = object(params, "tools/call")?;
    let name = string(&params, "name", "tools/call")?;
    let arguments = match params.remove("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(arguments @ Value::Object(_)) => arguments,
        Some(_) => return Err(RpcError::invalid_params("`arguments` must be an object")),
    };
    // After the first load, as for any call: the feedback names a tool or prompt of it.
    let snapshot = ctx.snapshot_for_call().await;
    if ctx.feedback_tool.as_deref() == Some(name.as_str()) {
        return Ok(feedback_tool::call(ctx, &snapshot, arguments));
    }
    let name = ctx
        .scope
        .tool_name(&snapshot, &name)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown tool `{name}`")))?;
    let Some(entry) = snapshot.catalog.tool(&name) else {
        return Err(match snapshot.catalog.hidden_tool(&name) {
            Some(connector) => unavailable(&snapshot, connector),
            None => RpcError::invalid_params(format!("unknown tool `{name}`")),
        });
    };
    let connector = entry.connector.to_string();
    let stopped = || ConnectorError::Stopped {
        connector: connector.clone(),
    };
    let addr = snapshot.connectors.get(&connector).ok_or_else(stopped)?;
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let (_abandon_on_drop, abandoned) = tokio::sync::oneshot::channel();
    let recorded_arguments = arguments.clone();
    let message = CallTool {
        tool: entry.original.clone(),
        arguments,
        meta: params.remove("_meta"),
        client: Some(ctx.client.clone()),
        abandoned: Some(abandoned),
    };
    let result = addr.send(message).await.unwrap_or_else(|_| Err(stopped()));
    let (outcome, error_kind) = match &result {
        Ok(value) if value.get("isError") == Some(&Value::Bool(true)) => (Outcome::ToolError, None),
        Ok(_) => (Outcome::Ok, None),
        Err(err) => (Outcome::Error, Some(err.kind())),
    };
    let elapsed = clock.elapsed();
    let labels = [connector.as_str(), entry.original.as_str()];
    let metrics = &ctx.metrics;
    metrics
        .tool_calls
        .with_label_values(&[labels[0], labels[1], outcome.as_str()])
        .inc();
    metrics
        .tool_call_seconds
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    if let Some(kind) = error_kind {
        metrics
            .tool_call_errors
            .with_label_values(&[labels[0], labels[1], kind])
            .inc();
        if kind == "rate_limited" {
            metrics.rate_limited.with_label_values(&[labels[0]]).inc();
        }
    }
    ctx.recorder.record(NewToolCall {
        connector,
        tool: entry.original.clone(),
        session_id: ctx.session(),
        started_at_ms: started_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        duration_us: elapsed.as_micros() as i64,
        outcome: outcome.as_str().to_string(),
        error_kind: error_kind.map(str::to_string),
    });
    let signal = match outcome {
        Outcome::Ok => "success",
        Outcome::ToolError => "tool_error",
        Outcome::Error => "protocol_error",
    };
    let mut signal = signal_of(ctx, "tool", &name, signal, Some(elapsed));
    signal.version = version_for(ctx, &name, &entry.item).map(|(version, _)| version);
    signal.error = match &result {
        Ok(value) if outcome == Outcome::ToolError => value["content"][0]["text"]
            .as_str()
            .map(|t| t.chars().take(500).collect()),
        Err(err) => Some(err.to_string()),
        Ok(_) => None,
    };
    ctx.feedback.record_call(signal, Some(recorded_arguments));
    Ok(result?)
}

/// An automatic signal about `target` in this session.
pub(super) fn signal_of(
    ctx: &Context,
    kind: &str,
    target: &str,
    signal: &str,
    took: Option<std::time::Duration>,
) -> NewFeedback {
    NewFeedback {
        target_kind: kind.into(),
        target: target.into(),
        version: None,
        session_id: ctx.session(),
        signal: signal.into(),
        rating: None,
        suggestion: None,
        error: None,
        latency_ms: took.map(|d| d.as_millis() as i64),
        source: AUTOMATIC.into(),
        created_at_ms: crate::connector::now_ms(),
        origin: None,
    }
}

/// The error for a name whose connector is out of the catalog.
pub(super) fn unavailable(snapshot: &Snapshot, connector: &str) -> RpcError {
    let reason = snapshot.unavailable.get(connector).cloned();
    RpcError::from(ConnectorError::Unavailable {
        connector: connector.to_string(),
        reason: reason.unwrap_or_else(|| "circuit open".into()),
    })
}
