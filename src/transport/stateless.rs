//! Stateless requests on `/mcp` (revision 2026-07-28), beside the sessions of older revisions.
//!
//! A request passes [`super::checks`] first; a method the revision does not have gets 404.
//! `server/discover` is answered here, `subscriptions/listen` by [`super::listen`], and every
//! other method in a session that lives as long as the request.
//!
//! The answer is JSON unless something related to the request (progress, a log message the
//! client asked for) comes before it, or nothing comes for `server.keep_alive_ms`; then it is an
//! SSE stream ending with the answer, whose closing by the client cancels the request. A backend's
//! request for the client (sampling, elicitation, roots) ends the answer with
//! `resultType: "input_required"`: the request is parked under a random `requestState`, and the
//! client's next attempt, with the same method and params plus its `inputResponses`, takes it up
//! where it stopped.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use super::checks;
use super::event_stream::event;
use super::forward;
use super::running::{canonical, Claim, Next, Running};
use super::Rejection;
use crate::gateway::Gateway;
use crate::mcp::jsonrpc::{self, Incoming, RpcError, METHOD_NOT_FOUND};
use crate::mcp::modern::{self, RequestMeta};
use crate::mcp::scope::Scope;
use crate::session::{Ask, Exchange, HandleMessage, RelatedStream, Session, STREAM_CAPACITY};

/// Methods run in a session.
pub(super) const DISPATCHED: [&str; 8] = [
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Methods whose answer may ask the client for input.
const MAY_ASK: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];

/// `POST /mcp` with a stateless message.
pub async fn post(
    gateway: web::Data<Gateway>,
    req: HttpRequest,
    message: Value,
    sse: bool,
) -> HttpResponse {
    let (id, method, params) = match jsonrpc::classify(message) {
        Ok(Incoming::Request { id, method, params }) => (id, method, params),
        Ok(Incoming::Notification { .. }) => return HttpResponse::Accepted().finish(),
        Ok(Incoming::Response { .. }) => {
            let error = RpcError::invalid_request(
                "revision 2026-07-28 has no requests from server to client to answer",
            );
            return Rejection::bad(error).respond(Value::Null);
        }
        Err((id, error)) => return Rejection::bad(error).respond(id),
    };
    let meta = match checks::check(&gateway, &req, &method, params.as_ref()) {
        Ok(meta) => meta,
        Err(refusal) => return refusal.respond(id),
    };
    match method.as_str() {
        "server/discover" => {
            if let Err(rejection) = super::scope_for(&gateway, &req) {
                return rejection.respond(id);
            }
            let discovered = modern::discover(&gateway.mcp);
            let result = modern::complete(&method, discovered, &gateway.mcp, false);
            HttpResponse::Ok().json(jsonrpc::result(id, result))
        }
        "subscriptions/listen" => super::listen::open(gateway, &req, id, params, sse),
        m if DISPATCHED.contains(&m) => run(gateway, &req, id, method, params, meta, sse).await,
        m => {
            let message = if modern::is_removed(m) {
                format!("`{m}` is not a method of revision 2026-07-28")
            } else {
                format!("unknown method `{m}`")
            };
            Rejection {
                status: StatusCode::NOT_FOUND,
                error: RpcError::new(METHOD_NOT_FOUND, message),
            }
            .respond(id)
        }
    }
}

/// Runs a method in a session of its own, or takes up the request its `requestState` names.
async fn run(
    gateway: web::Data<Gateway>,
    req: &HttpRequest,
    id: Value,
    method: String,
    params: Option<Value>,
    meta: RequestMeta,
    sse: bool,
) -> HttpResponse {
    let principal = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    // `null` is no state, as for `inputResponses`: a first attempt.
    let state = params.as_ref().and_then(|p| p.get("requestState"));
    let state = state.filter(|s| !s.is_null()).cloned();
    // A request another gateway of the store parked is taken up there.
    let elsewhere = state.as_ref().and_then(Value::as_str);
    if let Some(state) = elsewhere.filter(|state| !gateway.parked.holds(state)) {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let body = Bytes::from(message.to_string());
        let held = forward::Held::Request(state);
        if let Some(answer) = forward::forward(&gateway, req, held, body).await {
            return answer;
        }
    }
    let running = match state {
        Some(state) => match resume(
            &gateway,
            (&method, params.as_ref(), &state),
            principal,
            req.match_info().get("server"),
        ) {
            Ok(running) => running,
            Err(refusal) => return refusal.respond(id),
        },
        None => {
            let scope = match super::scope_for(&gateway, req) {
                Ok(scope) => scope,
                Err(rejection) => return rejection.respond(id),
            };
            let (sender, events) = tokio::sync::mpsc::channel(STREAM_CAPACITY);
            let related = RelatedStream::new(sender);
            let request = (&id, method.as_str(), &params);
            start(
                &gateway,
                scope,
                &meta,
                request,
                principal,
                (related, events),
            )
        }
    };
    respond(gateway, id, running, sse).await
}

