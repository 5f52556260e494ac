//! MCP servers as backends: a stdio process (a tiny stdlib server), progress and sampling
//! carried through, capability gating, crash restarts, idle timeout, no process left behind,
//! and cancellation. What the process sends on its own is in `subscriptions`.

use std::time::Duration;

use mcpgate::connector::ConnectorSettings;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, StoreKind, TestApp};

pub(crate) fn tiny(name: &str, marker: &str) -> ConnectorSettings {
    serde_json::from_value(json!({
        "name": name, "kind": "stdio", "command": "python3",
        "args": ["tests/interop/tiny_stdio_server.py", "--marker", marker],
        "timeout_ms": 5000, "health_check_interval_ms": 200, "health_check_timeout_ms": 2000,
    }))
    .unwrap()
}

pub(crate) fn marker() -> String {
    format!("mcpgate-test-{}", uuid::Uuid::new_v4().simple())
}

/// Processes whose command line holds `marker`, and how many of them are zombies.
fn processes_with(marker: &str) -> (usize, usize) {
    let mut found = (0, 0);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(marker) {
            continue;
        }
        found.0 += 1;
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            found.1 += 1;
        }
    }
    found
}

/// Initializes a session that declares `capabilities`.
async fn session_with(app: &TestApp, capabilities: Value) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities,
        "clientInfo": {"name": "t", "version": "0"}}});
    let response = app.post_mcp(&body.to_string(), &[]).await;
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Reads SSE events from `response` until one carries an `id` and no `method` (the answer),
/// answering sampling requests with `reply` on the way; returns every message seen.
async fn read_until_answer(
    app: &TestApp,
    session: &str,
    mut response: reqwest::Response,
    reply: &str,
) -> Vec<Value> {
    let mut parser = mcpgate::upstream::sse::Parser::new(usize::MAX);
    let mut seen = Vec::new();
    loop {
        let chunk = actix_rt::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream holds the answer");
        for event in parser.push(&chunk).expect("no limit") {
            let message: Value = serde_json::from_str(&event.data).unwrap();
            if message["method"] == "sampling/createMessage" {
                let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": {
                    "role": "assistant", "content": {"type": "text", "text": reply},
                    "model": "test"}});
                let posted = app
                    .post_mcp(&answer.to_string(), &[("mcp-session-id", session)])
                    .await;
                assert_eq!(posted.status(), 202);
            }
            let is_answer = message.get("id").is_some() && message.get("method").is_none();
            seen.push(message);
            if is_answer {
                return seen;
            }
        }
    }
}

async fn call_streaming(app: &TestApp, session: &str, params: Value) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let response = app
        .post_mcp(&body.to_string(), &[("mcp-session-id", session)])
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

#[actix_web::test]
async fn a_stdio_server_is_listed_and_called_with_its_progress_carried_through() {
    let marker = marker();
    let app = spawn_app(vec![tiny("tiny", &marker)]).await;
    let session = app.initialize().await;

    let names = app.tool_names(&session).await;
    let echo = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "tiny_echo", "arguments": {"text": "hi"}}),
        )
        .await;
    let params =
        json!({"name": "tiny_progress", "arguments": {}, "_meta": {"progressToken": "p-1"}});
    let response = call_streaming(&app, &session, params).await;
    let seen = read_until_answer(&app, &session, response, "").await;

    assert!(
        names.contains(&"tiny_echo".to_string()) && names.contains(&"tiny_progress".to_string())
    );
    assert_eq!(echo["result"]["content"][0]["text"], "hi");
    let progress: Vec<_> = seen
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| {
            (
                m["params"]["progressToken"].clone(),
                m["params"]["progress"].clone(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            (json!("p-1"), json!(1)),
            (json!("p-1"), json!(2)),
            (json!("p-1"), json!(3))
        ]
    );
    assert_eq!(seen.last().unwrap()["result"]["content"][0]["text"], "done");
}

