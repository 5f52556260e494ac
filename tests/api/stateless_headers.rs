//! The stateless revision's headers: parameters a tool's schema marks `x-mcp-header`, a header
//! given twice, and the endpoint of a virtual server that does not exist.

use serde_json::{json, Value};

use crate::backends::{marker, tiny};
use crate::helpers::spawn_app;
use crate::stateless::{base64_of, request, run_cases, Case, VERSION};

#[actix_web::test]
async fn parameters_marked_x_mcp_header_must_come_with_matching_headers() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let call = |arguments: Value| {
        request(
            41,
            "tools/call",
            json!({"name": "tiny_region", "arguments": arguments}),
            json!({}),
        )
    };
    let hello = format!("=?base64?{}?=", base64_of("Hello"));
    let cases: Vec<Case> = vec![
        (
            "both match",
            call(json!({"region": "eu-west", "zone": 3})),
            vec![("mcp-param-region", "eu-west"), ("mcp-param-zone", "3")],
            200,
            0,
        ),
        ("no values, no headers", call(json!({})), vec![], 200, 0),
        (
            "base64 decoded",
            call(json!({"region": "Hello"})),
            vec![("mcp-param-region", &hello)],
            200,
            0,
        ),
        (
            "a number compared as one",
            call(json!({"zone": 3})),
            vec![("mcp-param-zone", "3.0")],
            200,
            0,
        ),
        (
            "header missing",
            call(json!({"region": "eu-west"})),
            vec![],
            400,
            -32020,
        ),
        (
            "header disagrees",
            call(json!({"region": "eu-west"})),
            vec![("mcp-param-region", "us-east")],
            400,
            -32020,
        ),
        (
            "header without a value",
            call(json!({})),
            vec![("mcp-param-zone", "3")],
            400,
            -32020,
        ),
        (
            "bad base64 padding",
            call(json!({"region": "Hello"})),
            vec![("mcp-param-region", "=?base64?SGVsbG8?=")],
            400,
            -32020,
        ),
        (
            "number disagrees",
            call(json!({"zone": 3})),
            vec![("mcp-param-zone", "4")],
            400,
            -32020,
        ),
    ];

    let seen = run_cases(&app, &cases).await;

    assert_eq!(
        seen[0].1["result"]["content"][0]["text"],
        r#"{"region": "eu-west", "zone": 3}"#
    );
}

#[actix_web::test]
async fn server_discover_on_a_virtual_server_that_does_not_exist_is_404() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let body = request(1, "server/discover", json!({}), json!({})).to_string();
    let headers = [
        ("mcp-protocol-version", VERSION),
        ("mcp-method", "server/discover"),
    ];

    let response = app.post_at("/servers/nope/mcp", &body, &headers).await;

    assert_eq!(response.status(), 404);
    let text = response.text().await.unwrap();
    assert!(text.contains("no virtual server is named `nope`"), "{text}");
}

#[actix_web::test]
async fn a_revision_header_given_twice_is_refused() {
    let app = spawn_app(vec![tiny("tiny", &marker())]).await;
    let echo = json!({"name": "tiny_echo", "arguments": {"text": "hi"}});
    let body = request(1, "tools/call", echo, json!({})).to_string();
    let headers = [
        ("mcp-protocol-version", VERSION),
        ("mcp-method", "tools/call"),
        ("mcp-name", "tiny_echo"),
        ("mcp-name", "tiny_crash"),
    ];

    let response = app.post_mcp(&body, &headers).await;

    assert_eq!(response.status(), 400);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["code"], -32020, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("more than once"), "{message}");
}
