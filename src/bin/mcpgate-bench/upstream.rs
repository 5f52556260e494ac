//! The fast upstream: a minimal MCP server over Streamable HTTP (JSON answers) that also speaks
//! the http connector contract, whose `tools/call` costs next to nothing, so that what a gateway
//! adds is what gets measured. Its stdio mode (same answers, newline-delimited JSON-RPC on
//! stdin/stdout) is in `stdio_upstream`.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

const SESSION: &str = "bench-session";

/// How many tools the REST side lists (`echo` plus `tool_1` … for B3).
static REST_TOOLS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

fn tools() -> Value {
    json!({"tools": [{"name": "echo", "description": "Answers ok.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}]})
}

fn rest_tools() -> Value {
    let count = REST_TOOLS.get().copied().unwrap_or(1);
    let tools: Vec<Value> = (0..count)
        .map(|i| {
            let name = if i == 0 {
                "echo".to_string()
            } else {
                format!("tool_{i}")
            };
            json!({"name": name, "description": format!("Tool number {i}; answers ok."),
                "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}})
        })
        .collect();
    json!({ "tools": tools })
}

/// The answer to one MCP message, or `None` for a notification. Shared with the stdio mode.
pub fn answer(message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let method = message["method"].as_str().unwrap_or("");
    let result = match method {
        "initialize" => json!({"protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}}, "serverInfo": {"name": "bench-upstream", "version": "1"}}),
        "tools/list" => tools(),
        "tools/call" => json!({"content": [{"type": "text", "text": "ok"}]}),
        "ping" => json!({}),
        _ => {
            return Some(json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": "method not found"}}));
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

async fn mcp(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let Some(answer) = answer(&message) else {
        return HttpResponse::Accepted().finish();
    };
    let mut response = HttpResponse::Ok();
    if message["method"] == "initialize" || req.headers().contains_key("mcp-session-id") {
        response.insert_header(("mcp-session-id", SESSION));
    }
    response.json(answer)
}

/// Serves on 127.0.0.1:`port` with `workers` threads until killed.
pub async fn serve(port: u16, workers: usize, tool_count: usize) -> std::io::Result<()> {
    let _ = REST_TOOLS.set(tool_count.max(1));
    HttpServer::new(|| {
        App::new()
            .route("/mcp", web::post().to(mcp))
            .route("/mcp", web::get().to(HttpResponse::MethodNotAllowed))
            .route(
                "/info",
                web::get().to(|| async { HttpResponse::Ok().json(json!({"name": "bench"})) }),
            )
            .route(
                "/tools",
                web::get().to(|| async { HttpResponse::Ok().json(rest_tools()) }),
            )
            .route(
                "/tools/{name}/execute",
                web::post().to(|_body: web::Bytes| async {
                    HttpResponse::Ok().json(json!({"content": [{"type": "text", "text": "ok"}]}))
                }),
            )
            .route("/resources", web::get().to(HttpResponse::NotFound))
            .route("/prompts", web::get().to(HttpResponse::NotFound))
    })
    .workers(workers)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
