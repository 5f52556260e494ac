//! A backend that ends its streams early and keeps their events (2025-11-25: a server may end
//! an SSE stream before it is done and have the client resume it with `GET` and
//! `Last-Event-ID`): an answer comes on the resumed stream, and the session's stream of server
//! messages is opened again, and when that loses what the backend said in between, lists are
//! loaded again and subscribers told to read again. The backend is the conformance fixture
//! with `--resumable`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::conformance::{behind, python, start_fixture};
use crate::helpers::TestApp;
use crate::stateless::{answer, post, request};
use crate::stateless_listen::listened;

/// The text of tool `name`'s answer through the gateway.
async fn called(app: &TestApp, id: i64, name: &str) -> (u16, Value) {
    let call = json!({"name": name, "arguments": {}});
    answer(app, &request(id, "tools/call", call, json!({}))).await
}

/// Whether the gateway lists the fixture's dynamic tool.
async fn lists_dynamic_tool(app: &TestApp) -> bool {
    let (_, listed) = answer(app, &request(9, "tools/list", json!({}), json!({}))).await;
    let tools = listed["result"]["tools"].as_array().cloned();
    tools
        .unwrap_or_default()
        .iter()
        .any(|t| t["name"] == "only_test_dynamic_tool")
}

#[actix_web::test]
async fn an_answer_comes_on_the_resumed_stream_when_the_backend_ends_it_first() {
    let Some(python) = python() else {
        return;
    };
    let fixture = start_fixture(&python, &["--resumable"]);
    // Connector timeout 2 s: an answer that never came would fail the call.
    let app = behind(&fixture.url, 60_000).await;

    let (status, resumed) = called(&app, 1, "only_test_resumed_answer").await;
    let (_, again) = called(&app, 2, "only_test_resumed_answer").await;
    let (_, plain) = called(&app, 3, "only_test_simple_text").await;
    let (_, resumptions) = called(&app, 4, "only_test_resumptions").await;

    assert_eq!(status, 200, "{resumed}");
    assert_eq!(
        resumed["result"]["content"][0]["text"], "Answered after the stream ended",
        "{resumed}"
    );
    assert_eq!(
        again["result"]["content"][0]["text"], "Answered after the stream ended",
        "the session goes on: {again}"
    );
    assert!(plain["result"]["content"][0]["text"].is_string(), "{plain}");
    assert_eq!(
        resumptions["result"]["content"][0]["text"], "2",
        "each answer stream was resumed once, with Last-Event-ID"
    );
}

#[actix_web::test]
async fn the_stream_of_server_messages_is_opened_again_after_the_backend_ends_it() {
    let Some(python) = python() else {
        return;
    };
    let fixture = start_fixture(&python, &["--resumable"]);
    // Lists are reloaded only when the backend says they changed.
    let app = behind(&fixture.url, 60_000).await;
    let (_, first) = called(&app, 1, "only_test_simple_text").await;
    let before = lists_dynamic_tool(&app).await;
    // Each change is told while the stream is ended: the first one before the stream carried
    // any event (opened afresh: the lists are loaded again), the second after (resumed from
    // its last event, the change is sent again).
    let mut steps = Vec::new();
    for (id, step, lists) in [
        (2, "only_test_end_message_stream", None),
        (3, "only_test_trigger_tool_change", Some(true)),
        (4, "only_test_trigger_tool_change", Some(false)),
        (5, "only_test_end_message_stream", None),
        (6, "only_test_trigger_tool_change", Some(true)),
    ] {
        let (_, said) = called(&app, id, step).await;
        let listed = match lists {
            Some(wanted) => {
                TestApp::read_until(|| lists_dynamic_tool(&app), |l| *l == wanted).await
            }
            None => lists_dynamic_tool(&app).await,
        };
        steps.push((step, said["result"]["content"][0]["text"].clone(), listed));
    }
    let (_, resumptions) = called(&app, 7, "only_test_resumptions").await;

    assert!(first["result"].is_object(), "{first}");
    assert!(!before);
    let said: Vec<&str> = steps.iter().map(|s| s.1.as_str().unwrap_or("")).collect();
    assert_eq!(
        said,
        [
            "Ended",
            "Mutation triggered",
            "Mutation triggered",
            "Ended",
            "Mutation triggered"
        ]
    );
    let listed: Vec<bool> = steps.iter().map(|s| s.2).collect();
    assert_eq!(
        listed,
        [false, true, false, false, true],
        "a change told while the stream was ended reaches the gateway"
    );
    assert_eq!(
        resumptions["result"]["content"][0]["text"], "1",
        "only the stream that had carried an event was resumed"
    );
}

#[actix_web::test]
async fn subscribers_are_told_to_read_again_when_the_stream_is_opened_afresh() {
    let Some(python) = python() else {
        return;
    };
    let fixture = start_fixture(&python, &["--resumable"]);
    let app = behind(&fixture.url, 60_000).await;
    let notifications = json!({"resourceSubscriptions": ["only:test://watched-resource"]});
    let listen = request(
        11,
        "subscriptions/listen",
        json!({ "notifications": notifications }),
        json!({}),
    );
    let mut stream = post(&app, &listen, &[]).await;
    let ack = listened(&mut stream, 1, Duration::from_secs(10)).await;

    // The backend's stream has carried no event: it is opened again afresh.
    let (_, ended) = called(&app, 12, "only_test_end_message_stream").await;
    let told = listened(&mut stream, 1, Duration::from_secs(10)).await;

    assert_eq!(
        ack[0]["params"]["notifications"]["resourceSubscriptions"],
        json!(["only:test://watched-resource"])
    );
    assert_eq!(ended["result"]["content"][0]["text"], "Ended");
    let told = told.first().cloned().unwrap_or_default();
    assert_eq!(told["method"], "notifications/resources/updated", "{told}");
    assert_eq!(told["params"]["uri"], "only:test://watched-resource");
}
