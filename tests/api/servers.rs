//! Virtual servers: named subsets of connectors and tools at /servers/{name}/mcp and /sse.

use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_sharing, spawn_app_with, StoreKind, TestApp};
use mcpgate::mcp::scope::VirtualServer;

fn server(value: Value) -> VirtualServer {
    serde_json::from_value(value).unwrap()
}

async fn names_at(
    app: &TestApp,
    path: &str,
    session: &str,
    method: &str,
    key: &str,
    field: &str,
) -> Vec<String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}});
    let response = app
        .post_at(path, &body.to_string(), &[("mcp-session-id", session)])
        .await;
    let answer: Value = response.json().await.unwrap();
    answer["result"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_str().unwrap().to_string())
        .collect()
}

async fn call_at(app: &TestApp, path: &str, session: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params});
    let response = app
        .post_at(path, &body.to_string(), &[("mcp-session-id", session)])
        .await;
    response.json().await.unwrap()
}

#[actix_web::test]
async fn a_virtual_server_shows_only_its_connectors_and_allowed_tools() {
    let a = FakeConnector::start().await;
    let b = FakeConnector::start().await;
    let c = FakeConnector::start().await;
    let (ua, ub, uc) = (a.url.clone(), b.url.clone(), c.url.clone());
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![
            connector("a", &ua),
            connector("b", &ub),
            connector("c", &uc),
        ];
        s.servers = vec![server(
            json!({"name": "ab", "connectors": ["a", "b"], "deny": ["*_fail"]}),
        )];
    })
    .await;
    let path = "/servers/ab/mcp";
    let session = app.initialize_at(path).await;

    let tools = names_at(&app, path, &session, "tools/list", "tools", "name").await;
    let resources = names_at(&app, path, &session, "resources/list", "resources", "uri").await;
    let allowed = call_at(
        &app,
        path,
        &session,
        "tools/call",
        json!({"name": "a_echo", "arguments": {"text": "x"}}),
    )
    .await;
    let denied = call_at(
        &app,
        path,
        &session,
        "tools/call",
        json!({"name": "a_fail"}),
    )
    .await;
    let outside = call_at(
        &app,
        path,
        &session,
        "tools/call",
        json!({"name": "c_echo"}),
    )
    .await;
    let unknown = app.post_at("/servers/nope/mcp", &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}).to_string(), &[]).await;

    assert_eq!(tools, ["a_echo", "b_echo"]);
    assert!(
        resources
            .iter()
            .all(|u| u.starts_with("a:") || u.starts_with("b:")),
        "{resources:?}"
    );
    assert_eq!(allowed["result"]["content"][0]["text"], "x");
    assert_eq!(denied["error"]["code"], -32602);
    assert_eq!(outside["error"]["code"], -32602);
    assert_eq!(unknown.status(), 404);
}

#[actix_web::test]
async fn an_unprefixed_server_exposes_one_connector_by_its_own_names() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![connector("github", &url)];
        s.servers = vec![server(
            json!({"name": "gh", "connectors": ["github"], "prefix": false}),
        )];
    })
    .await;
    let path = "/servers/gh/mcp";
    let session = app.initialize_at(path).await;

    let tools = names_at(&app, path, &session, "tools/list", "tools", "name").await;
    let prompts = names_at(&app, path, &session, "prompts/list", "prompts", "name").await;
    let resources = names_at(&app, path, &session, "resources/list", "resources", "uri").await;
    let call = call_at(
        &app,
        path,
        &session,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "own"}}),
    )
    .await;
    let read = call_at(
        &app,
        path,
        &session,
        "resources/read",
        json!({"uri": "file://README.md"}),
    )
    .await;
    let prompt = call_at(
        &app,
        path,
        &session,
        "prompts/get",
        json!({"name": "summarize", "arguments": {"topic": "t"}}),
    )
    .await;

    assert_eq!(tools, ["echo", "fail"]);
    assert_eq!(prompts, ["summarize"]);
    assert_eq!(resources[0], "file://README.md");
    assert_eq!(call["result"]["content"][0]["text"], "own");
    assert_eq!(read["result"]["contents"][0]["uri"], "file://README.md");
    assert_eq!(
        prompt["result"]["messages"][0]["content"]["text"],
        "Summarize t."
    );
}