/// Starts `request` (id, method, params) in a session of its own; what relates to it goes to
/// `related`, which feeds `events`.
pub(super) fn start(
    gateway: &web::Data<Gateway>,
    scope: Scope,
    meta: &RequestMeta,
    (id, method, params): (&Value, &str, &Option<Value>),
    principal: Option<String>,
    (related, events): (RelatedStream, tokio::sync::mpsc::Receiver<Bytes>),
) -> Running {
    let (exchange, asks) = Exchange::new();
    let shared = gateway.clone().into_inner();
    let keys = &gateway.client_keys;
    let client = principal.as_deref().map(|p| keys.of_principal(p));
    let client = client.unwrap_or_default();
    let endpoint = scope.server_name().map(str::to_string);
    let session = Session::start_stateless(shared, scope, meta, exchange, &client);
    let (done, answer) = tokio::sync::oneshot::channel();
    let message = Ok(Incoming::Request {
        id: id.clone(),
        method: method.to_string(),
        params: for_backends(params.clone()),
    });
    let addr = session.clone();
    actix_rt::spawn(async move {
        let request = HandleMessage {
            message,
            related: Some(related.clone()),
        };
        let reply = addr.send(request).await.ok().flatten();
        related.close();
        let _ = done.send(reply);
    });
    let mut running = Running::new(
        session,
        events,
        asks,
        answer,
        method,
        params.as_ref(),
        principal,
    );
    running.endpoint = endpoint;
    running
}

/// The params as backends get them: `_meta` keeps what is not the revision's own
/// (`progressToken`, for one).
fn for_backends(params: Option<Value>) -> Option<Value> {
    let mut params = params?;
    if let Some(Value::Object(meta)) = params.get_mut("_meta") {
        meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
    }
    Some(params)
}

/// Takes up a parked request, handing the client's replies to the backends waiting for them.
/// A retry must come with the same method, params and credentials, to the same endpoint, as
/// the request it names; one that does not is refused and leaves the request waiting.
pub(super) fn resume(
    gateway: &Gateway,
    (method, params, state): (&str, Option<&Value>, &Value),
    principal: Option<String>,
    endpoint: Option<&str>,
) -> Result<Running, Rejection> {
    let invalid = |message: &str| Rejection::bad(RpcError::invalid_params(message));
    let state = state
        .as_str()
        .ok_or_else(|| invalid("requestState must be a string"))?;
    let fits = |running: &Running| {
        running.method == method
            && running.params == canonical(params)
            && running.principal == principal
            && running.endpoint.as_deref() == endpoint
    };
    let mut running = match gateway.parked.claim(state, fits) {
        Claim::Taken(running) => running,
        Claim::Missing => {
            return Err(invalid(
                "requestState names no request waiting for input: it is unknown, altered or \
                 expired",
            ))
        }
        Claim::Foreign => {
            return Err(invalid(
                "requestState belongs to another request: retry with the same method, params \
                 and credentials, at the same endpoint",
            ))
        }
    };
    forward::release(gateway, forward::Held::Request(state));
    // A malformed reply is refused; the request waits on under a new `requestState`.
    let refuse = |running: Running, message: String| {
        let keep = gateway.mcp.request_timeout();
        let state = gateway.parked.park(running, keep, usize::MAX);
        if let Some(state) = &state {
            let held = forward::Held::Request(state);
            actix_rt::spawn(forward::hold(gateway, held, Some(keep)));
        }
        let mut refusal = invalid(&message);
        refusal.error.data = Some(json!({"requestState": state}));
        refusal
    };
    let replies = match params.and_then(|p| p.get("inputResponses")) {
        None => Map::new(),
        Some(Value::Object(replies)) => replies.clone(),
        Some(_) => return Err(refuse(running, "inputResponses must be an object".into())),
    };
    let malformed = running
        .waiting
        .iter()
        .map(|(key, _)| key)
        .find(|key| replies.get(*key).is_some_and(|r| !r.is_object()))
        .cloned();
    if let Some(key) = malformed {
        let message = format!("inputResponses.{key} must be an object (the client's result)");
        return Err(refuse(running, message));
    }
    let waiting = std::mem::take(&mut running.waiting);
    for (key, ask) in waiting {
        match replies.get(&key) {
            Some(reply) => {
                let _ = ask.reply.send(Ok(reply.clone()));
            }
            None => running.waiting.push((key, ask)),
        }
    }
    Ok(running)
}

/// Answers from what the request brings first: JSON for its answer or its input requests, an SSE
/// stream when related messages come before them, or when nothing has come within
/// `server.keep_alive_ms` (the stream's keep-alives then tell when the client goes away, which
/// cancels the request).
async fn respond(
    gateway: web::Data<Gateway>,
    id: Value,
    mut running: Running,
    sse: bool,
) -> HttpResponse {
    let quiet = gateway.server.keep_alive();
    loop {
        if !running.waiting.is_empty() {
            let (status, body) = ask_client(&gateway, running, id).await;
            return HttpResponse::build(status).json(body);
        }
        let next = match sse {
            true => actix_rt::time::timeout(quiet, running.next()).await.ok(),
            false => Some(running.next().await),
        };
        match next {
            Some(Next::Done(reply)) => {
                let (status, body) = finish(&gateway, &running, reply, &id);
                return HttpResponse::build(status).json(body);
            }
            Some(Next::Ask(ask)) => take_ask(&mut running, ask).await,
            Some(Next::Event(event)) if sse => return stream(gateway, id, running, event),
            Some(Next::Event(_)) => {}
            None => return stream(gateway, id, running, Bytes::from_static(KEEP_ALIVE)),
        }
    }
}

