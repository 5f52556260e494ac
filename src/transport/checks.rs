//! The checks of a stateless request (revision 2026-07-28), in the revision's order: its
//! `_meta` (`-32602`), its `MCP-Protocol-Version` header against it (`-32020`), the revision it
//! names (`-32022`), then its other headers against its body (`Mcp-Method`, `Mcp-Name`, and the
//! `Mcp-Param-*` headers of the parameters a tool's schema marks with `x-mcp-header`: `-32020`).
//! Every refusal is HTTP 400.

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use serde_json::Value;

use super::Rejection;
use crate::gateway::Gateway;
use crate::mcp::modern::{self, RequestMeta};

/// Checks `_meta`, the revision header against it, the revision, then the other headers.
pub(super) fn check(
    gateway: &Gateway,
    req: &HttpRequest,
    method: &str,
    params: Option<&Value>,
) -> Result<RequestMeta, Rejection> {
    let headers = req.headers();
    let meta = modern::request_meta(params).map_err(Rejection::bad)?;
    let mismatch = |message: String| Rejection::bad(modern::header_mismatch(message));
    match header(headers, "MCP-Protocol-Version")? {
        None => return Err(mismatch("the MCP-Protocol-Version header is required".into())),
        Some(v) if v != meta.version => {
            return Err(mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value '{v}' does not match _meta value '{}'",
                meta.version
            )))
        }
        Some(_) => {}
    }
    if !modern::VERSIONS.contains(&meta.version.as_str()) {
        return Err(Rejection::bad(modern::unsupported_version(&meta.version)));
    }
    match header(headers, "Mcp-Method")? {
        None => return Err(mismatch("the Mcp-Method header is required".into())),
        Some(m) if m != method => {
            return Err(mismatch(format!(
            "Header mismatch: Mcp-Method header value '{m}' does not match body value '{method}'"
        )))
        }
        Some(_) => {}
    }
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return Ok(meta),
    };
    let body = params.and_then(|p| p.get(field)).and_then(Value::as_str);
    match (header(headers, "Mcp-Name")?, body) {
        (None, _) => return Err(mismatch("the Mcp-Name header is required".into())),
        (Some(name), Some(body)) if name == body => {}
        (Some(name), body) => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Name header value '{name}' does not match body value '{}'",
                body.unwrap_or("")
            )))
        }
    }
    if method == "tools/call" {
        param_headers(gateway, req, params)?;
    }
    Ok(meta)
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` against its arguments: each parameter
/// that the tool's schema marks with `x-mcp-header` must come with its header when the
/// arguments hold a value, and the two must agree.
fn param_headers(
    gateway: &Gateway,
    req: &HttpRequest,
    params: Option<&Value>,
) -> Result<(), Rejection> {
    let Ok(scope) = super::scope_for(gateway, req) else {
        return Ok(());
    };
    let snapshot = gateway.catalog.load();
    let name = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(tool) = scope
        .tool_name(&snapshot, name)
        .and_then(|n| snapshot.catalog.tool(&n))
    else {
        return Ok(());
    };
    let Some(properties) = tool.item["inputSchema"]["properties"].as_object() else {
        return Ok(());
    };
    let arguments = params.and_then(|p| p.get("arguments"));
    for (property, schema) in properties {
        let Some(suffix) = schema.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let header_name = format!("Mcp-Param-{suffix}");
        let value = arguments
            .and_then(|a| a.get(property))
            .filter(|v| !v.is_null());
        let refuse = |message: String| Err(Rejection::bad(modern::header_mismatch(message)));
        match (header(req.headers(), &header_name)?, value) {
            (None, None) => {}
            (None, Some(_)) => {
                return refuse(format!(
                    "the Mcp-Param-{suffix} header is required: arguments.{property} has a value"
                ))
            }
            (Some(sent), value) if !value.is_some_and(|v| agrees(&sent, v)) => {
                return refuse(format!(
                    "Header mismatch: Mcp-Param-{suffix} header value '{sent}' does not match arguments.{property}"
                ))
            }
            (Some(_), _) => {}
        }
    }
    Ok(())
}

/// Whether a header's text stands for `value`: the same string, the same number, the same
/// boolean.
fn agrees(header: &str, value: &Value) -> bool {
    match value {
        Value::String(s) => s == header,
        Value::Number(n) => header.parse::<f64>().ok() == n.as_f64(),
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// The value of the header `name` (spelled as the revision does; matched in any case): trimmed,
/// and decoded when sent as `=?base64?…?=`; refused (`-32020`) naming the header when it is
/// there but cannot be read so, or given more than once (a proxy routing on another of its
/// values would see another request than the gateway serves).
fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, Rejection> {
    let unreadable = |why: &str| {
        let message = format!("the {name} header is not valid: {why}");
        Rejection::bad(modern::header_mismatch(message))
    };
    let mut values = headers.get_all(name);
    let Some(raw) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(unreadable("it is given more than once"));
    }
    let raw = raw
        .to_str()
        .map_err(|_| unreadable("it is not visible ASCII"))?
        .trim();
    let Some(b64) = raw
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Ok(Some(raw.to_string()));
    };
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    decoded
        .map(Some)
        .ok_or_else(|| unreadable("its =?base64?…?= value is not base64 of UTF-8 text"))
}
