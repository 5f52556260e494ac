//! The ops REST API: connectors registered live and stored, probes, metrics, admin tokens.

use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app, spawn_app_sharing, spawn_app_with, StoreKind};

#[actix_web::test]
async fn file_connectors_are_listed_with_their_health_and_refuse_changes() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("files", &backend.url)]).await;

    let (status, listed) = app.get_json("/api/v1/connectors").await;
    let (put, _) = app
        .send_json(
            "PUT",
            "/api/v1/connectors/files",
            &json!({"url": backend.url}),
        )
        .await;
    let (delete, _) = app
        .send_json("DELETE", "/api/v1/connectors/files", &json!({}))
        .await;
    let (missing, _) = app.get_json("/api/v1/connectors/nope").await;

    assert_eq!(status, 200);
    let view = &listed["connectors"][0];
    assert_eq!(view["name"], "files");
    assert_eq!(view["source"], "file");
    assert_eq!(view["settings"]["kind"], "http");
    assert_eq!(view["settings"]["urls"], json!([backend.url]));
    assert_eq!(view["status"]["health"], "healthy");
    assert_eq!(view["status"]["replicas"][0]["breaker"], "closed");
    assert_eq!(view["tools"], 2);
    assert_eq!((put, delete, missing), (409, 409, 404));
}

#[actix_web::test]
async fn a_connector_registered_through_the_api_joins_the_catalog_live_and_can_be_changed_and_removed(
) {
    let first = FakeConnector::start().await;
    let second = FakeConnector::with_tools(vec![json!({"name": "other"})]).await;
    let app = spawn_app(vec![]).await;
    let session = app.initialize().await;

    let (created, view) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "live", "url": first.url,
            "health_check_interval_ms": 200}),
        )
        .await;
    assert_eq!(created, 201, "{view}");
    app.wait_until_view("live", |v| v["tools"] == 2).await;
    let names = app.tool_names(&session).await;
    assert_eq!(names, ["live_echo", "live_fail"]);

    let (again, conflict) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "live", "url": first.url}),
        )
        .await;
    assert_eq!(again, 409);
    assert!(conflict["error"].as_str().unwrap().contains("live"));

    let (changed, _) = app
        .send_json(
            "PUT",
            "/api/v1/connectors/live",
            &json!({"url": second.url,
            "health_check_interval_ms": 200}),
        )
        .await;
    assert_eq!(changed, 200);
    app.wait_until_view("live", |v| v["tools"] == 1).await;
    assert_eq!(app.tool_names(&session).await, ["live_other"]);

    let (removed, _) = app
        .send_json("DELETE", "/api/v1/connectors/live", &json!({}))
        .await;
    assert_eq!(removed, 204);
    assert!(app.tool_names(&session).await.is_empty());
    let (gone, _) = app.get_json("/api/v1/connectors/live").await;
    assert_eq!(gone, 404);
}

#[actix_web::test]
async fn an_invalid_registration_is_422_with_every_field_named_and_bad_json_is_400() {
    let app = spawn_app(vec![]).await;

    let (invalid, body) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "bad name", "url": "ftp://x",
            "timeout_ms": 0}),
        )
        .await;
    let (typed, typed_body) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "t", "url": "http://x",
            "timeout_ms": "soon"}),
        )
        .await;
    let (unknown, unknown_body) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "t", "url": "http://x", "colour": 1}),
        )
        .await;
    let malformed = app
        .client
        .post(format!("{}/api/v1/connectors", app.address))
        .body("{nope")
        .send()
        .await
        .unwrap();
    let (unsendable, unsendable_body) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "h", "url": "http://x", "headers": {"X": "a\r\nInjected: 1"},
            "auth": {"type": "header", "name": "X-K", "value": "a\u{0}b"},
            "rate_limit": {"rate_per_sec": 1e-300, "burst": 1}}),
        )
        .await;
    let (ignored, ignored_body) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "i", "url": "http://x", "env": {"K": "v"}, "max_response_bytes": 0,
            "headers": {"X-Key": "${UNCLOSED", "Authorization": "Basic x"},
            "auth": {"type": "bearer", "token": "t\u{0}"}}),
        )
        .await;
    let (_, connectors) = app.get_json("/api/v1/connectors").await;

    assert_eq!(ignored, 422, "{ignored_body}");
    let named: Vec<&String> = ignored_body["fields"].as_object().unwrap().keys().collect();
    assert_eq!(
        named,
        [
            "auth.token",
            "env",
            "headers.Authorization",
            "headers.X-Key",
            "max_response_bytes"
        ],
        "{ignored_body}"
    );
    assert_eq!(invalid, 422);
    let fields = body["fields"].as_object().unwrap();
    assert!(
        fields.contains_key("name")
            && fields.contains_key("url")
            && fields.contains_key("timeout_ms")
    );
    assert_eq!(typed, 422);
    assert!(
        typed_body["fields"].get("timeout_ms").is_some(),
        "{typed_body}"
    );
    assert_eq!(unknown, 422, "{unknown_body}");
    assert_eq!(malformed.status(), 400);
    assert_eq!(unsendable, 422, "{unsendable_body}");
    let named: Vec<&String> = unsendable_body["fields"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(named, ["auth.value", "headers.X"], "{unsendable_body}");
    assert_eq!(connectors["connectors"], json!([]), "nothing registered");
}

