//! Client-facing transports: how MCP messages travel over HTTP.
//!
//! - [`sse`]: the legacy HTTP+SSE transport of protocol 2024-11-05 (`GET /sse`,
//!   `POST /messages`).
//! - [`streamable`]: Streamable HTTP on `/mcp` (2025-03-26 and later).
//! - [`guard`]: `Host`/`Origin` validation and bearer tokens in front of both.
//!
//! Transports parse and frame; the [`crate::session::Session`] answers.

mod event_stream;
pub mod guard;
mod sse;
mod streamable;

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use serde_json::Value;

use crate::mcp::jsonrpc::{self, RpcError, PARSE_ERROR};

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
            ),
    );
}

/// An HTTP response carrying one JSON-RPC error.
fn rpc_error(status: StatusCode, id: Value, err: RpcError) -> HttpResponse {
    HttpResponse::build(status).json(jsonrpc::error(id, &err))
}

/// Parses a body as JSON, or answers 400 with a parse error.
fn parse(body: &[u8]) -> Result<Value, HttpResponse> {
    serde_json::from_slice(body).map_err(|e| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            RpcError::new(PARSE_ERROR, format!("the body is not valid JSON: {e}")),
        )
    })
}
