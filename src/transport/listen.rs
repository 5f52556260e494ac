//! `subscriptions/listen` (revision 2026-07-28): an SSE stream that tells the client of the
//! catalog changes and resource updates it listens for, held by a [`Session`] until the client
//! closes it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::event_stream::EventStream;
use super::Rejection;
use crate::gateway::Gateway;
use crate::mcp::jsonrpc::RpcError;
use crate::session::{Listen, Session, Transport};

/// Opens the stream, or refuses the request.
pub fn open(
    gateway: web::Data<Gateway>,
    req: &HttpRequest,
    id: Value,
    params: Option<Value>,
    sse: bool,
) -> HttpResponse {
    if !sse {
        let error = RpcError::invalid_request("subscriptions/listen answers text/event-stream");
        return Rejection {
            status: StatusCode::NOT_ACCEPTABLE,
            error,
        }
        .respond(id);
    }
    let listen = match read(id.clone(), params.as_ref()) {
        Ok(listen) => listen,
        Err(error) => return Rejection::bad(error).respond(id),
    };
    let scope = match super::scope_for(&gateway, req) {
        Ok(scope) => scope,
        Err(rejection) => return rejection.respond(id),
    };
    let (sender, stream) = EventStream::channel();
    let shared = gateway.into_inner();
    let started = (Transport::Stateless, shared.client_keys.of(req), sender);
    match Session::start_listener(shared, scope, started, listen) {
        Ok(session) => stream.owned_by(session).into_response(),
        Err(full) => Rejection::from(full).respond(id),
    }
}

/// Reads `params.notifications`: which changes to tell of.
pub(super) fn read(id: Value, params: Option<&Value>) -> Result<Listen, RpcError> {
    let notifications = params
        .and_then(|p| p.get("notifications"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            RpcError::invalid_params("subscriptions/listen needs an object `notifications`")
        })?;
    let flag = |name: &str| -> Result<bool, RpcError> {
        match notifications.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(on)) => Ok(*on),
            Some(_) => Err(RpcError::invalid_params(format!(
                "notifications.{name} must be a boolean"
            ))),
        }
    };
    let updates = match notifications.get("resourceSubscriptions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(uris)) if uris.iter().all(Value::is_string) => uris
            .iter()
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "notifications.resourceSubscriptions must be an array of URIs",
            ))
        }
    };
    Ok(Listen {
        id,
        tools: flag("toolsListChanged")?,
        prompts: flag("promptsListChanged")?,
        resources: flag("resourcesListChanged")?,
        updates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_notifications_asked_for_are_read_and_bad_ones_refused() {
        let params = json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["a://b"]}});
        let listen = read(json!(7), Some(&params)).unwrap();
        assert!(listen.tools && !listen.prompts && !listen.resources);
        assert_eq!(listen.updates, ["a://b"]);
        let bad = json!({"notifications": {"resourceSubscriptions": "a://b"}});
        assert!(read(json!(1), Some(&bad)).is_err());
        assert_eq!(listen.id, json!(7));
        assert!(read(json!(1), Some(&json!({}))).is_err());
        let bad = json!({"notifications": {"promptsListChanged": "yes"}});
        assert!(read(json!(1), Some(&bad)).is_err());
    }
}