#[actix_web::test]
async fn the_legacy_endpoint_of_a_virtual_server_posts_to_its_own_messages_path() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![connector("github", &url)];
        s.servers = vec![server(json!({"name": "gh", "connectors": ["github"]}))];
    })
    .await;

    let mut stream = app
        .client
        .get(format!("{}/servers/gh/sse", app.address))
        .send()
        .await
        .unwrap();
    let chunk = stream.chunk().await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&chunk);

    assert!(
        text.contains("data: /servers/gh/messages?session_id="),
        "{text}"
    );
    let missing = app
        .client
        .get(format!("{}/servers/none/sse", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[actix_web::test]
async fn virtual_servers_are_managed_through_the_api_and_survive_a_restart() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![connector("a", &url), connector("b", &url)];
        s.servers = vec![server(json!({"name": "fixed", "connectors": ["a"]}))];
    })
    .await;

    let (created, _) = app
        .send_json(
            "POST",
            "/api/v1/servers",
            &json!({"name": "only-b", "connectors": ["b"]}),
        )
        .await;
    let session = app.initialize_at("/servers/only-b/mcp").await;
    let tools = names_at(
        &app,
        "/servers/only-b/mcp",
        &session,
        "tools/list",
        "tools",
        "name",
    )
    .await;
    let (again, _) = app
        .send_json(
            "POST",
            "/api/v1/servers",
            &json!({"name": "only-b", "connectors": ["b"]}),
        )
        .await;
    let (invalid, body) = app
        .send_json(
            "POST",
            "/api/v1/servers",
            &json!({"name": "bad", "connectors": ["a", "b"], "prefix": false}),
        )
        .await;
    let (unknown, unknown_body) = app
        .send_json(
            "POST",
            "/api/v1/servers",
            &json!({"name": "ghost", "connectors": ["a", "nope", "zz"]}),
        )
        .await;
    let (unknown_put, _) = app
        .send_json(
            "PUT",
            "/api/v1/servers/only-b",
            &json!({"connectors": ["nope"]}),
        )
        .await;
    let (fixed, _) = app
        .send_json("DELETE", "/api/v1/servers/fixed", &json!({}))
        .await;
    let (changed, _) = app
        .send_json(
            "PUT",
            "/api/v1/servers/only-b",
            &json!({"connectors": ["a"]}),
        )
        .await;
    let (_, listed) = app.get_json("/api/v1/servers").await;

    assert_eq!(
        (created, again, invalid, fixed, changed),
        (201, 409, 422, 409, 200)
    );
    assert_eq!((unknown, unknown_put), (422, 422));
    assert_eq!(
        unknown_body["fields"]["connectors"],
        "names no connector of the gateway: `nope`, `zz`"
    );
    assert_eq!(tools, ["b_echo", "b_fail"]);
    assert!(body["fields"].get("prefix").is_some(), "{body}");
    assert_eq!(listed["servers"].as_array().unwrap().len(), 2);

    let restarted = spawn_app_sharing(&app, |s| {
        s.connectors = vec![connector("a", &url), connector("b", &url)];
    })
    .await;
    let session = restarted.initialize_at("/servers/only-b/mcp").await;
    let tools = names_at(
        &restarted,
        "/servers/only-b/mcp",
        &session,
        "tools/list",
        "tools",
        "name",
    )
    .await;
    assert_eq!(tools, ["a_echo", "a_fail"]);

    let (removed, _) = restarted
        .send_json("DELETE", "/api/v1/servers/only-b", &json!({}))
        .await;
    assert_eq!(removed, 204);
    let (gone, _) = restarted.get_json("/api/v1/servers/only-b").await;
    assert_eq!(gone, 404);
}

