//! The MCP methods through the gateway, and the JSON-RPC errors for bad input.

use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app, spawn_app_with, StoreKind, TestApp};

#[actix_web::test]
async fn tools_of_every_connector_are_listed_under_their_namespace_in_name_order() {
    let alpha = FakeConnector::start().await;
    let beta = FakeConnector::start().await;
    let app = spawn_app(vec![
        connector("beta", &beta.url),
        connector("alpha", &alpha.url),
    ])
    .await;
    let session = app.initialize().await;

    let response = app.rpc(&session, "tools/list", json!({})).await;

    let tools = response["result"]["tools"].as_array().unwrap();
    let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["alpha_echo", "alpha_fail", "beta_echo", "beta_fail"]
    );
    assert_eq!(
        tools[0]["inputSchema"]["$defs"],
        json!({"x": {"type": "string"}})
    );
    assert_eq!(tools[1]["inputSchema"], json!({"type": "object"}));
}

#[actix_web::test]
async fn a_tool_call_reaches_its_connector_by_the_backends_own_name() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("github", &backend.url)]).await;
    let session = app.initialize().await;

    let response = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "github_echo", "arguments": {"text": "hi"}}),
        )
        .await;

    assert_eq!(response["result"]["content"][0]["text"], "hi");
    let (tool, body, _) = backend.state.last_execute.lock().unwrap().clone().unwrap();
    assert_eq!(tool, "echo");
    assert_eq!(body, json!({"arguments": {"text": "hi"}}));
}

#[actix_web::test]
async fn a_connector_error_on_execute_is_a_tool_result_with_is_error() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;

    let response = app
        .rpc(&session, "tools/call", json!({"name": "c_fail"}))
        .await;

    assert_eq!(response["result"]["isError"], true);
    assert_eq!(response["result"]["content"][0]["text"], "the tool broke");
}

#[actix_web::test]
async fn an_unknown_tool_and_bad_arguments_are_invalid_params() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;

    let unknown = app
        .rpc(&session, "tools/call", json!({"name": "c_nope"}))
        .await;
    let bad_args = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "c_echo", "arguments": [1]}),
        )
        .await;
    let no_name = app.rpc(&session, "tools/call", json!({})).await;

    assert_eq!(unknown["error"]["code"], -32602);
    assert!(unknown["error"]["message"]
        .as_str()
        .unwrap()
        .contains("c_nope"));
    assert_eq!(bad_args["error"]["code"], -32602);
    assert_eq!(no_name["error"]["code"], -32602);
    assert_eq!(backend.executions(), 0);
}

#[actix_web::test]
async fn malformed_json_is_a_parse_error_with_status_400() {
    let app = spawn_app(vec![]).await;

    let response = app.post_mcp("{\"jsonrpc\": \"2.0\", \"id\": 1,", &[]).await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
}

#[actix_web::test]
async fn not_a_request_is_invalid_request_and_an_unknown_method_method_not_found() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;
    let header = [("mcp-session-id", session.as_str())];

    let no_version = app
        .post_mcp(r#"{"id": 3, "method": "ping"}"#, &header)
        .await;
    let number = app.post_mcp("42", &header).await;
    let unknown = app.rpc(&session, "tools/explode", json!({})).await;

    let no_version: Value = no_version.json().await.unwrap();
    assert_eq!(no_version["error"]["code"], -32600);
    assert_eq!(no_version["id"], 3);
    let number: Value = number.json().await.unwrap();
    assert_eq!(number["error"]["code"], -32600);
    assert_eq!(unknown["error"]["code"], -32601);
}

#[actix_web::test]
async fn resources_are_listed_with_prefixed_uris_and_read_through_their_connector() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("github", &backend.url)]).await;
    let session = app.initialize().await;

    let list = app.rpc(&session, "resources/list", json!({})).await;
    let read = app
        .rpc(
            &session,
            "resources/read",
            json!({"uri": "github:memo://a b"}),
        )
        .await;
    let templates = app
        .rpc(&session, "resources/templates/list", json!({}))
        .await;

    assert_eq!(
        list["result"]["resources"][0]["uri"],
        "github:file://README.md"
    );
    assert_eq!(read["result"]["contents"][0]["uri"], "github:memo://a b");
    assert_eq!(
        read["result"]["contents"][0]["text"],
        "content of memo://a b"
    );
    assert_eq!(templates["result"]["resourceTemplates"], json!([]));
}

