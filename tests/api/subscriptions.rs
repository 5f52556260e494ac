//! What a stdio backend sends on its own, through the gateway: list changes, and the updates of
//! subscribed resources. Subscriptions are withdrawn upstream when their session ends (even
//! before the backend has answered), taken again in the backend's new session, and updates name
//! the resource as the client's endpoint does.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::{marker, tiny};
use crate::helpers::{spawn_app, spawn_app_with, StoreKind, TestApp};

/// Opens the `GET` stream of `session` at `path` (`/mcp`, or a virtual server's).
async fn open_stream(app: &TestApp, path: &str, session: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap()
}

/// Reads `stream` until what came holds `needle` (at most 10 s per chunk); returns what came.
async fn read_until_seen(stream: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = actix_rt::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("`{needle}` within 10 s; came: {seen}"))
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

/// The resources the tiny server is subscribed to, as it tells `session`.
async fn subscribed_upstream(app: &TestApp, session: &str) -> Value {
    let call = json!({"name": "tiny_subscribed", "arguments": {}});
    let reply = app.rpc(session, "tools/call", call).await;
    let text = reply["result"]["content"][0]["text"].as_str().unwrap_or("");
    serde_json::from_str::<Value>(text).unwrap_or_default()
}

#[actix_web::test]
async fn an_upstream_list_change_reaches_the_client_and_the_new_tool_is_listed() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;
    let mut stream = open_stream(&app, "/mcp", &session).await;

    app.rpc(
        &session,
        "tools/call",
        json!({"name": "tiny_grow", "arguments": {}}),
    )
    .await;
    read_until_seen(&mut stream, "notifications/tools/list_changed").await;

    assert!(app
        .tool_names(&session)
        .await
        .contains(&"tiny_extra".to_string()));
}

#[actix_web::test]
async fn a_session_that_ends_unsubscribes_from_its_resources_upstream() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;
    let watcher = app.initialize().await;
    let subscribed = || subscribed_upstream(&app, &watcher);

    let reply = app
        .rpc(
            &session,
            "resources/subscribe",
            json!({"uri": "tiny:tiny://clock"}),
        )
        .await;
    let while_open = subscribed().await;
    let ended = app.end_session(&session).await;
    let after = TestApp::read_until(subscribed, |s| s == &json!([])).await;

    assert_eq!(reply["result"], json!({}), "{reply}");
    assert_eq!(while_open, json!(["tiny://clock"]));
    assert_eq!(ended.status(), 200);
    assert_eq!(
        after,
        json!([]),
        "the ended session's subscription is withdrawn upstream"
    );
}

#[actix_web::test]
async fn a_restarted_process_is_subscribed_again_and_subscribers_are_told_to_read_again() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;
    let other = app.initialize().await;
    let subscribed = || subscribed_upstream(&app, &other);
    let mut stream = open_stream(&app, "/mcp", &session).await;
    let reply = app
        .rpc(
            &session,
            "resources/subscribe",
            json!({"uri": "tiny:tiny://clock"}),
        )
        .await;
    assert_eq!(reply["result"], json!({}), "{reply}");

    let crash = json!({"name": "tiny_crash", "arguments": {}});
    app.rpc(&other, "tools/call", crash).await;
    let after = TestApp::read_until(subscribed, |s| s == &json!(["tiny://clock"])).await;
    let seen = read_until_seen(&mut stream, "notifications/resources/updated").await;

    assert_eq!(after, json!(["tiny://clock"]), "subscribed again upstream");
    assert!(seen.contains("tiny:tiny://clock"), "{seen}");
}

#[actix_web::test]
async fn a_session_that_ends_while_its_subscription_is_under_way_withdraws_it_upstream() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;
    let watcher = app.initialize().await;
    let subscribed = || subscribed_upstream(&app, &watcher);

    // The process takes a second to answer the subscription; the session ends meanwhile.
    let subscribe = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/subscribe",
        "params": {"uri": "tiny:tiny://slow"}})
    .to_string();
    let header = [("mcp-session-id", session.as_str())];
    let subscribing = app.post_mcp(&subscribe, &header);
    let ending = async {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        app.end_session(&session).await
    };
    let (_, ended) = tokio::join!(subscribing, ending);
    let after = TestApp::read_until(subscribed, |s| s == &json!([])).await;

    assert_eq!(ended.status(), 200);
    assert_eq!(after, json!([]), "the subscription under way is withdrawn");
}

#[actix_web::test]
async fn an_update_reaches_a_virtual_server_without_prefixes_by_the_uri_its_client_uses() {
    let raw: mcpgate::mcp::scope::VirtualServer =
        serde_json::from_value(json!({"name": "raw", "connectors": ["tiny"], "prefix": false}))
            .unwrap();
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![tiny("tiny", &marker())];
        s.servers = vec![raw];
    })
    .await;
    let path = "/servers/raw/mcp";
    let session = app.initialize_at(path).await;
    let other = app.initialize().await;
    let mut stream = open_stream(&app, path, &session).await;
    let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe",
        "params": {"uri": "tiny://clock"}});
    let header = [("mcp-session-id", session.as_str())];
    let reply = app.post_at(path, &subscribe.to_string(), &header).await;
    let reply = reply.text().await.unwrap();
    assert!(reply.contains(r#""result":{}"#), "{reply}");

    let touch = json!({"name": "tiny_touch", "arguments": {}});
    app.rpc(&other, "tools/call", touch).await;
    let seen = read_until_seen(&mut stream, "notifications/resources/updated").await;

    assert!(seen.contains(r#""uri":"tiny://clock""#), "{seen}");
}