#[actix_web::test]
async fn registrations_survive_a_restart_on_postgres() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![]).await;
    let (created, _) = app
        .send_json(
            "POST",
            "/api/v1/connectors",
            &json!({"name": "kept", "url": backend.url}),
        )
        .await;
    assert_eq!(created, 201);

    let restarted = spawn_app_sharing(&app, |_| {}).await;
    let session = restarted.initialize().await;

    assert_eq!(
        restarted.tool_names(&session).await,
        ["kept_echo", "kept_fail"]
    );
    let (_, view) = restarted.get_json("/api/v1/connectors/kept").await;
    assert_eq!(view["source"], "api");
}

#[actix_web::test]
async fn refresh_is_accepted_for_a_known_connector_only() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;

    let (known, _) = app
        .send_json("POST", "/api/v1/connectors/c/refresh", &json!({}))
        .await;
    let (unknown, _) = app
        .send_json("POST", "/api/v1/connectors/x/refresh", &json!({}))
        .await;

    assert_eq!((known, unknown), (202, 404));
}

#[actix_web::test]
async fn admin_tokens_guard_the_api_but_not_the_probes() {
    std::env::set_var("MCPGATE_TEST_ADMIN_TOKEN", "admin-secret");
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.admin.tokens = vec!["${MCPGATE_TEST_ADMIN_TOKEN}".into()];
    })
    .await;

    let (without, _) = app.get_json("/api/v1/connectors").await;
    let with = app
        .client
        .get(format!("{}/api/v1/connectors", app.address))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    let (health, _) = app.get_json("/healthz").await;

    assert_eq!(without, 401);
    assert_eq!(with.status(), 200);
    assert_eq!(health, 200);
}

#[actix_web::test]
async fn connector_metrics_come_from_the_stored_calls_on_both_backends() {
    for store in [StoreKind::Postgres, StoreKind::Sqlite] {
        let backend = FakeConnector::start().await;
        let url = backend.url.clone();
        let app = spawn_app_with(store, |s| s.connectors = vec![connector("c", &url)]).await;
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
        app.wait_until(|app| app.stored_calls() == 4).await;

        let (status, body) = app.get_json("/api/v1/connectors/c/metrics").await;

        assert_eq!(status, 200);
        for window in ["5m", "1h", "24h"] {
            let stats = &body["windows"][window];
            assert_eq!(stats["calls"], 4, "{store:?} {window}");
            assert_eq!(stats["errors"], 1);
            assert_eq!(stats["error_rate"], 0.25);
            assert!(stats["p50_ms"].as_f64().unwrap() > 0.0);
            assert!(stats["p99_ms"].as_f64() >= stats["p50_ms"].as_f64());
        }
    }
}

