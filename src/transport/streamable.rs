//! Streamable HTTP on `/mcp` (2025-03-26, 2025-06-18, 2025-11-25).
//!
//! `POST` carries client messages: `initialize` with no `Mcp-Session-Id` opens a session and
//! names it in that header (sent with one, it goes to that session, which refuses it); requests are answered as JSON or as a short SSE stream, as the client
//! accepts; notifications and responses get 202. `GET` opens the session's stream for server
//! messages; `DELETE` ends the session. An unknown or ended session gets 404.
//!
//! A message of the stateless revision (2026-07-28, named in its `_meta`, or in the
//! `MCP-Protocol-Version` header of a request naming no session) goes to [`super::stateless`];
//! `GET` and `DELETE` in that revision get 405.

use actix::Addr;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde_json::Value;

use super::event_stream::{event, EventStream};
use super::forward::Held;
use super::{parse, Rejection};
use crate::gateway::Gateway;
use crate::mcp::jsonrpc::{self, classify, Incoming, RpcError};
use crate::mcp::modern::is_stateless;
use crate::session::{
    AttachStream, EndSession, Found, HandleMessage, RelatedStream, Session, Transport,
};
use futures_util::StreamExt;

/// The session header.
const SESSION_HEADER: &str = "mcp-session-id";
/// The protocol revision header.
const VERSION_HEADER: &str = "mcp-protocol-version";

/// What the client's `Accept` header allows.
pub(super) struct Accepts {
    json: bool,
    pub(super) sse: bool,
}

impl Accepts {
    /// What `headers` accept; no `Accept` accepts anything.
    pub(super) fn of(headers: &HeaderMap) -> Accepts {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("*/*")
            .to_ascii_lowercase();
        let any = accept.contains("*/*");
        Accepts {
            json: any || accept.contains("application/json"),
            sse: any || accept.contains("text/event-stream"),
        }
    }
}

/// `POST /mcp`.
pub async fn post(
    gateway: web::Data<Gateway>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Rejection> {
    let accepts = Accepts::of(req.headers());
    if !accepts.json && !accepts.sse {
        return Err(not_acceptable(
            "POST /mcp answers application/json or text/event-stream",
        ));
    }
    let value = parse(&body)?;
    let version = req
        .headers()
        .get(VERSION_HEADER)
        .and_then(|h| h.to_str().ok());
    let params = value.get("params");
    let session = session_id(req.headers()).is_some();
    if !value.is_array() && is_stateless(params, version, session) {
        return Ok(super::stateless::post(gateway, req, value, accepts.sse).await);
    }
    if value.is_array() && is_stateless(None, version, session) {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "revision 2026-07-28 takes one request per POST, not a batch",
        ));
    }
    let batch = value.is_array();
    let messages: Vec<_> = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "an empty batch is not a request",
            ))
        }
        Value::Array(items) => items.into_iter().map(classify).collect(),
        single => vec![classify(single)],
    };
    // `initialize` naming a session goes to it, which answers that it is initialized already.
    let initialize = !req.headers().contains_key(SESSION_HEADER)
        && messages
            .iter()
            .any(|m| matches!(m, Ok(Incoming::Request { method, .. }) if method == "initialize"));
    // A message that is not one, sent with no session: its own error says more than that a
    // session is needed.
    if let ([Err((id, error))], false, None) =
        (messages.as_slice(), initialize, session_id(req.headers()))
    {
        return Ok(HttpResponse::BadRequest().json(jsonrpc::error(id.clone(), error)));
    }
    let (session, new_session) = if initialize {
        if batch {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "initialize must be sent alone",
            ));
        }
        let scope = super::scope_for(&gateway, &req)?;
        let shared = gateway.clone().into_inner();
        let client = gateway.client_keys.of(&req);
        let (id, addr) = Session::start(shared, (Transport::Streamable, client), None, scope)?;
        (addr, Some(id))
    } else {
        match find_session(&gateway, &req) {
            Ok(session) => (session, None),
            Err(Missing::Absent(refused)) => return elsewhere(&gateway, &req, body, refused).await,
            Err(Missing::Refused(refused)) => return Err(refused),
        }
    };
    let expects_answer = messages
        .iter()
        .any(|m| !matches!(m, Ok(m) if !m.is_request()));
    if accepts.sse && !batch && new_session.is_none() && streams_related(&gateway, &messages) {
        let message = messages.into_iter().next().expect("one message");
        return Ok(stream_answer(session, message));
    }
    let mut replies = Vec::new();
    for message in messages {
        match session.send(HandleMessage::plain(message)).await {
            Ok(reply) => replies.extend(reply),
            Err(_) => return Err(ended()),
        }
    }
    if !expects_answer {
        return Ok(HttpResponse::Accepted().finish());
    }
    let mut response = HttpResponse::Ok();
    if let Some(id) = new_session {
        if replies.iter().any(|r| r.get("error").is_some()) {
            session.do_send(EndSession);
        } else {
            super::forward::hold(&gateway, Held::Session(&id), None).await;
            response.insert_header((SESSION_HEADER, id.to_string()));
        }
    }
    let body = if batch {
        Value::Array(replies)
    } else {
        replies.pop().unwrap_or(Value::Null)
    };
    if accepts.json {
        return Ok(response.json(body));
    }
    let stream = futures_util::stream::once(async move {
        Ok::<Bytes, std::convert::Infallible>(event("message", &body.to_string()))
    });
    Ok(response
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream))
}

/// Whether the one message is a request whose backend may send related messages (progress,
/// logs, sampling, elicitation) before its answer.
fn streams_related(gateway: &Gateway, messages: &[Result<Incoming, (Value, RpcError)>]) -> bool {
    match messages {
        [Ok(Incoming::Request { method, params, .. })] => {
            gateway.catalog.load().streams(method, params.as_ref())
        }
        _ => false,
    }
}

