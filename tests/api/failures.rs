//! Backends that hang, fail, answer garbage or vanish: clients get a clear error in time, and
//! other connectors keep working.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_connector::{Behaviour, FakeConnector};
use crate::helpers::{connector, spawn_app};

#[actix_web::test]
async fn a_hanging_connector_fails_within_its_timeout_while_another_answers() {
    let slow = FakeConnector::start().await;
    let fine = FakeConnector::start().await;
    let mut slow_settings = connector("slow", &slow.url);
    slow_settings.timeout_ms = 500;
    let app = spawn_app(vec![slow_settings, connector("fine", &fine.url)]).await;
    let session = app.initialize().await;
    slow.set_behaviour(Behaviour::Hang);

    let started = Instant::now();
    let (hung, answered) = tokio::join!(
        app.rpc(
            &session,
            "tools/call",
            json!({"name": "slow_echo", "arguments": {"text": "x"}})
        ),
        app.rpc(
            &session,
            "tools/call",
            json!({"name": "fine_echo", "arguments": {"text": "y"}})
        ),
    );

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(hung["error"]["code"], -32000);
    assert!(hung["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`slow`"));
    assert_eq!(hung["error"]["data"]["kind"], "timeout");
    assert_eq!(answered["result"]["content"][0]["text"], "y");
}

#[actix_web::test]
async fn a_connector_answering_garbage_is_a_backend_error_naming_it() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("junk", &backend.url)]).await;
    let session = app.initialize().await;
    backend.set_behaviour(Behaviour::Garbage);

    let response = app
        .rpc(&session, "tools/call", json!({"name": "junk_echo"}))
        .await;
    let resource = app
        .rpc(
            &session,
            "resources/read",
            json!({"uri": "junk:file://README.md"}),
        )
        .await;

    assert_eq!(response["error"]["code"], -32000);
    assert_eq!(response["error"]["data"]["kind"], "bad_response");
    assert!(response["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`junk`"));
    assert_eq!(resource["error"]["code"], -32000);
}

#[actix_web::test]
async fn a_stopped_connector_is_unreachable_and_its_last_catalog_stays_listed() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("gone", &backend.url)]).await;
    let session = app.initialize().await;

    backend.stop().await;
    let started = Instant::now();
    let response = app
        .rpc(&session, "tools/call", json!({"name": "gone_echo"}))
        .await;

    let listed = app.rpc(&session, "tools/list", json!({})).await;

    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(response["error"]["code"], -32000, "{response}");
    assert_eq!(response["error"]["data"]["kind"], "unreachable");
    assert_eq!(listed["result"]["tools"][0]["name"], "gone_echo");
    app.wait_until(|app| app.stored_calls() == 1).await;
}

#[actix_web::test]
async fn a_connector_500_on_a_prompt_is_a_backend_error_and_recovers() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("p", &backend.url)]).await;
    let session = app.initialize().await;
    let params = json!({"name": "p_summarize", "arguments": {"topic": "t"}});

    backend.set_behaviour(Behaviour::Fail);
    let failed = app.rpc(&session, "prompts/get", params.clone()).await;
    backend.set_behaviour(Behaviour::Normal);
    app.wait_until(|app| app.gateway.catalog.load().unavailable.is_empty())
        .await;
    let recovered = app.rpc(&session, "prompts/get", params).await;

    assert_eq!(failed["error"]["code"], -32000);
    assert_eq!(failed["error"]["data"]["kind"], "backend_error");
    assert_eq!(
        recovered["result"]["messages"][0]["content"]["text"],
        "Summarize t."
    );
}

#[actix_web::test]
async fn hostile_bodies_never_crash_the_gateway() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;
    let header = [("mcp-session-id", session.as_str())];
    let bodies = [
        "", "null", "[]", "[[]]", "{}", "\"text\"", "{\"jsonrpc\":\"2.0\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":5}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":[]}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"c_summarize\",\"arguments\":{\"topic\":3}}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{\"cursor\":\"o ffffffffffffffffffff\"}}",
        "\u{0}\u{1}\u{2}",
    ];

    for body in bodies {
        let response = app.post_mcp(body, &header).await;
        let status = response.status().as_u16();
        assert!((200..500).contains(&status), "{body:?} → {status}");
        if status != 202 {
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            let answers = match answer {
                Value::Array(answers) => answers,
                single => vec![single],
            };
            for answer in answers {
                let code = answer["error"]["code"].as_i64().unwrap_or(0);
                assert!(
                    [-32700, -32600, -32601, -32602].contains(&code),
                    "{body:?} → {answer}"
                );
            }
        }
    }
    let pong = app.rpc(&session, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
}
