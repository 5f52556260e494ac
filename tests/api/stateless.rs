//! The stateless revision (2026-07-28) on `/mcp`, beside sessions: discovery, the checks of
//! `_meta` and headers in the revision's order, complete results, progress on the answer's
//! stream, and a client that leaves cancelling its call. Input requests are in
//! `stateless_input`, `subscriptions/listen` in `stateless_listen`, `x-mcp-header` parameters
//! in `stateless_headers`. The backend is the tiny
//! stdio server, and these helpers serve the other files too.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::{marker, tiny};
use crate::helpers::{spawn_app, spawn_app_with, StoreKind, TestApp};

pub(crate) const VERSION: &str = "2026-07-28";

fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// A request with its `_meta` (declaring `capabilities`) and the headers the revision wants.
pub(crate) fn request(id: i64, method: &str, mut params: Value, capabilities: Value) -> Value {
    params["_meta"] = meta(capabilities);
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Posts `body` with `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` as the body says, then
/// `extra` (which may replace them).
pub(crate) async fn post(app: &TestApp, body: &Value, extra: &[(&str, &str)]) -> reqwest::Response {
    let method = body["method"].as_str().unwrap_or("").to_string();
    let name = body["params"]["name"]
        .as_str()
        .or(body["params"]["uri"].as_str())
        .map(str::to_string);
    let mut headers: Vec<(&str, &str)> =
        vec![("mcp-protocol-version", VERSION), ("mcp-method", &method)];
    if let Some(name) = &name {
        headers.push(("mcp-name", name));
    }
    for (key, value) in extra {
        headers.retain(|(k, _)| k != key);
        if !value.is_empty() {
            headers.push((key, value));
        }
    }
    app.post_mcp(&body.to_string(), &headers).await
}

/// The messages of an answer: one JSON body, or the events of an SSE body.
pub(crate) async fn messages(response: reqwest::Response) -> (u16, Vec<Value>) {
    let status = response.status().as_u16();
    let sse = response.headers()["content-type"] == "text/event-stream";
    let body = response.text().await.unwrap();
    if !sse {
        return (status, vec![serde_json::from_str(&body).unwrap()]);
    }
    let events = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    (status, events)
}

/// The last message of the answer to `body`, with its HTTP status.
pub(crate) async fn answer(app: &TestApp, body: &Value) -> (u16, Value) {
    let (status, mut all) = messages(post(app, body, &[]).await).await;
    (status, all.pop().unwrap())
}

#[actix_web::test]
async fn stateless_requests_are_served_beside_sessions_with_complete_results() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;

    let (status, found) = answer(&app, &request(1, "server/discover", json!({}), json!({}))).await;
    let listed = post(&app, &request(2, "tools/list", json!({}), json!({})), &[]).await;
    let session_header = listed.headers().get("mcp-session-id").cloned();
    let (_, listed) = messages(listed).await;
    let echo = json!({"name": "tiny_echo", "arguments": {"text": "hi"}});
    let (_, called) = answer(&app, &request(3, "tools/call", echo, json!({}))).await;
    let session = app.initialize().await;
    let old = app.rpc(&session, "tools/list", json!({})).await;
    let get = app
        .client
        .get(format!("{}/mcp", app.address))
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();

    assert_eq!(status, 200);
    let found = &found["result"];
    assert_eq!(found["supportedVersions"], json!([VERSION]));
    assert!(found["capabilities"]["tools"]["listChanged"] == true);
    assert_eq!(found["resultType"], "complete");
    assert_eq!(
        found["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcpgate"
    );
    assert_eq!(
        (found["ttlMs"].as_u64(), found["cacheScope"].as_str()),
        (Some(0), Some("public"))
    );
    let listed = &listed[0]["result"];
    assert!(listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "tiny_echo"));
    assert_eq!(
        (listed["resultType"].as_str(), listed["cacheScope"].as_str()),
        (Some("complete"), Some("public"))
    );
    assert!(
        session_header.is_none(),
        "a stateless request opens no session"
    );
    assert_eq!(called["id"], 3);
    assert_eq!(called["result"]["content"][0]["text"], "hi");
    assert_eq!(called["result"]["resultType"], "complete");
    assert!(called["result"].get("ttlMs").is_none());
    assert!(old["result"]["tools"].is_array() && old["result"].get("resultType").is_none());
    assert_eq!(get.status().as_u16(), 405);
}

