//! Feedback in: the ops API, the built-in MCP tool and automatic signals, to the trainer's live
//! figures and to the store, off the request path.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_with, StoreKind, TestApp};

async fn app_with_feedback_tool(store: StoreKind) -> (TestApp, FakeConnector) {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(store, |s| {
        s.connectors = vec![connector("c", &url)];
        s.feedback.tool_name = "mcpgate_feedback".into();
    })
    .await;
    (app, backend)
}

fn stored(app: &TestApp, kind: &str, target: &str) -> i64 {
    let mut conn = app.gateway.pool.get().unwrap();
    mcpgate::store::feedback::count_for(&mut conn, kind, target).unwrap()
}

async fn target(app: &TestApp, kind: &str, name: &str) -> Value {
    let (_, body) = app.get_json("/api/v1/targets").await;
    body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == kind && t["target"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[actix_web::test]
async fn feedback_through_the_api_is_validated_stored_and_seen_by_the_trainer() {
    let (app, _backend) = app_with_feedback_tool(StoreKind::Postgres).await;

    let (accepted, _) = app
        .send_json(
            "POST",
            "/api/v1/feedback",
            &json!({"target_kind": "tool", "target": "c_echo",
            "rating": 4, "suggestion": "say what the text is for"}),
        )
        .await;
    let (thumbs, _) = app
        .send_json(
            "POST",
            "/api/v1/feedback",
            &json!({"target_kind": "tool", "target": "c_echo", "rating": "down"}),
        )
        .await;
    let (invalid, body) = app
        .send_json(
            "POST",
            "/api/v1/feedback",
            &json!({"target_kind": "tool", "target": "c_nope", "rating": 7}),
        )
        .await;
    let (unknown_field, _) = app
        .send_json(
            "POST",
            "/api/v1/feedback",
            &json!({"target_kind": "tool", "target": "c_echo", "stars": 3}),
        )
        .await;
    let malformed = app
        .client
        .post(format!("{}/api/v1/feedback", app.address))
        .body("{")
        .send()
        .await
        .unwrap();
    let everything = json!({"target_kind": "widget", "rating": 9, "version": 0, "suggestion": 5});
    let (wrong, wrong_body) = app.send_json("POST", "/api/v1/feedback", &everything).await;

    assert_eq!(
        (accepted, thumbs, invalid, unknown_field),
        (202, 202, 422, 422)
    );
    assert!(body["fields"]["target"]
        .as_str()
        .unwrap()
        .contains("c_nope"));
    assert!(body["fields"].get("rating").is_some());
    assert_eq!(malformed.status(), 400);
    assert_eq!(wrong, 422);
    let named: Vec<&String> = wrong_body["fields"].as_object().unwrap().keys().collect();
    assert_eq!(
        named,
        ["rating", "suggestion", "target", "target_kind", "version"],
        "{wrong_body}"
    );
    app.wait_until(|app| stored(app, "tool", "c_echo") == 2)
        .await;
    let view = target(&app, "tool", "c_echo").await;
    assert_eq!(view["ratings"], 2);
    assert_eq!(view["mean_rating"], 0.375);
    assert_eq!(
        view["suggestions"], 0,
        "a rated suggestion counts as a rating"
    );
}

#[actix_web::test]
async fn text_with_nul_is_refused_by_name_and_later_feedback_is_still_written() {
    let (app, _backend) = app_with_feedback_tool(StoreKind::Postgres).await;
    let session = app.initialize().await;
    let nul = |field: &str, text: &str| json!({"target_kind": "tool", "target": "c_echo", "rating": 4, field: text});

    let (api, api_body) = app
        .send_json("POST", "/api/v1/feedback", &nul("suggestion", "evil\0x"))
        .await;
    let (version, version_body) = app
        .send_json(
            "POST",
            "/api/v1/prompts/tool:c_echo/versions",
            &json!({"text": "Echo\0 text", "reason": "ok"}),
        )
        .await;
    let tool = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "mcpgate_feedback", "arguments": nul("error", "bad\0")}),
        )
        .await;
    let (fine, _) = app
        .send_json("POST", "/api/v1/feedback", &nul("suggestion", "fine"))
        .await;

    assert_eq!(
        (api, version, fine),
        (422, 422, 202),
        "{api_body} {version_body}"
    );
    assert_eq!(
        api_body["fields"]["suggestion"],
        "must not contain NUL (U+0000)"
    );
    assert_eq!(
        version_body["fields"]["text"],
        "must not contain NUL (U+0000)"
    );
    assert_eq!(tool["result"]["isError"], true, "{tool}");
    let text = tool["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("error") && text.contains("NUL"), "{text}");
    app.wait_until(|app| stored(app, "tool", "c_echo") == 1)
        .await;
}