/// An SSE comment that keeps a quiet stream open, and finds out whether its client is still
/// there.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Keeps a backend's request for the client, or refuses it where the revision allows none.
pub(super) async fn take_ask(running: &mut Running, ask: Ask) {
    if MAY_ASK.contains(&running.method.as_str()) {
        running.wait_for(ask).await;
    } else {
        let message = format!("`{}` cannot ask the client for input", running.method);
        let _ = ask
            .reply
            .send(Err(RpcError::new(METHOD_NOT_FOUND, message)));
    }
}

/// An SSE answer: `first`, the related messages after it (and keep-alives while there are
/// none), then the answer. A client that closes the stream cancels the request: dropping
/// `running` ends its session, which abandons the backend's call.
fn stream(
    gateway: web::Data<Gateway>,
    id: Value,
    mut running: Running,
    first: Bytes,
) -> HttpResponse {
    let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_CAPACITY);
    let quiet = gateway.server.keep_alive();
    actix_rt::spawn(async move {
        if sender.send(first).await.is_err() {
            return;
        }
        loop {
            if !running.waiting.is_empty() {
                let (_, body) = ask_client(&gateway, running, id).await;
                let _ = sender.send(event("message", &body.to_string())).await;
                return;
            }
            let next = actix_rt::time::timeout(quiet, running.next()).await;
            let bytes = match next {
                Ok(Next::Event(event)) => event,
                Err(_) => Bytes::from_static(KEEP_ALIVE),
                Ok(Next::Ask(ask)) => {
                    take_ask(&mut running, ask).await;
                    continue;
                }
                Ok(Next::Done(reply)) => {
                    let (_, body) = finish(&gateway, &running, reply, &id);
                    let _ = sender.send(event("message", &body.to_string())).await;
                    return;
                }
            };
            if sender.send(bytes).await.is_err() {
                return;
            }
        }
    });
    let body = tokio_stream::wrappers::ReceiverStream::new(receiver)
        .map(Ok::<Bytes, std::convert::Infallible>);
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

/// Parks the request and returns the answer naming what it waits for, or refuses it (503) when
/// `server.max_sessions` requests wait already: like sessions, they hold state for a client.
pub(super) async fn ask_client(
    gateway: &Gateway,
    running: Running,
    id: Value,
) -> (StatusCode, Value) {
    let requests: Map<String, Value> = running
        .waiting
        .iter()
        .map(|(key, ask)| {
            let mut request = json!({"method": ask.method});
            if let Some(params) = &ask.params {
                request["params"] = params.clone();
            }
            (key.clone(), request)
        })
        .collect();
    let (max, keep) = (gateway.server.max_sessions, gateway.mcp.request_timeout());
    let Some(state) = gateway.parked.park(running, keep, max) else {
        gateway
            .metrics
            .sessions_refused
            .with_label_values(&["stateless"])
            .inc();
        let message = format!(
            "{max} requests wait for their clients' input, the most the gateway keeps \
             (server.max_sessions); try again later"
        );
        let error = RpcError::new(jsonrpc::BACKEND_UNAVAILABLE, message);
        return (StatusCode::SERVICE_UNAVAILABLE, jsonrpc::error(id, &error));
    };
    forward::hold(gateway, forward::Held::Request(&state), Some(keep)).await;
    let result = json!({
        "resultType": "input_required",
        "inputRequests": requests,
        "requestState": state,
    });
    let result = modern::complete("", result, &gateway.mcp, false);
    (StatusCode::OK, jsonrpc::result(id, result))
}

/// The answer as the revision wants it, with its HTTP status: a failure after a backend asked
/// for a capability the client did not declare becomes `-32021`.
pub(super) fn finish(
    gateway: &Gateway,
    running: &Running,
    reply: Option<Value>,
    id: &Value,
) -> (StatusCode, Value) {
    let failed = reply
        .as_ref()
        .is_none_or(|r| r.get("error").is_some() || r["result"]["isError"].as_bool() == Some(true));
    if let (true, Some(capability)) = (failed, running.asks.missing()) {
        let error = modern::missing_capability(&capability);
        return (StatusCode::BAD_REQUEST, jsonrpc::error(id.clone(), &error));
    }
    let Some(mut reply) = reply else {
        let error = RpcError::new(-32800, "request cancelled");
        return (StatusCode::OK, jsonrpc::error(id.clone(), &error));
    };
    // A retry has an id of its own; the request's session answers with the first one.
    reply["id"] = id.clone();
    if let Some(result) = reply.get_mut("result") {
        let personal = !gateway.served.experiments.is_empty();
        *result = modern::complete(&running.method, result.take(), &gateway.mcp, personal);
    }
    let status = match reply["error"]["code"].as_i64() {
        Some(METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(modern::MISSING_CAPABILITY) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    (status, reply)
}
