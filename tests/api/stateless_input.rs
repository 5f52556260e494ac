//! Stateless requests (revision 2026-07-28) whose backend asks the client something: the input
//! request in the answer, the retry that takes the call up, a reply missing, malformed, reused
//! or late, and the cap on requests waiting for input. The backend is the tiny stdio server.

use serde_json::{json, Value};

use crate::backends::{marker, tiny};
use crate::helpers::{spawn_app, spawn_app_with, StoreKind};
use crate::stateless::{answer, request};

fn retry(state: &Value, replies: Value) -> Value {
    let params = json!({"name": "tiny_ask", "arguments": {}, "inputResponses": replies, "requestState": state});
    request(12, "tools/call", params, json!({"sampling": {}}))
}

#[actix_web::test]
async fn a_backends_request_for_the_client_becomes_an_input_request_taken_up_on_retry() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let ask = json!({"name": "tiny_ask", "arguments": {}});
    let sampled = json!({"role": "assistant", "content": {"type": "text", "text": "from the client"}, "model": "m"});

    let (status, first) = answer(
        &app,
        &request(11, "tools/call", ask.clone(), json!({"sampling": {}})),
    )
    .await;
    let first = &first["result"];
    let requests = first["inputRequests"].as_object().unwrap().clone();
    let (key, asked) = requests.iter().next().unwrap();
    let (_, again) = answer(&app, &retry(&first["requestState"], json!({"other": {}}))).await;
    let state = again["result"]["requestState"].clone();
    let (reused_status, reused) =
        answer(&app, &retry(&first["requestState"], json!({key: sampled}))).await;
    let (malformed_status, malformed) = answer(&app, &retry(&state, json!({key: 12345}))).await;
    let state = malformed["error"]["data"]["requestState"].clone();
    let (tampered_status, tampered) = answer(
        &app,
        &retry(
            &json!(format!("{}-TAMPERED", state.as_str().unwrap())),
            json!({key: sampled}),
        ),
    )
    .await;
    let (_, done) = answer(&app, &retry(&state, json!({key: sampled}))).await;
    let (missing_status, missing) = answer(&app, &request(13, "tools/call", ask, json!({}))).await;

    assert_eq!(status, 200);
    assert_eq!(first["resultType"], "input_required");
    assert_eq!(requests.len(), 1);
    assert_eq!(asked["method"], "sampling/createMessage");
    assert_eq!(asked["params"]["messages"][0]["content"]["text"], "hi");
    assert!(first.get("ttlMs").is_none());
    assert_eq!(
        again["result"]["resultType"], "input_required",
        "a missing reply is asked again"
    );
    assert_eq!(again["result"]["inputRequests"][key], *asked);
    assert_ne!(state, first["requestState"]);
    assert_eq!(
        (reused_status, reused["error"]["code"].as_i64()),
        (400, Some(-32602)),
        "a state is good once"
    );
    assert_eq!(
        (malformed_status, malformed["error"]["code"].as_i64()),
        (400, Some(-32602))
    );
    assert!(
        state.is_string(),
        "the request waits on under a new state: {malformed}"
    );
    assert_eq!(
        (tampered_status, tampered["error"]["code"].as_i64()),
        (400, Some(-32602))
    );
    assert_eq!(done["id"], 12);
    assert_eq!(
        done["result"]["content"][0]["text"],
        "sampled: from the client"
    );
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(missing_status, 400);
    assert_eq!(missing["error"]["code"], -32021);
    assert_eq!(
        missing["error"]["data"],
        json!({"requiredCapabilities": {"sampling": {}}})
    );
    app.wait_until(|app| app.gateway.parked.is_empty()).await;
}

#[actix_web::test]
async fn an_input_request_left_unanswered_expires_and_its_retry_is_refused() {
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![tiny("tiny", &marker())];
        s.mcp.request_timeout_ms = 500;
    })
    .await;
    let ask = json!({"name": "tiny_ask", "arguments": {}});
    let (_, first) = answer(
        &app,
        &request(11, "tools/call", ask, json!({"sampling": {}})),
    )
    .await;
    let state = first["result"]["requestState"].clone();
    assert_eq!(app.gateway.parked.len(), 1);

    app.wait_until(|app| app.gateway.parked.is_empty()).await;
    let sampled =
        json!({"role": "assistant", "content": {"type": "text", "text": "late"}, "model": "m"});
    let (status, late) = answer(&app, &retry(&state, json!({"sampling-1": sampled}))).await;

    assert_eq!(
        (status, late["error"]["code"].as_i64()),
        (400, Some(-32602)),
        "{late}"
    );
    assert!(late["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[actix_web::test]
async fn requests_waiting_for_input_are_capped_like_sessions() {
    // Two backends: the tiny server answers nothing else while it waits for its reply.
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![tiny("one", &marker()), tiny("two", &marker())];
        s.server.max_sessions = 1;
    })
    .await;
    let ask = |tool: &str| {
        let params = json!({"name": tool, "arguments": {}});
        request(61, "tools/call", params, json!({"sampling": {}}))
    };

    let (first_status, first) = answer(&app, &ask("one_ask")).await;
    let (second_status, second) = answer(&app, &ask("two_ask")).await;
    let metrics = app.metrics_text().await;

    assert_eq!(
        (first_status, first["result"]["resultType"].as_str()),
        (200, Some("input_required"))
    );
    assert_eq!(
        (second_status, second["error"]["code"].as_i64()),
        (503, Some(-32000)),
        "{second}"
    );
    assert!(second["error"]["message"]
        .as_str()
        .unwrap()
        .contains("server.max_sessions"));
    assert!(
        metrics.contains(r#"mcpgate_sessions_refused_total{transport="stateless"} 1"#),
        "{metrics}"
    );
    assert_eq!(app.gateway.parked.len(), 1);
}

#[actix_web::test]
async fn a_retry_for_another_request_is_refused_and_leaves_the_request_waiting() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let ask = json!({"name": "tiny_ask", "arguments": {}});
    let (_, first) = answer(
        &app,
        &request(11, "tools/call", ask, json!({"sampling": {}})),
    )
    .await;
    let state = first["result"]["requestState"].clone();
    let key = first["result"]["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let sampled =
        json!({"role": "assistant", "content": {"type": "text", "text": "mine"}, "model": "m"});

    let other = json!({"name": "tiny_ask", "arguments": {"x": 1}, "inputResponses": {&key: sampled},
        "requestState": state});
    let (other_status, refused) = answer(
        &app,
        &request(12, "tools/call", other, json!({"sampling": {}})),
    )
    .await;
    let (_, done) = answer(&app, &retry(&state, json!({&key: sampled}))).await;

    assert_eq!(other_status, 400);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to another request"),
        "{refused}"
    );
    assert_eq!(
        done["result"]["content"][0]["text"], "sampled: mine",
        "the request still waited for its own retry: {done}"
    );
}

#[actix_web::test]
async fn a_request_state_of_null_is_a_first_attempt() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let ask = json!({"name": "tiny_ask", "arguments": {}, "requestState": null,
        "inputResponses": null});

    let (status, first) = answer(
        &app,
        &request(11, "tools/call", ask, json!({"sampling": {}})),
    )
    .await;

    assert_eq!(status, 200, "{first}");
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
}