/// What is sent, with which headers changed, and the status and error code expected (0 for a
/// complete result).
pub(crate) type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>, u16, i64);

/// Sends each case, checks its status and code, and returns the replies.
pub(crate) async fn run_cases(app: &TestApp, cases: &[Case<'_>]) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for (what, body, headers, status, code) in cases {
        let (got, mut all) = messages(post(app, body, headers).await).await;
        let reply = all.pop().unwrap();
        assert_eq!(got, *status, "{what}: {reply}");
        match code {
            0 => assert_eq!(reply["result"]["resultType"], "complete", "{what}: {reply}"),
            code => assert_eq!(reply["error"]["code"], *code, "{what}: {reply}"),
        }
        seen.push((what.to_string(), reply));
    }
    seen
}

#[actix_web::test]
async fn stateless_requests_are_checked_in_the_revisions_order_and_refused_naming_their_id() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let discover = |params: Value| json!({"jsonrpc": "2.0", "id": 9, "method": "server/discover", "params": params});
    let v999 = json!({"io.modelcontextprotocol/protocolVersion": "v999",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let echo = request(
        9,
        "tools/call",
        json!({"name": "tiny_echo", "arguments": {}}),
        json!({}),
    );
    let encoded = format!("=?base64?{}?=", base64_of("tiny_echo"));
    let mut bad_level = request(9, "tools/list", json!({}), json!({}));
    bad_level["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = json!("loud");
    let cases: Vec<Case> = vec![
        ("no _meta", discover(json!({})), vec![], 400, -32602),
        (
            "no revision in _meta",
            discover(json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}})),
            vec![],
            400,
            -32602,
        ),
        (
            "no capabilities in _meta",
            discover(json!({"_meta": {"io.modelcontextprotocol/protocolVersion": VERSION}})),
            vec![],
            400,
            -32602,
        ),
        ("an unknown log level", bad_level, vec![], 400, -32602),
        (
            "header and _meta disagree",
            discover(json!({"_meta": v999})),
            vec![],
            400,
            -32020,
        ),
        (
            "no MCP-Protocol-Version",
            request(9, "server/discover", json!({}), json!({})),
            vec![("mcp-protocol-version", "")],
            400,
            -32020,
        ),
        (
            "an unsupported revision",
            discover(json!({"_meta": v999})),
            vec![("mcp-protocol-version", "v999")],
            400,
            -32022,
        ),
        (
            "no Mcp-Method",
            request(9, "tools/list", json!({}), json!({})),
            vec![("mcp-method", "")],
            400,
            -32020,
        ),
        (
            "Mcp-Method in other case",
            request(9, "tools/list", json!({}), json!({})),
            vec![("mcp-method", "TOOLS/LIST")],
            400,
            -32020,
        ),
        (
            "no Mcp-Name",
            echo.clone(),
            vec![("mcp-name", "")],
            400,
            -32020,
        ),
        (
            "Mcp-Name of another tool",
            echo.clone(),
            vec![("mcp-name", "tiny_progress")],
            400,
            -32020,
        ),
        (
            "ping",
            request(9, "ping", json!({}), json!({})),
            vec![],
            404,
            -32601,
        ),
        (
            "initialize",
            request(
                9,
                "initialize",
                json!({"protocolVersion": VERSION}),
                json!({}),
            ),
            vec![],
            404,
            -32601,
        ),
        (
            "logging/setLevel",
            request(9, "logging/setLevel", json!({"level": "info"}), json!({})),
            vec![],
            404,
            -32601,
        ),
        (
            "an unknown method",
            request(9, "unknown/method", json!({}), json!({})),
            vec![],
            404,
            -32601,
        ),
    ];
    let seen = run_cases(&app, &cases).await;
    let (status, encoded_ok) = messages(post(&app, &echo, &[("mcp-name", &encoded)]).await).await;
    let not_base64 = [("mcp-name", "=?base64?!!!?=")];
    let (bad_status, bad) = messages(post(&app, &echo, &not_base64).await).await;

    for (what, reply) in &seen {
        assert_eq!(reply["id"], 9, "{what}: the error names the request");
    }
    let unsupported = &seen[6].1["error"]["data"];
    assert_eq!(unsupported["requested"], "v999");
    assert_eq!(unsupported["supported"], json!([VERSION]));
    assert_eq!(status, 200, "a base64-encoded Mcp-Name is decoded");
    assert_eq!(encoded_ok[0]["result"]["resultType"], "complete");
    assert_eq!(bad_status, 400);
    let message = bad[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the Mcp-Name header is not valid"),
        "{bad:?}"
    );
}