/// Answers one request as an SSE stream: related messages as they come, then the answer.
fn stream_answer(
    session: Addr<Session>,
    message: Result<Incoming, (Value, RpcError)>,
) -> HttpResponse {
    let (sender, receiver) = tokio::sync::mpsc::channel(crate::session::STREAM_CAPACITY);
    let related = RelatedStream::new(sender.clone());
    let id = match &message {
        Ok(Incoming::Request { id, .. }) => id.clone(),
        _ => Value::Null,
    };
    actix_rt::spawn(async move {
        let request = HandleMessage {
            message,
            related: Some(related.clone()),
        };
        let reply = session.send(request).await;
        related.close();
        let reply = match reply {
            Ok(Some(reply)) => reply,
            Ok(None) => return,
            // The session ended (DELETE) while the request was under way.
            Err(_) => jsonrpc::error(id, &RpcError::invalid_request("the session has ended")),
        };
        let _ = sender.send(event("message", &reply.to_string())).await;
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver)
        .map(Ok::<Bytes, std::convert::Infallible>);
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream)
}

/// `GET /mcp`: the session's stream of server messages.
pub async fn get(gateway: web::Data<Gateway>, req: HttpRequest) -> Result<HttpResponse, Rejection> {
    if !Accepts::of(req.headers()).sse {
        return Err(not_acceptable("GET /mcp answers text/event-stream"));
    }
    let session = match find_session(&gateway, &req) {
        Ok(session) => session,
        Err(Missing::Absent(refused)) => {
            return elsewhere(&gateway, &req, Bytes::new(), refused).await
        }
        Err(Missing::Refused(refused)) => return Err(refused),
    };
    let ((sender, generation), stream) = EventStream::channel();
    session
        .send(AttachStream { sender, generation })
        .await
        .map_err(|_| ended())?;
    Ok(stream.owned_by(session).into_response())
}

/// `DELETE /mcp`: ends the session.
pub async fn delete(
    gateway: web::Data<Gateway>,
    req: HttpRequest,
) -> Result<HttpResponse, Rejection> {
    let session = match find_session(&gateway, &req) {
        Ok(session) => session,
        Err(Missing::Absent(refused)) => {
            return elsewhere(&gateway, &req, Bytes::new(), refused).await
        }
        Err(Missing::Refused(refused)) => return Err(refused),
    };
    if let Some(id) = session_id(req.headers()) {
        gateway.sessions.remove(id);
    }
    session.do_send(EndSession);
    Ok(HttpResponse::Ok().finish())
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_HEADER).and_then(|h| h.to_str().ok())
}

/// Why a request names no session of this gateway.
enum Missing {
    /// Refused as it is (a bad header, or a session of another endpoint's).
    Refused(Rejection),
    /// No session has the id here: another gateway of the store may hold it.
    Absent(Rejection),
}

/// The session named by the headers, after checking the protocol revision header; a session
/// opened on another endpoint (the whole catalog's, or another virtual server's) is not served
/// here.
fn find_session(gateway: &Gateway, req: &HttpRequest) -> Result<Addr<Session>, Missing> {
    let headers = req.headers();
    let version = headers.get(VERSION_HEADER).and_then(|h| h.to_str().ok());
    if is_stateless(None, version, session_id(headers).is_some()) {
        return Err(Missing::Refused(Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "revision 2026-07-28 has no sessions: POST requests, and subscriptions/listen for changes",
        )));
    }
    if let Some(version) = headers.get(VERSION_HEADER) {
        let version = version.to_str().unwrap_or("");
        if !crate::mcp::is_supported(version) {
            let message = format!(
                "unsupported MCP-Protocol-Version `{version}`; supported: {}",
                crate::mcp::SUPPORTED_VERSIONS.join(", ")
            );
            return Err(Missing::Refused(Rejection::new(
                StatusCode::BAD_REQUEST,
                message,
            )));
        }
    }
    if headers.contains_key(SESSION_HEADER) && session_id(headers).is_none() {
        return Err(Missing::Refused(Rejection::new(
            StatusCode::BAD_REQUEST,
            "the Mcp-Session-Id header is not valid: a session id is visible ASCII",
        )));
    }
    let Some(id) = session_id(headers) else {
        return Err(Missing::Refused(Rejection::new(
            StatusCode::BAD_REQUEST,
            "the Mcp-Session-Id header is required; send initialize first",
        )));
    };
    let not_found = || Rejection::new(StatusCode::NOT_FOUND, super::NO_SESSION);
    let client = gateway.client_keys.of(req);
    match gateway
        .sessions
        .get(id, req.match_info().get("server"), client.as_deref())
    {
        Found::Here(session) => Ok(session),
        Found::Elsewhere => Err(Missing::Refused(not_found())),
        Found::Absent => Err(Missing::Absent(not_found())),
    }
}

/// The answer of the gateway holding the session `req` names, when this one does not and
/// another of the store does ([`super::forward`]); else `refused`.
async fn elsewhere(
    gateway: &Gateway,
    req: &HttpRequest,
    body: Bytes,
    refused: Rejection,
) -> Result<HttpResponse, Rejection> {
    let id = session_id(req.headers()).filter(|_| refused.status == StatusCode::NOT_FOUND);
    let Some(id) = id else {
        return Err(refused);
    };
    match super::forward::forward(gateway, req, Held::Session(id), body).await {
        Some(answer) => Ok(answer),
        None => Err(refused),
    }
}

fn ended() -> Rejection {
    Rejection::new(StatusCode::NOT_FOUND, "the session has ended")
}

fn not_acceptable(message: &str) -> Rejection {
    Rejection::new(StatusCode::NOT_ACCEPTABLE, message)
}