#[actix_web::test]
async fn a_session_is_served_only_on_the_endpoints_it_was_opened_on_and_rates_only_what_it_sees() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![connector("github", &url)];
        s.servers = vec![server(
            json!({"name": "gh", "connectors": ["github"], "prefix": false, "deny": ["*fail"]}),
        )];
        s.feedback.tool_name = "mcpgate_feedback".into();
    })
    .await;
    let path = "/servers/gh/mcp";
    let scoped = app.initialize_at(path).await;
    let whole = app.initialize().await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let status = |at: &'static str, session: String| {
        let list = list.clone();
        let app = &app;
        async move {
            let headers = [("mcp-session-id", session.as_str())];
            app.post_at(at, &list, &headers).await.status().as_u16()
        }
    };
    let statuses = (
        status("/mcp", scoped.clone()).await,
        status(path, whole.clone()).await,
        status("/servers/nope/mcp", whole.clone()).await,
        status(path, scoped.clone()).await,
    );
    let rate = |target: &str| {
        json!({"name": "mcpgate_feedback",
            "arguments": {"target_kind": "tool", "target": target, "rating": "up"}})
    };
    let own = call_at(&app, path, &scoped, "tools/call", rate("echo")).await;
    let hidden = call_at(&app, path, &scoped, "tools/call", rate("fail")).await;
    let prefixed = call_at(&app, path, &scoped, "tools/call", rate("github_fail")).await;
    let stored = || async {
        let mut conn = app.gateway.pool.get().unwrap();
        mcpgate::store::feedback::count_for(&mut conn, "tool", "github_echo").unwrap()
    };
    let stored = TestApp::read_until(stored, |n| *n == 1).await;

    assert_eq!(statuses, (404, 404, 404, 200));
    assert!(own["result"]["isError"].is_null(), "{own}");
    assert_eq!(stored, 1, "the rating is about the catalog's tool");
    for (answer, named) in [(&hidden, "fail"), (&prefixed, "github_fail")] {
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        let text = format!("target: unknown tool `{named}`");
        assert_eq!(answer["result"]["content"][0]["text"], text.as_str());
    }
}

/// A session keeps the rules it was opened with, so a change of its virtual server ends it:
/// a tool denied since is not called through it, and a server deleted serves nothing more.
#[actix_web::test]
async fn changing_or_deleting_a_virtual_server_ends_the_sessions_open_on_it() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![connector("a", &url)];
    })
    .await;
    let body = json!({"name": "live", "connectors": ["a"]});
    let (created, view) = app.send_json("POST", "/api/v1/servers", &body).await;
    assert_eq!(created, 201, "{view}");
    let path = "/servers/live/mcp";
    let before = app.initialize_at(path).await;
    let echo = json!({"name": "a_echo", "arguments": {"text": "hi"}});
    let served = call_at(&app, path, &before, "tools/call", echo.clone()).await;
    assert_eq!(served["result"]["content"][0]["text"], "hi", "{served}");

    let denied = json!({"name": "live", "connectors": ["a"], "deny": ["a_echo"]});
    let (updated, _) = app.send_json("PUT", "/api/v1/servers/live", &denied).await;
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": echo});
    let header = [("mcp-session-id", before.as_str())];
    let old = app.post_at(path, &call.to_string(), &header).await;
    let after = app.initialize_at(path).await;
    let refused = call_at(&app, path, &after, "tools/call", call["params"].clone()).await;
    let (deleted, _) = app
        .send_json("DELETE", "/api/v1/servers/live", &json!({}))
        .await;
    let header = [("mcp-session-id", after.as_str())];
    let gone = app.post_at(path, &call.to_string(), &header).await;

    assert_eq!(updated, 200);
    assert_eq!(
        old.status(),
        404,
        "the session opened before the change is ended"
    );
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert_eq!(deleted, 204);
    assert_eq!(gone.status(), 404, "a deleted server's session is ended");
}
