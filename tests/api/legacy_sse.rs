//! The legacy HTTP+SSE transport: endpoint event, 202 on post, answers on the stream.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app, TestApp};

/// A client's view of an open `GET /sse` stream.
pub(crate) struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    pub(crate) async fn open(app: &TestApp) -> SseClient {
        let response = app
            .client
            .get(format!("{}/sse", app.address))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseClient {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (name, data), skipping keep-alive comments.
    pub(crate) async fn next_event(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !data.is_empty() {
                    return (name, data);
                }
                continue;
            }
            let chunk = actix_rt::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("stream open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    pub(crate) async fn next_message(&mut self) -> Value {
        let (name, data) = self.next_event().await;
        assert_eq!(name, "message");
        serde_json::from_str(&data).unwrap()
    }
}

pub(crate) async fn post(app: &TestApp, endpoint: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{endpoint}", app.address))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn the_stream_names_the_endpoint_and_carries_the_answers() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("notes", &backend.url)]).await;
    let mut sse = SseClient::open(&app).await;

    let (name, endpoint) = sse.next_event().await;
    assert_eq!(name, "endpoint");
    assert!(endpoint.starts_with("/messages?session_id="));

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let accepted = post(&app, &endpoint, init).await;
    assert_eq!(accepted.status(), 202);
    let answer = sse.next_message().await;
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");

    post(
        &app,
        &endpoint,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "notes_echo", "arguments": {"text": "over sse"}}});
    post(&app, &endpoint, call).await;
    let answer = sse.next_message().await;
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["content"][0]["text"], "over sse");
}

#[actix_web::test]
async fn a_client_that_does_not_accept_event_streams_gets_406_and_no_session() {
    let app = spawn_app(vec![]).await;

    let response = app
        .client
        .get(format!("{}/sse", app.address))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 406);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("text/event-stream"));
    assert_eq!(app.gateway.sessions.len(), 0);
}

#[actix_web::test]
async fn a_request_before_initialize_is_refused_on_the_stream() {
    let app = spawn_app(vec![]).await;
    let mut sse = SseClient::open(&app).await;
    let (_, endpoint) = sse.next_event().await;

    post(
        &app,
        &endpoint,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;

    let answer = sse.next_message().await;
    assert_eq!(answer["error"]["code"], -32600);
}

#[actix_web::test]
async fn posting_to_an_unknown_session_is_404_and_malformed_json_is_400() {
    let app = spawn_app(vec![]).await;
    let mut sse = SseClient::open(&app).await;
    let (_, endpoint) = sse.next_event().await;

    let unknown = post(&app, "/messages?session_id=nope", json!({})).await;
    let malformed = app
        .client
        .post(format!("{}{endpoint}", app.address))
        .body("{not json")
        .send()
        .await
        .unwrap();

    assert_eq!(unknown.status(), 404);
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
}

#[actix_web::test]
async fn the_session_ends_when_the_stream_closes() {
    // A closed stream is noticed at the next write at the latest: keep-alives make that soon.
    let app = crate::helpers::spawn_app_with(crate::helpers::StoreKind::Postgres, |s| {
        s.server.keep_alive_ms = 100;
    })
    .await;
    let mut sse = SseClient::open(&app).await;
    let (_, endpoint) = sse.next_event().await;
    assert_eq!(app.gateway.sessions.len(), 1);

    drop(sse);

    app.wait_until(|app| app.gateway.sessions.is_empty()).await;
    let after = post(
        &app,
        &endpoint,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(after.status(), 404);
}

#[actix_web::test]
async fn idle_streams_get_keep_alive_comments() {
    let app = crate::helpers::spawn_app_with(crate::helpers::StoreKind::Postgres, |s| {
        s.server.keep_alive_ms = 100;
    })
    .await;
    let mut sse = SseClient::open(&app).await;
    let _ = sse.next_event().await;

    let chunk = actix_rt::time::timeout(Duration::from_secs(5), sse.response.chunk())
        .await
        .expect("a keep-alive within 5 s")
        .unwrap()
        .unwrap();

    assert!(String::from_utf8_lossy(&chunk).starts_with(": keep-alive"));
}

#[actix_web::test]
async fn a_client_that_stops_reading_large_answers_has_its_session_ended_not_buffered() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("notes", &backend.url)]).await;
    let mut sse = SseClient::open(&app).await;
    let (_, endpoint) = sse.next_event().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    post(&app, &endpoint, initialize).await;
    sse.next_message().await;

    // From here the stream is never read. 40 answers of 1 MiB: far fewer than the channel's
    // 1024 slots as whole messages, far more than its slots hold as 16 KiB pieces.
    let text = "x".repeat(1024 * 1024);
    for id in 1..=40 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "notes_echo", "arguments": {"text": text}}});
        post(&app, &endpoint, call).await;
    }
    let ping = || async {
        let ping = json!({"jsonrpc": "2.0", "id": 99, "method": "ping"});
        post(&app, &endpoint, ping).await.status().as_u16()
    };
    let status = TestApp::read_until(ping, |status| *status == 404).await;

    assert_eq!(status, 404, "the session that stopped reading is ended");
    drop(sse);
}