#[actix_web::test]
async fn an_unknown_resource_is_invalid_params() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("github", &backend.url)]).await;
    let session = app.initialize().await;

    let unknown_connector = app
        .rpc(&session, "resources/read", json!({"uri": "nope:x"}))
        .await;
    let unknown_on_backend = app
        .rpc(
            &session,
            "resources/read",
            json!({"uri": "github:file://missing"}),
        )
        .await;

    assert_eq!(unknown_connector["error"]["code"], -32602);
    assert_eq!(unknown_on_backend["error"]["code"], -32602);
    assert_eq!(unknown_on_backend["error"]["data"]["connector"], "github");
}

#[actix_web::test]
async fn a_prompt_is_rendered_with_its_arguments_and_a_missing_one_is_named() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("notes", &backend.url)]).await;
    let session = app.initialize().await;

    let list = app.rpc(&session, "prompts/list", json!({})).await;
    let rendered = app
        .rpc(
            &session,
            "prompts/get",
            json!({"name": "notes_summarize", "arguments": {"topic": "rust"}}),
        )
        .await;
    let missing = app
        .rpc(&session, "prompts/get", json!({"name": "notes_summarize"}))
        .await;
    let unknown = app
        .rpc(&session, "prompts/get", json!({"name": "notes_nope"}))
        .await;

    assert_eq!(list["result"]["prompts"][0]["name"], "notes_summarize");
    assert_eq!(
        rendered["result"]["messages"][0]["content"]["text"],
        "Summarize rust."
    );
    assert_eq!(missing["error"]["code"], -32602);
    assert!(missing["error"]["message"]
        .as_str()
        .unwrap()
        .contains("topic"));
    assert_eq!(unknown["error"]["code"], -32602);
}

/// The gateway declares `completions` for every backend: one that cannot complete offers no
/// values rather than `-32601`, and a request without the argument's value is refused.
#[actix_web::test]
async fn completion_of_a_rest_prompt_offers_no_values_and_bad_arguments_are_named() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("notes", &backend.url)]).await;
    let session = app.initialize().await;
    let reference = json!({"type": "ref/prompt", "name": "notes_summarize"});

    let offered = app
        .rpc(
            &session,
            "completion/complete",
            json!({"ref": reference, "argument": {"name": "topic", "value": "ru"}}),
        )
        .await;
    let no_value = app
        .rpc(
            &session,
            "completion/complete",
            json!({"ref": reference, "argument": {"name": "topic"}}),
        )
        .await;
    let bad_context = app
        .rpc(
            &session,
            "completion/complete",
            json!({"ref": reference, "argument": {"name": "topic", "value": ""},
                   "context": {"arguments": {"lang": 3}}}),
        )
        .await;

    assert_eq!(
        offered["result"]["completion"],
        json!({"values": [], "total": 0, "hasMore": false})
    );
    assert_eq!(no_value["error"]["code"], -32602);
    assert!(no_value["error"]["message"]
        .as_str()
        .unwrap()
        .contains("argument.value"));
    assert_eq!(bad_context["error"]["code"], -32602);
    assert!(bad_context["error"]["message"]
        .as_str()
        .unwrap()
        .contains("context.arguments"));
}

#[actix_web::test]
async fn a_large_catalog_is_paged_with_cursors() {
    let tools = (0..7).map(|i| json!({"name": format!("t{i}")})).collect();
    let backend = FakeConnector::with_tools(tools).await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.mcp.page_size = 3;
        s.connectors = vec![connector("c", &url)];
    })
    .await;
    let session = app.initialize().await;

    let mut names = Vec::new();
    let mut params = json!({});
    loop {
        let page = app.rpc(&session, "tools/list", params).await;
        names.extend(
            page["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].clone()),
        );
        match page["result"].get("nextCursor") {
            Some(cursor) => params = json!({ "cursor": cursor }),
            None => break,
        }
    }
    let bad = app
        .rpc(&session, "tools/list", json!({"cursor": "forged"}))
        .await;

    assert_eq!(names.len(), 7);
    assert_eq!(names[6], "c_t6");
    assert_eq!(bad["error"]["code"], -32602);
}

#[actix_web::test]
async fn logging_set_level_accepts_known_levels_only() {
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;

    let ok = app
        .rpc(&session, "logging/setLevel", json!({"level": "warning"}))
        .await;
    let bad = app
        .rpc(&session, "logging/setLevel", json!({"level": "shout"}))
        .await;

    assert_eq!(ok["result"], json!({}));
    assert_eq!(bad["error"]["code"], -32602);
}