#[actix_web::test]
async fn a_backend_tool_exposed_as_the_feedback_tool_gets_a_name_of_its_own() {
    let backend = FakeConnector::with_tools(vec![
        json!({"name": "feedback", "inputSchema": {"type": "object"}}),
    ])
    .await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![connector("mcpgate", &url)];
        s.feedback.tool_name = "mcpgate_feedback".into();
    })
    .await;
    let session = app.initialize().await;

    let names = app.tool_names(&session).await;
    let own = names.iter().filter(|n| *n == "mcpgate_feedback").count();
    let renamed: Vec<_> = names
        .iter()
        .filter(|n| n.starts_with("mcpgate_feedback_"))
        .collect();
    assert_eq!((own, renamed.len()), (1, 1), "{names:?}");
    let called = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": renamed[0], "arguments": {}}),
        )
        .await;

    assert!(called["result"]["content"].is_array(), "{called}");
    assert_ne!(called["result"]["isError"], true, "{called}");
    assert_eq!(backend.executions(), 1);
}

#[actix_web::test]
async fn the_built_in_tool_records_feedback_for_the_calling_session() {
    let (app, _backend) = app_with_feedback_tool(StoreKind::Sqlite).await;
    let session = app.initialize().await;

    let names = app.tool_names(&session).await;
    let rated = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "mcpgate_feedback", "arguments": {
            "target_kind": "tool", "target": "c_echo", "rating": 5}}),
        )
        .await;
    let wrong = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "mcpgate_feedback", "arguments": {
            "target_kind": "tool", "target": "c_echo", "rating": "great"}}),
        )
        .await;

    assert_eq!(names.last().unwrap(), "mcpgate_feedback");
    assert!(rated["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("recorded"));
    assert_eq!(wrong["result"]["isError"], true);
    assert!(wrong["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("rating"));
    app.wait_until(|app| stored(app, "tool", "c_echo") == 1)
        .await;
    let mut conn = app.gateway.pool.get().unwrap();
    use diesel::prelude::*;
    use mcpgate::store::schema::feedback::dsl;
    let (source, session_id): (String, Option<String>) = dsl::feedback
        .select((dsl::source, dsl::session_id))
        .first(&mut conn)
        .unwrap();
    assert_eq!(source, "tool");
    assert_eq!(session_id.as_deref(), Some(session.as_str()));
}

#[actix_web::test]
async fn every_tool_call_and_prompt_fetch_is_a_signal() {
    let (app, _backend) = app_with_feedback_tool(StoreKind::Postgres).await;
    let session = app.initialize().await;

    for _ in 0..3 {
        app.rpc(
            &session,
            "tools/call",
            json!({"name": "c_echo", "arguments": {"text": "a"}}),
        )
        .await;
    }
    app.rpc(&session, "tools/call", json!({"name": "c_fail"}))
        .await;
    app.rpc(
        &session,
        "prompts/get",
        json!({"name": "c_summarize", "arguments": {"topic": "t"}}),
    )
    .await;

    app.wait_until(|app| {
        stored(app, "tool", "c_echo") == 3 && stored(app, "prompt", "c_summarize") == 1
    })
    .await;
    let echo = target(&app, "tool", "c_echo").await;
    let fail = target(&app, "tool", "c_fail").await;
    let prompt = target(&app, "prompt", "c_summarize").await;
    assert_eq!(
        (echo["uses"].clone(), echo["errors"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(
        (fail["uses"].clone(), fail["error_rate"].clone()),
        (json!(1), json!(1.0))
    );
    assert_eq!(prompt["uses"], 1);
}

#[actix_web::test]
async fn feedback_is_accepted_at_once_while_the_database_is_away_and_written_after() {
    let (app, _backend) = app_with_feedback_tool(StoreKind::Postgres).await;

    app.db.take_offline();
    let started = Instant::now();
    for _ in 0..5 {
        let (status, _) = app
            .send_json(
                "POST",
                "/api/v1/feedback",
                &json!({"target_kind": "tool", "target": "c_echo", "rating": "up"}),
            )
            .await;
        assert_eq!(status, 202);
    }
    let took = started.elapsed();
    app.db.bring_online();

    assert!(took < Duration::from_secs(2), "{took:?}");
    app.wait_until(|app| stored(app, "tool", "c_echo") == 5)
        .await;
}
