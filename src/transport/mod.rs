//! Client-facing transports: how MCP messages travel over HTTP.
//!
//! - `sse`: the legacy HTTP+SSE transport of protocol 2024-11-05 (`GET /sse`,
//!   `POST /messages`).
//! - `streamable`: Streamable HTTP on `/mcp` (2025-03-26 to 2025-11-25, with sessions), which
//!   hands requests of the stateless revision (2026-07-28) to `stateless` and `listen`.
//! - [`guard`]: `Host`/`Origin` validation and bearer tokens in front of both.
//! - [`stdio`]: one session on stdin/stdout (`mcpgate stdio`).
//! - [`forward`]: a request for a session another gateway of the store holds goes to it.
//!
//! Transports parse and frame; the [`crate::session::Session`] answers.

pub mod body_deadline;
mod checks;
pub mod clients;
mod event_stream;
pub mod forward;
pub mod guard;
mod listen;
mod running;
mod sse;
mod stateless;
pub mod stdio;
mod stdio_stateless;
mod streamable;

pub use running::Parked;

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::Value;

use crate::gateway::Gateway;
use crate::mcp::jsonrpc::{self, RpcError, PARSE_ERROR};
use crate::mcp::scope::Scope;
use crate::session::SessionsFull;

/// What a request naming no open session is told (404).
const NO_SESSION: &str = "no open session has this id";

/// Mounts the MCP endpoints behind the guard.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(guard::check))
            .route("/sse", web::get().to(sse::open))
            .route("/messages", web::post().to(sse::message))
            .route("/messages/", web::post().to(sse::message))
            .service(
                web::resource("/mcp")
                    .route(web::post().to(streamable::post))
                    .route(web::get().to(streamable::get))
                    .route(web::delete().to(streamable::delete)),
            )
            .route("/servers/{server}/sse", web::get().to(sse::open))
            .route("/servers/{server}/messages", web::post().to(sse::message))
            .service(
                web::resource("/servers/{server}/mcp")
                    .route(web::post().to(streamable::post))
                    .route(web::get().to(streamable::get))
                    .route(web::delete().to(streamable::delete)),
            ),
    );
}

/// What a session opened on this path sees: the whole catalog, or the virtual server that
/// `/servers/{server}/…` names (404 when there is none).
fn scope_for(gateway: &Gateway, req: &HttpRequest) -> Result<Scope, Rejection> {
    match req.match_info().get("server") {
        None => Ok(Scope::All),
        Some(name) => gateway.servers.get(name).map(Scope::Server).ok_or_else(|| {
            Rejection::new(
                StatusCode::NOT_FOUND,
                format!("no virtual server is named `{name}`"),
            )
        }),
    }
}

/// A request refused before it reaches a session: an HTTP status with a JSON-RPC error body.
#[derive(Debug, thiserror::Error)]
#[error("{}", error.message)]
pub struct Rejection {
    /// The HTTP status.
    status: StatusCode,
    /// The JSON-RPC error in the body.
    error: RpcError,
}

impl Rejection {
    /// `status` with an invalid-request error saying `message`.
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection {
            status,
            error: RpcError::invalid_request(message),
        }
    }

    /// HTTP 400 with `error`.
    fn bad(error: RpcError) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            error,
        }
    }

    /// The response, naming the request's `id` (a stateless request's error must).
    fn respond(self, id: Value) -> HttpResponse {
        HttpResponse::build(self.status).json(jsonrpc::error(id, &self.error))
    }
}

/// 503: `max` sessions are open, the most `server.max_sessions` allows; 429: the client has
/// `max` open, the most `server.max_sessions_per_client` allows.
impl From<SessionsFull> for Rejection {
    fn from(SessionsFull { max, per_client }: SessionsFull) -> Self {
        let (status, message) = match per_client {
            false => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the gateway has {max} sessions open, the most it takes \
                     (server.max_sessions); end a session or try again later"
                ),
            ),
            true => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this client has {max} sessions open, the most one client may have \
                     (server.max_sessions_per_client); end one of them or try again later"
                ),
            ),
        };
        Rejection {
            status,
            error: RpcError::new(jsonrpc::BACKEND_UNAVAILABLE, message),
        }
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(jsonrpc::error(Value::Null, &self.error))
    }
}

/// Parses a body as JSON, or refuses it with 400 and a parse error.
fn parse(body: &[u8]) -> Result<Value, Rejection> {
    serde_json::from_slice(body).map_err(|e| Rejection {
        status: StatusCode::BAD_REQUEST,
        error: RpcError::new(PARSE_ERROR, format!("the body is not valid JSON: {e}")),
    })
}
