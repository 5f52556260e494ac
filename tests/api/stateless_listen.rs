//! `subscriptions/listen` (revision 2026-07-28): the acknowledgement, the list changes and
//! resource updates asked for and no others, and the subscriptions withdrawn when the stream
//! closes. The backend is the tiny stdio server.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backends::{marker, tiny};
use crate::helpers::{spawn_app, spawn_app_with, StoreKind, TestApp};
use crate::stateless::{answer, post, request};

/// Reads events from a listen stream until `want` of them came or `wait` passed.
pub(crate) async fn listened(
    response: &mut reqwest::Response,
    want: usize,
    wait: Duration,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while events.len() < want {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                events.push(serde_json::from_str(data).unwrap());
            }
        }
    }
    events
}

#[actix_web::test]
async fn subscriptions_listen_acknowledges_and_tells_only_of_the_changes_asked_for() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let listen = |id: i64, notifications: Value| {
        request(
            id,
            "subscriptions/listen",
            json!({"notifications": notifications}),
            json!({}),
        )
    };
    let mut tools = post(&app, &listen(31, json!({"toolsListChanged": true})), &[]).await;
    let mut prompts = post(&app, &listen(32, json!({"promptsListChanged": true})), &[]).await;
    let tools_ack = listened(&mut tools, 1, Duration::from_secs(10)).await;
    let prompts_ack = listened(&mut prompts, 1, Duration::from_secs(10)).await;
    let (bad_status, bad) = answer(&app, &listen(33, json!({"toolsListChanged": "yes"}))).await;

    let grow = json!({"name": "tiny_grow", "arguments": {}});
    let (_, grown) = answer(&app, &request(34, "tools/call", grow, json!({}))).await;
    let changed = listened(&mut tools, 1, Duration::from_secs(10)).await;
    let quiet = listened(&mut prompts, 1, Duration::from_millis(500)).await;

    assert_eq!(
        tools_ack[0]["method"],
        "notifications/subscriptions/acknowledged"
    );
    assert_eq!(
        tools_ack[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        31
    );
    assert_eq!(
        tools_ack[0]["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        prompts_ack[0]["params"]["notifications"],
        json!({"promptsListChanged": true})
    );
    assert_eq!(
        (bad_status, bad["error"]["code"].as_i64()),
        (400, Some(-32602))
    );
    assert_eq!(grown["result"]["content"][0]["text"], "grown");
    assert_eq!(changed[0]["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        31
    );
    assert!(
        quiet.is_empty(),
        "a prompts listener hears no tool change: {quiet:?}"
    );
}

/// The resources the tiny server has subscriptions for, as it says.
async fn subscribed_upstream(app: &TestApp) -> Value {
    let body = request(
        51,
        "tools/call",
        json!({"name": "tiny_subscribed", "arguments": {}}),
        json!({}),
    );
    let (_, reply) = answer(app, &body).await;
    serde_json::from_str(reply["result"]["content"][0]["text"].as_str().unwrap()).unwrap()
}

#[actix_web::test]
async fn a_listen_stream_carries_updates_of_its_resources_and_unsubscribes_when_closed() {
    // A closed stream is noticed at the next write: keep-alives every 100 ms.
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![tiny("tiny", &marker())];
        s.server.keep_alive_ms = 100;
    })
    .await;
    let notifications = json!({"resourceSubscriptions": ["tiny:tiny://clock", "tiny:tiny://nothing", "other:x://y"]});
    let body = request(
        52,
        "subscriptions/listen",
        json!({"notifications": notifications}),
        json!({}),
    );
    let mut stream = post(&app, &body, &[]).await;
    let ack = listened(&mut stream, 1, Duration::from_secs(10)).await;
    let while_open = subscribed_upstream(&app).await;

    let touch = request(
        53,
        "tools/call",
        json!({"name": "tiny_touch", "arguments": {}}),
        json!({}),
    );
    let (_, touched) = answer(&app, &touch).await;
    let updated = listened(&mut stream, 1, Duration::from_secs(10)).await;
    drop(stream);
    let after = TestApp::read_until(|| subscribed_upstream(&app), |s| s == &json!([])).await;

    assert_eq!(
        ack[0]["params"]["notifications"],
        json!({"resourceSubscriptions": ["tiny:tiny://clock"]}),
        "only the resources the gateway could subscribe to are acknowledged"
    );
    assert_eq!(while_open, json!(["tiny://clock"]));
    assert_eq!(touched["result"]["content"][0]["text"], "touched");
    assert_eq!(updated[0]["method"], "notifications/resources/updated");
    assert_eq!(updated[0]["params"]["uri"], "tiny:tiny://clock");
    assert_eq!(
        updated[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        52
    );
    assert_eq!(after, json!([]), "closing the stream unsubscribes upstream");
}

#[actix_web::test]
async fn a_listen_stream_closed_before_its_subscription_is_taken_withdraws_it() {
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![tiny("tiny", &marker())];
        s.server.keep_alive_ms = 100;
    })
    .await;
    // The tiny server takes a second to subscribe to tiny://slow; the stream closes before.
    let notifications = json!({"resourceSubscriptions": ["tiny:tiny://slow"]});
    let body = request(
        54,
        "subscriptions/listen",
        json!({"notifications": notifications}),
        json!({}),
    );
    let stream = post(&app, &body, &[]).await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    let after = TestApp::read_until(|| subscribed_upstream(&app), |s| s == &json!([])).await;

    assert_eq!(after, json!([]), "the subscription under way is withdrawn");
}