pub(crate) fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[actix_web::test]
async fn progress_of_a_stateless_call_comes_on_its_answers_stream_before_the_result() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let mut body = request(
        21,
        "tools/call",
        json!({"name": "tiny_progress", "arguments": {}}),
        json!({}),
    );
    body["params"]["_meta"]["progressToken"] = json!("p-1");

    let (status, events) = messages(post(&app, &body, &[]).await).await;

    assert_eq!(status, 200);
    let progress: Vec<_> = events
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| m["params"]["progress"].clone())
        .collect();
    assert_eq!(progress, [json!(1), json!(2), json!(3)]);
    let last = events.last().unwrap();
    assert_eq!(
        (
            last["id"].clone(),
            last["result"]["content"][0]["text"].clone()
        ),
        (json!(21), json!("done"))
    );
    assert!(events.iter().all(|m| m
        .get("method")
        .is_none_or(|m| m.as_str().unwrap().starts_with("notifications/"))));
}

#[actix_web::test]
async fn a_client_that_goes_away_cancels_its_stateless_call_upstream() {
    // A quiet call turns into a stream whose keep-alives (every 100 ms) find the client gone.
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![tiny("tiny", &marker())];
        s.server.keep_alive_ms = 100;
    })
    .await;
    let wait = request(
        71,
        "tools/call",
        json!({"name": "tiny_wait", "arguments": {}}),
        json!({}),
    );
    let cancelled = || async {
        let body = request(
            72,
            "tools/call",
            json!({"name": "tiny_cancelled", "arguments": {}}),
            json!({}),
        );
        let (_, reply) = answer(&app, &body).await;
        let text = reply["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_str::<Value>(&text).unwrap()
    };

    let mut waiting = post(&app, &wait, &[]).await;
    let kept_alive = tokio::time::timeout(Duration::from_secs(10), waiting.chunk()).await;
    let before = cancelled().await;
    drop(waiting);
    let after = TestApp::read_until(cancelled, |c| c != &json!([])).await;

    let first = kept_alive.unwrap().unwrap().unwrap();
    assert_eq!(&first[..], b": keep-alive\n\n");
    assert_eq!(before, json!([]), "the call is under way");
    assert_eq!(
        after.as_array().map(Vec::len),
        Some(1),
        "the upstream call was cancelled: {after}"
    );
}

#[actix_web::test]
async fn lists_may_be_reused_for_the_time_the_settings_give() {
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![tiny("tiny", &marker())];
        s.mcp.list_ttl_ms = 30_000;
    })
    .await;

    let (_, found) = answer(&app, &request(1, "server/discover", json!({}), json!({}))).await;
    let (_, listed) = answer(&app, &request(2, "tools/list", json!({}), json!({}))).await;
    let echo = json!({"name": "tiny_echo", "arguments": {"text": "hi"}});
    let (_, called) = answer(&app, &request(3, "tools/call", echo, json!({}))).await;

    for result in [&found["result"], &listed["result"]] {
        assert_eq!(
            (result["ttlMs"].as_u64(), result["cacheScope"].as_str()),
            (Some(30_000), Some("public")),
            "{result}"
        );
    }
    assert!(called["result"].get("ttlMs").is_none());
}
