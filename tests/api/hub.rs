//! The connector hub under failure: breakers, fail-open catalog, retries, coalescing, replicas,
//! rate limits, credentials and supervised restarts, against real HTTP connectors.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_connector::{Behaviour, FakeConnector};
use crate::helpers::{connector, spawn_app, spawn_app_with, StoreKind, TestApp};

/// Reads a GET /mcp stream until `needle` shows up (10 s at most).
pub async fn wait_for_event(stream: &mut reqwest::Response, needle: &str) {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = actix_rt::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` within 10 s; saw {seen}"))
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

pub async fn open_stream(app: &TestApp, session: &str) -> reqwest::Response {
    let stream = app
        .client
        .get(format!("{}/mcp", app.address))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stream
}

pub fn fragile(name: &str, url: &str) -> mcpgate::connector::ConnectorSettings {
    let mut settings = connector(name, url);
    settings.breaker.consecutive_failures = 3;
    settings.breaker.open_ms = 300;
    settings.health_check_interval_ms = 100;
    settings.health_check_timeout_ms = 300;
    settings.restart_after_failed_checks = 0;
    settings
}

#[actix_web::test]
async fn a_failing_connector_opens_its_circuit_leaves_the_catalog_and_comes_back() {
    let flaky = FakeConnector::start().await;
    let steady = FakeConnector::start().await;
    let app = spawn_app(vec![
        fragile("flaky", &flaky.url),
        connector("steady", &steady.url),
    ])
    .await;
    let session = app.initialize().await;
    let mut stream = open_stream(&app, &session).await;

    flaky.set_behaviour(Behaviour::Fail);
    wait_for_event(&mut stream, "notifications/tools/list_changed").await;
    let names = app.tool_names(&session).await;
    let started = Instant::now();
    let refused = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "flaky_echo", "arguments": {"text": "x"}}),
        )
        .await;
    let refused_in = started.elapsed();
    let other = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "steady_echo", "arguments": {"text": "y"}}),
        )
        .await;

    assert_eq!(names, ["steady_echo", "steady_fail"]);
    assert_eq!(refused["error"]["code"], -32000);
    assert_eq!(refused["error"]["data"]["kind"], "unavailable");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`flaky`"));
    assert!(refused_in < Duration::from_millis(1_000), "{refused_in:?}");
    assert_eq!(other["result"]["content"][0]["text"], "y");
    let (_, view) = app.get_json("/api/v1/connectors/flaky").await;
    assert_eq!(view["status"]["available"], false);
    assert_eq!(view["status"]["replicas"][0]["breaker"], "open", "{view}");

    flaky.set_behaviour(Behaviour::Normal);
    wait_for_event(&mut stream, "notifications/tools/list_changed").await;
    let names = app.tool_names(&session).await;
    assert_eq!(
        names,
        ["flaky_echo", "flaky_fail", "steady_echo", "steady_fail"]
    );
    let back = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "flaky_echo", "arguments": {"text": "z"}}),
        )
        .await;
    assert_eq!(back["result"]["content"][0]["text"], "z");
}

#[actix_web::test]
async fn a_read_that_fails_once_is_retried_and_a_plain_tool_call_is_not() {
    let backend = FakeConnector::with_tools(vec![
        json!({"name": "echo"}),
        json!({"name": "safe_echo", "annotations": {"readOnlyHint": true}}),
    ])
    .await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;

    backend.garbage_next(1);
    let read = app
        .rpc(
            &session,
            "resources/read",
            json!({"uri": "c:file://README.md"}),
        )
        .await;
    backend.garbage_next(1);
    let plain = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "c_echo", "arguments": {"text": "a"}}),
        )
        .await;
    let executions_after_plain = backend.executions();
    backend.garbage_next(1);
    let safe = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "c_safe_echo", "arguments": {"text": "b"}}),
        )
        .await;

    assert_eq!(
        read["result"]["contents"][0]["text"],
        "content of file://README.md"
    );
    assert_eq!(backend.reads(), 2);
    assert_eq!(plain["error"]["data"]["kind"], "bad_response");
    assert_eq!(executions_after_plain, 1);
    assert_eq!(safe["result"]["content"][0]["text"], "b");
    assert_eq!(backend.executions(), 3);
}

#[actix_web::test]
async fn identical_concurrent_reads_reach_the_backend_once() {
    let backend = FakeConnector::start().await;
    let app = spawn_app(vec![connector("c", &backend.url)]).await;
    let session = app.initialize().await;
    backend.set_behaviour(Behaviour::Delay(300));

    let read = || {
        app.rpc(
            &session,
            "resources/read",
            json!({"uri": "c:file://README.md"}),
        )
    };
    let answers = futures_util::future::join_all((0..5).map(|_| read())).await;

    for answer in &answers {
        assert_eq!(
            answer["result"]["contents"][0]["text"],
            "content of file://README.md"
        );
    }
    assert_eq!(backend.reads(), 1);
    let text = app.metrics_text().await;
    assert!(
        text.contains(r#"mcpgate_cache_lookups_total{cache="resource_read",result="hit"} 4"#),
        "{text}"
    );
}

#[actix_web::test]
async fn a_hanging_connector_does_not_delay_tools_list() {
    let hanging = FakeConnector::start().await;
    let fine = FakeConnector::start().await;
    let app = spawn_app(vec![
        connector("hang", &hanging.url),
        connector("fine", &fine.url),
    ])
    .await;
    let session = app.initialize().await;
    hanging.set_behaviour(Behaviour::Hang);

    let started = Instant::now();
    let names = app.tool_names(&session).await;

    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        started.elapsed()
    );
    assert!(names.contains(&"fine_echo".to_string()));
}

#[actix_web::test]
async fn a_dead_replica_is_ejected_while_the_connector_keeps_serving() {
    let alive = FakeConnector::start().await;
    let dead = FakeConnector::start().await;
    let mut settings = fragile("c", &alive.url);
    settings.url = None;
    settings.urls = vec![alive.url.clone(), dead.url.clone()];
    let app = spawn_app(vec![settings]).await;
    let session = app.initialize().await;

    dead.stop().await;
    app.wait_until_view("c", |view| {
        view["status"]["replicas"][1]["breaker"] == "open"
    })
    .await;
    let mut answers = Vec::new();
    for i in 0..6 {
        let text = format!("call {i}");
        let answer = app
            .rpc(
                &session,
                "tools/call",
                json!({"name": "c_echo", "arguments": {"text": text}}),
            )
            .await;
        answers.push(answer["result"]["content"][0]["text"].clone());
    }

    let expected: Vec<Value> = (0..6).map(|i| json!(format!("call {i}"))).collect();
    assert_eq!(answers, expected);
    let (_, view) = app.get_json("/api/v1/connectors/c").await;
    assert_eq!(view["status"]["available"], true);
    assert_eq!(view["status"]["health"], "degraded");
    assert_eq!(view["status"]["replicas"][0]["breaker"], "closed");
    assert_eq!(alive.executions(), 6);
}

#[actix_web::test]
async fn an_over_limit_call_is_refused_with_when_to_retry_and_counted() {
    let backend = FakeConnector::start().await;
    let mut settings = connector("c", &backend.url);
    settings.rate_limit = Some(mcpgate::connector::RateLimitSettings {
        rate_per_sec: 1.0,
        burst: 2,
    });
    let app = spawn_app(vec![settings]).await;
    let session = app.initialize().await;
    let call = json!({"name": "c_echo", "arguments": {"text": "a"}});

    let first = app.rpc(&session, "tools/call", call.clone()).await;
    let second = app.rpc(&session, "tools/call", call.clone()).await;
    let third = app.rpc(&session, "tools/call", call).await;

    assert!(first.get("result").is_some() && second.get("result").is_some());
    assert_eq!(third["error"]["code"], -32000);
    assert_eq!(third["error"]["data"]["kind"], "rate_limited");
    let wait = third["error"]["data"]["retryAfterMs"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 1000, "{wait}");
    assert!(third["error"]["message"]
        .as_str()
        .unwrap()
        .contains("retry in"));
    assert_eq!(backend.executions(), 2);
    let text = app.metrics_text().await;
    assert!(
        text.contains(r#"mcpgate_rate_limited_total{connector="c"} 1"#),
        "{text}"
    );
}

#[actix_web::test]
async fn credentials_from_the_environment_reach_the_backend_and_nothing_else() {
    std::env::set_var("MCPGATE_TEST_BASIC_PASSWORD", "basic-pw-secret");
    let backend = FakeConnector::start().await;
    let mut settings = connector("c", &backend.url);
    settings.auth = Some(mcpgate::connector::Credentials::Basic {
        username: "gw".into(),
        password: "${MCPGATE_TEST_BASIC_PASSWORD}".into(),
    });
    let app = spawn_app(vec![settings]).await;
    let session = app.initialize().await;

    app.rpc(
        &session,
        "tools/call",
        json!({"name": "c_echo", "arguments": {"text": "a"}}),
    )
    .await;
    backend.set_behaviour(Behaviour::Garbage);
    let failed = app
        .rpc(&session, "tools/call", json!({"name": "c_echo"}))
        .await;
    let (_, listed) = app.get_json("/api/v1/connectors").await;
    let metrics = app.metrics_text().await;

    let (_, _, headers) = backend.state.last_execute.lock().unwrap().clone().unwrap();
    let sent = headers.iter().find(|(k, _)| k == "authorization").unwrap();
    assert_eq!(sent.1, "Basic Z3c6YmFzaWMtcHctc2VjcmV0");
    assert_eq!(listed["connectors"][0]["settings"]["auth"], "basic");
    for text in [failed.to_string(), listed.to_string(), metrics] {
        assert!(!text.contains("basic-pw-secret") && !text.contains("Z3c6YmFzaWMtcHctc2VjcmV0"));
    }
}

#[actix_web::test]
async fn a_connector_that_keeps_failing_checks_restarts_and_fails_its_calls_under_way() {
    let backend = FakeConnector::start().await;
    let mut settings = fragile("c", &backend.url);
    settings.timeout_ms = 10_000;
    settings.restart_after_failed_checks = 2;
    settings.breaker.consecutive_failures = 100;
    let app = spawn_app_with(StoreKind::Postgres, |s| s.connectors = vec![settings]).await;
    let session = app.initialize().await;

    backend.set_behaviour(Behaviour::Hang);
    let started = Instant::now();
    let cut = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "c_echo", "arguments": {"text": "a"}}),
        )
        .await;
    let cut_after = started.elapsed();
    backend.set_behaviour(Behaviour::Normal);
    app.wait_until_view("c", |view| view["status"]["health"] == "healthy")
        .await;
    let after = app
        .rpc(
            &session,
            "tools/call",
            json!({"name": "c_echo", "arguments": {"text": "b"}}),
        )
        .await;

    assert!(cut_after < Duration::from_secs(5), "{cut_after:?}");
    assert_eq!(cut["error"]["code"], -32000);
    assert_eq!(cut["error"]["data"]["kind"], "stopped");
    assert_eq!(after["result"]["content"][0]["text"], "b");
}

impl TestApp {
    /// Polls the ops API view of `name` until `check` holds (10 s at most).
    pub async fn wait_until_view(&self, name: &str, check: impl Fn(&Value) -> bool) {
        let path = format!("/api/v1/connectors/{name}");
        let view = || async { self.get_json(&path).await.1 };
        let view = TestApp::read_until(view, &check).await;
        assert!(check(&view), "connector view never matched: {view}");
    }
}
