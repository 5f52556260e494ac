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
async fn a_request_too_large_to_send_or_refused_as_too_large_is_the_clients_fault_not_the_backends()
{
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;
    let long = "a".repeat(70_000);
    let read = json!({"uri": format!("c:{long}")});
    let prompt = json!({"name": "c_summarize", "arguments": {"topic": long}});

    let mut answers = Vec::new();
    // More than the breaker's consecutive failures, each retried.
    for _ in 0..6 {
        answers.push(app.rpc(&session, "resources/read", read.clone()).await);
        answers.push(app.rpc(&session, "prompts/get", prompt.clone()).await);
    }
    let unavailable = app.gateway.catalog.load().unavailable.clone();
    let call = json!({"name": "c_echo", "arguments": {"text": "still here"}});
    let called = app.rpc(&session, "tools/call", call).await;

    for answer in &answers {
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
    }
    assert!(unavailable.is_empty(), "{unavailable:?}");
    assert_eq!(
        called["result"]["content"][0]["text"], "still here",
        "{called}"
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
            for answer in answers_in(&response.text().await.unwrap()) {
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

/// The JSON-RPC messages of an answer's body: one object, a batch, or the `data:` lines of an
/// event stream. A body that is none of these fails the test.
fn answers_in(body: &str) -> Vec<Value> {
    let parsed: Vec<Value> = match serde_json::from_str::<Value>(body) {
        Ok(value) => vec![value],
        Err(_) => body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect(),
    };
    assert!(
        body.is_empty() || !parsed.is_empty(),
        "an answer that is no JSON-RPC: {body:.200}"
    );
    parsed
        .into_iter()
        .flat_map(|value| match value {
            Value::Array(answers) => answers,
            single => vec![single],
        })
        .collect()
}

/// Seeded random requests to every method, most of them malformed (odd ids and params, values
/// of the wrong type, cut-off bodies, batches): each gets an answer under 500, every answer is
/// a result or an error with a code and a message, and the session still answers afterwards.
#[actix_web::test]
async fn random_malformed_requests_get_clear_errors_and_leave_the_session_working() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;
    let header = [("mcp-session-id", session.as_str())];
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e308),
        json!(""),
        json!("x".repeat(10_000)),
        json!([]),
        json!({}),
        json!([1, [2]]),
        json!("\u{0}"),
        json!({"a": {"b": null}}),
    ];
    let methods = [
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "initialize",
        "no/such/method",
    ];
    let names = [
        "c_echo",
        "c_fail",
        "c_summarize",
        "c:file://readme",
        "c_nothing",
    ];
    let keys = [
        "name",
        "uri",
        "cursor",
        "arguments",
        "level",
        "ref",
        "argument",
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    let mut answered = 0;
    for i in 0..300 {
        let mut params = serde_json::Map::new();
        for key in keys {
            if rng.bool() {
                continue;
            }
            let value = match rng.bool() {
                true => odd[rng.usize(..odd.len())].clone(),
                false => json!(names[rng.usize(..names.len())]),
            };
            params.insert(key.into(), value);
        }
        let method = methods[rng.usize(..methods.len())];
        let mut message = json!({"jsonrpc": "2.0", "id": i, "method": method, "params": params});
        if rng.u8(..8) == 0 {
            message["params"] = odd[rng.usize(..odd.len())].clone();
        }
        if rng.u8(..8) == 0 {
            message["id"] = odd[rng.usize(..odd.len())].clone();
        }
        if rng.u8(..10) == 0 {
            message = json!([message.clone(), message]);
        }
        let mut body = message.to_string();
        if rng.u8(..10) == 0 {
            body.truncate(rng.usize(..body.len()));
        }

        let response = app.post_mcp(&body, &header).await;

        let status = response.status().as_u16();
        let shown: String = body.chars().take(200).collect();
        assert!((200..500).contains(&status), "{shown} → {status}");
        let text = response.text().await.unwrap();
        for answer in answers_in(&text) {
            let result = answer.get("result").is_some();
            let code = answer["error"]["code"].as_i64();
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(
                result || (code.is_some() && !message.is_empty()),
                "{shown} → {answer}"
            );
            answered += 1;
        }
    }
    assert!(answered > 200, "only {answered} answers");
    let pong = app.rpc(&session, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
}

#[actix_web::test]
async fn an_answer_larger_than_max_response_bytes_is_refused_naming_the_setting() {
    let backend = FakeConnector::start().await;
    let mut small = connector("small", &backend.url);
    small.max_response_bytes = 2000;
    let app = spawn_app(vec![small]).await;
    let session = app.initialize().await;

    let answer = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "small_echo", "arguments": {"text": "x".repeat(5000)}}),
        )
        .await;

    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("larger than 2000 bytes (max_response_bytes)"),
        "{answer}"
    );
}

#[actix_web::test]
async fn an_unsubscribe_after_a_refused_subscribe_is_answered_as_for_any_other_uri() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;
    let uri = json!({"uri": "c:file://README.md"});

    let never = app
        .rpc(&session, "resources/unsubscribe", uri.clone())
        .await;
    let refused = app.rpc(&session, "resources/subscribe", uri.clone()).await;
    let after = app.rpc(&session, "resources/unsubscribe", uri).await;

    assert!(refused.get("error").is_some(), "{refused}");
    assert_eq!(never["result"], json!({}), "{never}");
    assert_eq!(after, never);
}