#[actix_web::test]
async fn prometheus_metrics_count_calls_breakers_and_sessions() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;
    app.rpc(
        &session,
        "tools/call",
        json!({"name": "c_echo", "arguments": {"text": "a"}}),
    )
    .await;
    app.rpc(&session, "tools/list", json!({})).await;

    let text = app.metrics_text().await;

    for line in [
        r#"mcpgate_tool_calls_total{connector="c",outcome="ok",tool="echo"} 1"#,
        r#"mcpgate_tool_call_duration_seconds_count{connector="c",tool="echo"} 1"#,
        &format!(
            r#"mcpgate_breaker_state{{connector="c",replica="{}"}} 0"#,
            backend.url
        ),
        r#"mcpgate_connector_up{connector="c"} 1"#,
        r#"mcpgate_cache_lookups_total{cache="tools_list",result="hit"} 1"#,
        "mcpgate_sessions_open 1",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
}

#[actix_web::test]
async fn readyz_follows_the_store() {
    let app = spawn_app(vec![]).await;

    let (ready, _) = app.get_json("/readyz").await;
    app.db.take_offline();
    let (down, body) = app.get_json("/readyz").await;
    app.db.bring_online();
    let (back, _) = app.get_json("/readyz").await;

    assert_eq!((ready, down, back), (200, 503, 200));
    assert_eq!(body["store"], "unreachable");
}

#[actix_web::test]
async fn while_the_store_is_away_the_api_answers_503_and_a_refresh_says_it_was_done_here_only() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![connector("c", &url)];
        s.database.connect_timeout_ms = 300;
    })
    .await;
    let refresh = "/api/v1/connectors/c/refresh";

    app.db.take_offline();
    let metrics = app
        .client
        .get(format!("{}/api/v1/connectors/c/metrics", app.address))
        .send()
        .await
        .expect("the gateway answers");
    let retry = metrics.headers().get("retry-after").cloned();
    let away = (metrics.status().as_u16(), metrics.json::<Value>().await);
    let (refreshed, said) = app.send_json("POST", refresh, &json!({})).await;
    app.db.bring_online();
    let (again, _) = app.send_json("POST", refresh, &json!({})).await;

    assert_eq!(away.0, 503);
    assert_eq!(
        away.1.expect("a JSON body")["error"],
        "the store is unavailable; ask again"
    );
    assert_eq!(retry.as_ref().and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(refreshed, 503, "{said}");
    assert_eq!(
        said["error"],
        "connector `c` was refreshed on this gateway, but the store is unavailable, so the other gateways were not asked to; ask again"
    );
    assert_eq!(again, 202);
}

#[actix_web::test]
async fn bodies_of_the_wrong_shape_are_422_naming_every_field_in_json_on_every_route() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let fields = |body: &Value| -> Vec<String> {
        let fields = body["fields"].as_object().cloned().unwrap_or_default();
        fields.keys().cloned().collect()
    };

    let wrong_types = json!({"target_kind": "tool", "target": 5, "rating": 5, "suggestion": []});
    let (typed, typed_body) = app
        .send_json("POST", "/api/v1/feedback", &wrong_types)
        .await;
    let positional = json!(["tool", "c_echo", null, 5]);
    let (array, array_body) = app.send_json("POST", "/api/v1/feedback", &positional).await;
    let (server, server_body) = app
        .send_json("POST", "/api/v1/servers", &json!(["x", ["c"]]))
        .await;
    let versions = "/api/v1/prompts/tool:c_echo/versions";
    let (text, text_body) = app.send_json("POST", versions, &json!({"text": 5})).await;
    let deploy = "/api/v1/prompts/tool:c_echo/deploy";
    let (missing, missing_body) = app.send_json("POST", deploy, &json!({})).await;
    let (absent, absent_body) = app
        .send_json("PUT", "/api/v1/servers/nope", &json!({"connectors": ["c"]}))
        .await;

    assert_eq!(typed, 422, "{typed_body}");
    assert_eq!(
        fields(&typed_body),
        ["suggestion", "target"],
        "{typed_body}"
    );
    assert_eq!(
        (array, fields(&array_body)),
        (422, vec!["body".to_string()])
    );
    assert_eq!(
        (server, fields(&server_body)),
        (422, vec!["body".to_string()])
    );
    assert_eq!((text, fields(&text_body)), (422, vec!["text".to_string()]));
    assert_eq!(missing, 422, "{missing_body}");
    assert_eq!(missing_body["fields"]["version"], "is required");
    assert_eq!(absent, 404);
    assert_eq!(absent_body["error"], "no virtual server is named `nope`");
}
