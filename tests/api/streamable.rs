//! Streamable HTTP on /mcp: sessions, versions, framing, status codes.

use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app, spawn_app_with, StoreKind};

fn initialize_body(version: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
    .to_string()
}

#[actix_web::test]
async fn initialize_opens_a_session_and_echoes_a_supported_version() {
    let app = spawn_app(vec![]).await;

    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let response = app.post_mcp(&initialize_body(version), &[]).await;

        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("mcp-session-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], version);
        assert_eq!(body["result"]["serverInfo"]["name"], "mcpgate");
        assert_eq!(body["result"]["capabilities"]["tools"]["listChanged"], true);
    }
}

#[actix_web::test]
async fn an_unknown_version_is_answered_with_the_latest() {
    let app = spawn_app(vec![]).await;

    let response = app.post_mcp(&initialize_body("2099-01-01"), &[]).await;

    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
}

#[actix_web::test]
async fn a_notification_gets_202_without_a_body() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;

    let note =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}});
    let response = app
        .post_mcp(&note.to_string(), &[("mcp-session-id", &session)])
        .await;

    assert_eq!(response.status(), 202);
    assert!(response.text().await.unwrap().is_empty());
}

#[actix_web::test]
async fn a_request_without_a_session_is_400_and_an_unknown_session_404() {
    let app = spawn_app(vec![]).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();

    let missing = app.post_mcp(&ping, &[]).await;
    let unknown = app.post_mcp(&ping, &[("mcp-session-id", "nope")]).await;

    assert_eq!(missing.status(), 400);
    assert_eq!(unknown.status(), 404);
}

#[actix_web::test]
async fn initialize_naming_a_session_is_refused_by_it_and_opens_no_other() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;

    let again = app
        .post_mcp(
            &initialize_body("2025-11-25"),
            &[("mcp-session-id", &session)],
        )
        .await;
    let opened = again.headers().get("mcp-session-id").cloned();
    let body: Value = again.json().await.unwrap();
    let unknown = app
        .post_mcp(
            &initialize_body("2025-11-25"),
            &[("mcp-session-id", "gone")],
        )
        .await;

    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert_eq!(
        body["error"]["message"],
        "the session is already initialized"
    );
    assert_eq!(opened, None);
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.gateway.sessions.len(), 1);
    let ping = app.rpc(&session, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
}

#[actix_web::test]
async fn a_deleted_session_answers_404() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;

    let deleted = app.end_session(&session).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let after = app.post_mcp(&ping, &[("mcp-session-id", &session)]).await;

    assert_eq!(deleted.status(), 200);
    assert_eq!(after.status(), 404);
}

#[actix_web::test]
async fn an_unsupported_protocol_version_header_is_400() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();

    let response = app
        .post_mcp(
            &ping,
            &[
                ("mcp-session-id", &session),
                ("mcp-protocol-version", "1999-01-01"),
            ],
        )
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1999-01-01"));
}

#[actix_web::test]
async fn a_client_that_accepts_only_event_streams_gets_the_answer_as_an_event() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;

    let response = app
        .client
        .post(format!("{}/mcp", app.address))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .body(json!({"jsonrpc": "2.0", "id": 5, "method": "ping"}).to_string())
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let message: Value = serde_json::from_str(data).unwrap();
    assert_eq!(message, json!({"jsonrpc": "2.0", "id": 5, "result": {}}));
}

#[actix_web::test]
async fn a_client_that_accepts_neither_json_nor_events_gets_406() {
    let app = spawn_app(vec![]).await;

    let response = app
        .client
        .post(format!("{}/mcp", app.address))
        .header("accept", "text/html")
        .body(initialize_body("2025-11-25"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 406);
}

#[actix_web::test]
async fn a_batch_gets_a_batch_of_answers() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": "a", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "b", "method": "nope"},
    ]);

    let response = app
        .post_mcp(&batch.to_string(), &[("mcp-session-id", &session)])
        .await;

    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[0]["id"], "a");
    assert_eq!(body[1]["error"]["code"], -32601);
}

#[actix_web::test]
async fn the_get_stream_carries_list_changed_when_a_connector_adds_a_tool() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("fake", &backend.url)]).await;
    let session = app.initialize().await;
    let mut stream = app
        .client
        .get(format!("{}/mcp", app.address))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    backend.set_tools(vec![json!({"name": "brand_new"})]);

    let mut seen = String::new();
    while !seen.contains("notifications/tools/list_changed") {
        let chunk = actix_rt::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let tools = app.rpc(&session, "tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"][0]["name"], "fake_brand_new");
}

#[actix_web::test]
async fn the_sqlite_store_serves_the_same_endpoint() {
    let app = spawn_app_with(StoreKind::Sqlite, |_| {}).await;

    let session = app.initialize().await;
    let pong = app.rpc(&session, "ping", json!({})).await;

    assert_eq!(pong["result"], json!({}));
}

#[actix_web::test]
async fn odd_requests_are_told_what_is_wrong_with_them_in_json() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };

    let batch = format!("[{list}]");
    let stateless_batch = app
        .post_mcp(&batch, &[("mcp-protocol-version", "2026-07-28")])
        .await;
    let null_params = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": null});
    let null_params = app.post_mcp(&null_params.to_string(), &[]).await;
    let odd_id = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap();
    let odd_session = app
        .mcp_request("/mcp", &list.to_string())
        .header("mcp-session-id", odd_id)
        .send()
        .await
        .unwrap();
    let two_ids = app
        .client
        .post(format!(
            "{}/messages?session_id={session}&session_id=b",
            app.address
        ))
        .header("content-type", "application/json")
        .body(list.to_string())
        .send()
        .await
        .unwrap();

    let (status, body) = answer(stateless_batch).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!(-32600)),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a batch"));
    let (status, body) = answer(null_params).await;
    assert_eq!((status, &body["id"]), (400, &json!(1)), "{body}");
    assert_eq!(body["error"]["message"], "`params` must be an object");
    let (status, body) = answer(odd_session).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid"));
    let (status, body) = answer(two_ids).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("query string"));
}
