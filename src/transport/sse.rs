//! The legacy HTTP+SSE transport (protocol 2024-11-05): `GET /sse` opens a session whose stream
//! first names the endpoint to post to; `POST /messages?session_id=…` answers 202 and the
//! response follows on the stream. The session ends when the stream closes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::event_stream::{event, EventStream};
use super::forward::Held;
use super::{parse, Rejection};
use crate::gateway::Gateway;
use crate::mcp::jsonrpc::classify;
use crate::session::{Found, HandleMessage, Session, Transport};

/// `GET /sse`: a new session and its event stream.
pub async fn open(
    gateway: web::Data<Gateway>,
    req: HttpRequest,
) -> Result<HttpResponse, Rejection> {
    if !super::streamable::Accepts::of(req.headers()).sse {
        return Err(Rejection::new(
            StatusCode::NOT_ACCEPTABLE,
            "GET /sse answers text/event-stream",
        ));
    }
    let scope = super::scope_for(&gateway, &req)?;
    let messages = match req.match_info().get("server") {
        Some(server) => format!("/servers/{server}/messages"),
        None => "/messages".to_string(),
    };
    let (sender, stream) = EventStream::channel();
    let shared = gateway.into_inner();
    let client = shared.client_keys.of(&req);
    let (id, addr) = Session::start(
        shared.clone(),
        (Transport::LegacySse, client),
        Some(sender.clone()),
        scope,
    )?;
    super::forward::hold(&shared, Held::Session(&id), None).await;
    let endpoint = event("endpoint", &format!("{messages}?session_id={id}"));
    // The channel is new and empty: the first event always fits.
    let _ = sender.0.try_send(endpoint);
    Ok(stream.owned_by(addr).into_response())
}

/// The query of `POST /messages`.
#[derive(Deserialize)]
pub struct MessageQuery {
    session_id: Option<String>,
}

/// `POST /messages?session_id=…`: one message (or a batch) for an open session.
pub async fn message(
    gateway: web::Data<Gateway>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Rejection> {
    let query = web::Query::<MessageQuery>::from_query(req.query_string()).map_err(|e| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("the query string is not valid: {e}"),
        )
    })?;
    let id = query.into_inner().session_id.ok_or_else(|| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            "the session_id query parameter is required",
        )
    })?;
    let server = req.match_info().get("server");
    let client = gateway.client_keys.of(&req);
    let session = match gateway.sessions.get(&id, server, client.as_deref()) {
        Found::Here(session) => session,
        Found::Elsewhere => return Err(Rejection::new(StatusCode::NOT_FOUND, super::NO_SESSION)),
        // Held by another gateway of the store, if any.
        Found::Absent => {
            return match super::forward::forward(&gateway, &req, Held::Session(&id), body).await {
                Some(answer) => Ok(answer),
                None => Err(Rejection::new(StatusCode::NOT_FOUND, super::NO_SESSION)),
            }
        }
    };
    let value = parse(&body)?;
    let messages = match value {
        Value::Array(batch) if !batch.is_empty() => batch,
        Value::Array(_) => vec![Value::Null],
        single => vec![single],
    };
    for message in messages {
        session.do_send(HandleMessage::plain(classify(message)));
    }
    Ok(HttpResponse::Accepted().body("Accepted"))
}
