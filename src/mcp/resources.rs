//! `resources/list`, `resources/templates/list` and `resources/read`. Clients see URIs as
//! `{connector}:{uri}`; a read goes to that connector with the prefix taken off, and the
//! contents come back with it put on again.

use serde_json::Value;

use super::dispatch::{list_result, object, send_to, string, Context};
use super::jsonrpc::RpcError;
use super::paging::page;
use actix::Addr;

use crate::connector::{Connector, ReadResource, SubscribeResource, UnsubscribeResource};
use crate::registry::Snapshot;

/// One page of the aggregated resources.
pub async fn list(ctx: &Context, params: Option<&Value>) -> Result<Value, RpcError> {
    let snapshot = ctx.snapshot_for_list("resources_list").await;
    let resources = ctx.scope.resources(&snapshot.catalog.resources, "uri");
    let (resources, next) = page(&resources, params, ctx.page_size)?;
    Ok(list_result("resources", resources.iter().cloned(), next))
}

/// One page of the aggregated resource templates.
pub async fn list_templates(ctx: &Context, params: Option<&Value>) -> Result<Value, RpcError> {
    let snapshot = ctx.snapshot_for_list("resources_list").await;
    let templates = ctx
        .scope
        .resources(&snapshot.catalog.resource_templates, "uriTemplate");
    let (templates, next) = page(&templates, params, ctx.page_size)?;
    Ok(list_result(
        "resourceTemplates",
        templates.iter().cloned(),
        next,
    ))
}

/// Reads a resource from the connector its prefix names.
pub async fn read(ctx: &Context, params: Option<Value>) -> Result<Value, RpcError> {
    let params = object(params, "resources/read")?;
    let uri = scoped_uri(ctx, &string(&params, "uri", "resources/read")?)?;
    let snapshot = ctx.snapshot_for_call().await;
    let (connector, addr, inner) = route(&snapshot, &uri)?;
    let message = ReadResource {
        uri: inner.to_string(),
        client: Some(ctx.client.clone()),
    };
    let mut result = send_to(addr, connector, message).await?;
    if !ctx.scope.prefixes() {
        return Ok(result);
    }
    if let Some(Value::Array(contents)) = result.get_mut("contents") {
        for content in contents {
            if let Some(Value::String(own)) = content.get_mut("uri") {
                *own = format!("{connector}:{own}");
            }
        }
    }
    Ok(result)
}

/// The catalog's URI for a URI as the session's client wrote it.
fn scoped_uri(ctx: &Context, uri: &str) -> Result<String, RpcError> {
    ctx.scope
        .resource_uri(uri)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown resource `{uri}`")))
}

/// The connector that a prefixed URI names, its address and the backend's own URI.
fn route<'a>(
    snapshot: &'a Snapshot,
    uri: &'a str,
) -> Result<(&'a str, &'a Addr<Connector>, &'a str), RpcError> {
    let unknown = || RpcError::invalid_params(format!("unknown resource `{uri}`"));
    let (connector, inner) = uri.split_once(':').ok_or_else(unknown)?;
    let addr = snapshot.connectors.get(connector).ok_or_else(unknown)?;
    if snapshot.unavailable.contains_key(connector) {
        return Err(super::tools::unavailable(snapshot, connector));
    }
    Ok((connector, addr, inner))
}

/// `resources/subscribe`: the connector tells this session when the resource changes.
pub async fn subscribe(ctx: &Context, params: Option<Value>) -> Result<Value, RpcError> {
    let params = object(params, "resources/subscribe")?;
    let uri = scoped_uri(ctx, &string(&params, "uri", "resources/subscribe")?)?;
    let snapshot = ctx.snapshot_for_call().await;
    let (connector, addr, inner) = route(&snapshot, &uri)?;
    let message = SubscribeResource {
        uri: inner.to_string(),
        client: ctx.client.clone(),
    };
    send_to(addr, connector, message).await
}

/// `resources/unsubscribe`.
pub async fn unsubscribe(ctx: &Context, params: Option<Value>) -> Result<Value, RpcError> {
    let params = object(params, "resources/unsubscribe")?;
    let uri = scoped_uri(ctx, &string(&params, "uri", "resources/unsubscribe")?)?;
    let snapshot = ctx.snapshot_for_call().await;
    let (connector, addr, inner) = route(&snapshot, &uri)?;
    let message = UnsubscribeResource {
        uri: inner.to_string(),
        session: ctx.client.session_id.to_string(),
    };
    send_to(addr, connector, message).await
}