#[actix_web::test]
async fn every_tool_call_is_recorded_with_its_outcome() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;

    app.rpc(
        &session,
        "tools/call",
        json!({"name": "c_echo", "arguments": {"text": "a"}}),
    )
    .await;
    app.rpc(&session, "tools/call", json!({"name": "c_fail"}))
        .await;

    app.wait_until(|app| app.stored_calls() == 2).await;
    let mut conn = app.gateway.pool.get().unwrap();
    let rows = mcpgate::store::tool_calls::recent(&mut conn, 10).unwrap();
    assert_eq!(rows[0].tool, "fail");
    assert_eq!(rows[0].outcome, "tool_error");
    assert_eq!(rows[1].outcome, "ok");
    assert_eq!(rows[1].connector, "c");
    assert_eq!(rows[1].session_id.as_deref(), Some(session.as_str()));
}

#[actix_web::test]
async fn connector_headers_carry_secrets_from_the_environment_and_never_show_them() {
    std::env::set_var("MCPGATE_TEST_CONNECTOR_TOKEN", "conn-secret-42");
    let backend = FakeConnector::start().await;
    let mut settings = connector("gh", &backend.url);
    settings.headers.insert(
        "Authorization".into(),
        "Bearer ${MCPGATE_TEST_CONNECTOR_TOKEN}".into(),
    );
    let app = spawn_app(vec![settings]).await;
    let session = app.initialize().await;

    let list = app.rpc(&session, "tools/list", json!({})).await;
    let call = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "gh_echo", "arguments": {"text": "x"}}),
        )
        .await;
    backend.set_behaviour(crate::fake_connector::Behaviour::Fail);
    let failed = app
        .rpc(&session, "tools/call", json!({"name": "gh_echo"}))
        .await;
    let prompt = app
        .rpc(
            &session,
            "prompts/get",
            json!({"name": "gh_summarize", "arguments": {"topic": "t"}}),
        )
        .await;

    let (_, _, headers) = backend.state.last_execute.lock().unwrap().clone().unwrap();
    assert!(headers.contains(&("authorization".into(), "Bearer conn-secret-42".into())));
    assert_eq!(failed["result"]["isError"], true);
    assert_eq!(prompt["error"]["code"], -32000);
    for answer in [list, call, failed, prompt] {
        assert!(!answer.to_string().contains("conn-secret-42"), "{answer}");
    }
}

/// A REST connector that echoes the headers it was sent: in its tool's result (`leak`), or in
/// an error body (`fail`).
fn echoing_backend() -> String {
    use actix_web::{web, HttpRequest, HttpResponse};
    let port = crate::helpers::serve_local(|cfg| {
        cfg.route(
            "/info",
            web::get().to(|| async { HttpResponse::Ok().json(json!({"name": "echo"})) }),
        )
        .route(
            "/tools",
            web::get().to(|| async {
                let schema = json!({"type": "object"});
                HttpResponse::Ok().json(json!({"tools": [
                    {"name": "leak", "inputSchema": schema}, {"name": "fail", "inputSchema": schema}]}))
            }),
        )
        .route(
            "/tools/{name}/execute",
            web::post().to(|req: HttpRequest, name: web::Path<String>| async move {
                let headers: Vec<String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
                    .collect();
                let seen = format!("I was sent {}", headers.join(", "));
                match name.as_str() {
                    "leak" => HttpResponse::Ok()
                        .json(json!({"content": [{"type": "text", "text": seen}]})),
                    _ => HttpResponse::InternalServerError().json(json!({"error": seen})),
                }
            }),
        );
    });
    format!("http://127.0.0.1:{port}")
}

#[actix_web::test]
async fn secrets_a_backend_echoes_are_masked_in_results_errors_and_stored_feedback() {
    std::env::set_var("MCPGATE_TEST_ECHOED_KEY", "echoed-key-7781");
    let mut settings = connector("e", &echoing_backend());
    settings
        .headers
        .insert("X-Api-Key".into(), "${MCPGATE_TEST_ECHOED_KEY}".into());
    let app = spawn_app_with(StoreKind::Postgres, |s| s.connectors = vec![settings]).await;
    let session = app.initialize().await;

    let leaked = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "e_leak", "arguments": {}}),
        )
        .await;
    let failed = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "e_fail", "arguments": {}}),
        )
        .await;
    let errors = || app.rows("feedback WHERE error LIKE '%x-api-key%'");
    let stored = TestApp::read_until(errors, |n| *n == 1).await;
    let stored_secret = app
        .rows("feedback WHERE error LIKE '%echoed-key-7781%'")
        .await;

    let text = leaked["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("x-api-key: ***"), "{text}");
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    for answer in [&leaked, &failed] {
        assert!(!answer.to_string().contains("echoed-key-7781"), "{answer}");
    }
    assert_eq!((stored, stored_secret), (1, 0));
}