/// A call's own answer stream that is not read holds what fits in its slots as 16 KiB pieces
/// (about 16 MiB), not 1,024 whole messages: the rest of what the backend sent meanwhile is
/// not kept for it, and the answer still comes.
#[actix_web::test]
async fn a_call_stream_that_is_not_read_keeps_megabytes_not_every_message() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;
    app.wait_until(|app| {
        app.gateway
            .catalog
            .load()
            .catalog
            .tool("tiny_progress")
            .is_some()
    })
    .await;

    // 40 notifications of 1 MiB each, none read until the backend has sent them all: the echo
    // after them is answered only then, as the process serves one request at a time.
    let params = json!({"name": "tiny_progress", "arguments": {"steps": 40, "bytes": 1 << 20},
        "_meta": {"progressToken": "p-2"}});
    let response = call_streaming(&app, &session, params).await;
    let echo = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "tiny_echo", "arguments": {"text": "after"}}),
        )
        .await;
    let seen = read_until_answer(&app, &session, response, "").await;

    assert_eq!(echo["result"]["content"][0]["text"], "after");
    let progress = seen
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert!(
        (1..40).contains(&progress),
        "{progress} of 40 notifications were kept for the stream"
    );
    assert_eq!(seen.last().unwrap()["result"]["content"][0]["text"], "done");
}

#[actix_web::test]
async fn sampling_reaches_a_client_that_declared_it_and_is_refused_for_one_that_did_not() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let able = session_with(&app, json!({"sampling": {}})).await;
    let unable = session_with(&app, json!({})).await;

    let response = call_streaming(&app, &able, json!({"name": "tiny_ask", "arguments": {}})).await;
    let seen = read_until_answer(&app, &able, response, "from the client").await;
    let refused = app
        .rpc(
            &unable,
            "tools/call",
            json!({"name": "tiny_ask", "arguments": {}}),
        )
        .await;

    assert!(seen.iter().any(|m| m["method"] == "sampling/createMessage"));
    let answer = seen.last().unwrap();
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "sampled: from the client"
    );
    assert_eq!(refused["result"]["isError"], true);
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("did not declare the `sampling` capability"),
        "{text}"
    );
}

/// A process's request for the client names no request over stdio. While requests of two
/// sessions are under way it belongs to neither for sure, so it is refused to the process
/// rather than shown to the other session.
#[actix_web::test]
async fn a_stdio_servers_request_is_not_guessed_between_two_sessions() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let first = session_with(&app, json!({"sampling": {}})).await;
    let second = session_with(&app, json!({"sampling": {}})).await;
    app.wait_until(|app| {
        app.gateway
            .catalog
            .load()
            .catalog
            .tool("tiny_ask")
            .is_some()
    })
    .await;

    // The process asks 1 s after the first call, while the second session's call waits.
    let ask = json!({"name": "tiny_ask", "arguments": {"after_ms": 1000}});
    let asking = async {
        let response = call_streaming(&app, &first, ask).await;
        read_until_answer(&app, &first, response, "from the first").await
    };
    let echoing = async {
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        let echo = json!({"name": "tiny_echo", "arguments": {"text": "second"}});
        let response = call_streaming(&app, &second, echo).await;
        read_until_answer(&app, &second, response, "from the second").await
    };
    let (asked, echoed) = tokio::join!(asking, echoing);

    let sampled = |seen: &[Value]| seen.iter().any(|m| m["method"] == "sampling/createMessage");
    assert!(
        !sampled(&asked) && !sampled(&echoed),
        "{asked:?} {echoed:?}"
    );
    let refused = &asked.last().unwrap()["result"];
    assert_eq!(refused["isError"], true, "{refused}");
    let text = refused["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("several client sessions"), "{text}");
    assert_eq!(
        echoed.last().unwrap()["result"]["content"][0]["text"],
        "second"
    );
}

#[actix_web::test]
async fn a_crashed_process_is_restarted_and_serves_again() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;

    let crashed = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "tiny_crash", "arguments": {}}),
        )
        .await;
    let call = || {
        let echo = json!({"name": "tiny_echo", "arguments": {"text": "back"}});
        app.rpc(&session, "tools/call", echo)
    };
    let answer = TestApp::read_until(call, |a| a.get("result").is_some()).await;

    // At once, though the process it started still holds its stdout: a backend failure (it
    // counts against the breaker), not the backend's own error nor a timeout.
    assert_eq!(crashed["error"]["code"], -32000);
    assert_eq!(crashed["error"]["data"]["kind"], "unreachable", "{crashed}");
    assert_eq!(answer["result"]["content"][0]["text"], "back");
}

#[actix_web::test]
async fn a_call_longer_than_the_idle_timeout_is_answered_not_ended_with_its_process() {
    let mut settings = tiny("tiny", &marker());
    settings.idle_timeout_ms = 300;
    settings.health_check_interval_ms = 100;
    let app = spawn_app(vec![settings]).await;
    let session = app.initialize().await;

    let slept = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "tiny_sleep", "arguments": {"ms": 1500}}),
        )
        .await;

    assert_eq!(slept["result"]["content"][0]["text"], "slept", "{slept}");
}

#[actix_web::test]
async fn a_process_that_ignores_term_is_killed_with_its_group_when_removed() {
    let marker = marker();
    let app = spawn_app_with(StoreKind::Sqlite, |_| {}).await;
    let mut settings = tiny("stubborn", &marker);
    settings.args.push("--stubborn".into());
    let body = serde_json::to_value(settings).unwrap();
    let (created, view) = app.send_json("POST", "/api/v1/connectors", &body).await;
    assert_eq!(created, 201, "{view}");
    app.wait_until_view("stubborn", |v| v["tools"].as_u64() > Some(0))
        .await;
    assert_eq!(processes_with(&marker).0, 2, "server and grandchild");

    let (removed, _) = app
        .send_json("DELETE", "/api/v1/connectors/stubborn", &json!({}))
        .await;

    assert_eq!(removed, 204);
    app.wait_until(|_| processes_with(&marker) == (0, 0)).await;
}

#[actix_web::test]
async fn an_idle_process_is_ended_and_started_again_on_the_next_call() {
    let marker = marker();
    let mut settings = tiny("tiny", &marker);
    settings.idle_timeout_ms = 300;
    settings.health_check_interval_ms = 100;
    let app = spawn_app(vec![settings]).await;
    let session = app.initialize().await;
    app.rpc(
        &session,
        "tools/call",
        json!({"name": "tiny_echo", "arguments": {"text": "a"}}),
    )
    .await;

    app.wait_until(|_| processes_with(&marker) == (0, 0)).await;
    let again = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "tiny_echo", "arguments": {"text": "b"}}),
        )
        .await;

    assert_eq!(again["result"]["content"][0]["text"], "b");
    assert_eq!(
        processes_with(&marker).0,
        2,
        "server and its grandchild run again"
    );
}

#[actix_web::test]
async fn many_start_stop_cycles_leave_no_process_and_no_zombie() {
    let marker = marker();
    let app = spawn_app_with(StoreKind::Sqlite, |_| {}).await;
    let body = serde_json::to_value(tiny("cycle", &marker)).unwrap();

    for cycle in 0..8 {
        let (created, view) = app.send_json("POST", "/api/v1/connectors", &body).await;
        assert_eq!(created, 201, "cycle {cycle}: {view}");
        app.wait_until_view("cycle", |v| v["tools"].as_u64() > Some(0))
            .await;
        assert_eq!(
            processes_with(&marker).0,
            2,
            "cycle {cycle}: server and grandchild"
        );
        let (removed, _) = app
            .send_json("DELETE", "/api/v1/connectors/cycle", &json!({}))
            .await;
        assert_eq!(removed, 204);
        app.wait_until(|_| processes_with(&marker) == (0, 0)).await;
    }

    assert_eq!(processes_with(&marker), (0, 0));
}

#[actix_web::test]
async fn a_cancelled_request_is_cancelled_upstream_with_the_upstream_id() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;

    let waiting = call_streaming(
        &app,
        &session,
        json!({"name": "tiny_wait", "arguments": {}}),
    );
    let cancel = async {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 7, "reason": "the user gave up"}});
        app.post_mcp(&note.to_string(), &[("mcp-session-id", &session)])
            .await
    };
    let (response, cancelled) = tokio::join!(waiting, cancel);
    let text = response.text().await.unwrap();
    let listed = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "tiny_cancelled", "arguments": {}}),
        )
        .await;

    assert_eq!(cancelled.status(), 202);
    assert!(text.contains("-32800"), "{text}");
    let ids: Vec<Value> =
        serde_json::from_str(listed["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        ids.len(),
        1,
        "the backend saw its own request cancelled: {ids:?}"
    );
    assert!(
        ids[0].is_u64(),
        "the backend's id, not the client's: {ids:?}"
    );
}

#[actix_web::test]
async fn a_request_under_way_when_its_session_is_deleted_is_answered_with_its_own_id() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let session = app.initialize().await;

    let waiting = call_streaming(
        &app,
        &session,
        json!({"name": "tiny_wait", "arguments": {}}),
    );
    let delete = async {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        app.end_session(&session).await
    };
    let (response, deleted) = tokio::join!(waiting, delete);
    let text = response.text().await.unwrap();

    assert_eq!(deleted.status(), 200);
    let answer: Value = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str(data).ok())
        .find(|m: &Value| m.get("error").is_some())
        .unwrap_or_else(|| panic!("an error on the stream: {text}"));
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["error"]["message"], "the session has ended");
}
