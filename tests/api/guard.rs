//! Host/Origin validation (on the MCP endpoints and the ops API), the body limit and bearer
//! tokens on the MCP endpoints.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, StoreKind, TestApp};

fn initialize_body() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
    .to_string()
}

#[actix_web::test]
async fn a_foreign_host_or_origin_is_forbidden_and_loopback_is_not() {
    let app = spawn_app(vec![]).await;

    let host = app
        .post_mcp(&initialize_body(), &[("host", "evil.example")])
        .await;
    let origin = app
        .post_mcp(&initialize_body(), &[("origin", "https://evil.example")])
        .await;
    let local = app
        .post_mcp(&initialize_body(), &[("origin", "http://localhost:6274")])
        .await;
    let sse = app
        .client
        .get(format!("{}/sse", app.address))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();

    assert_eq!(host.status(), 403);
    assert_eq!(origin.status(), 403);
    assert_eq!(sse.status(), 403);
    assert_eq!(local.status(), 200);
}

#[actix_web::test]
async fn the_ops_api_refuses_foreign_hosts_and_origins_so_a_web_page_cannot_drive_it() {
    let app = spawn_app(vec![]).await;
    let register = json!({"name": "csrf", "kind": "http", "url": "http://127.0.0.1:1"});
    let post = |origin: &'static str| {
        app.client
            .post(format!("{}/api/v1/connectors", app.address))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(register.to_string())
            .send()
    };

    let cross_site = post("https://evil.example").await.unwrap().status();
    let listed = app.get_json("/api/v1/connectors/csrf").await.0;
    let rebound = app
        .client
        .get(format!("{}/api/v1/connectors", app.address))
        .header("host", "evil.example:8080")
        .send()
        .await
        .unwrap()
        .status();
    let local = post("http://localhost:8080").await.unwrap().status();

    assert_eq!((cross_site.as_u16(), listed), (403, 404));
    assert_eq!(rebound, 403);
    assert_eq!(local, 201);
}

#[actix_web::test]
async fn a_host_that_is_not_ascii_a_second_origin_or_a_foreign_absolute_target_is_forbidden() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(vec![]).await;
    let not_ascii = reqwest::header::HeaderValue::from_bytes(b"evil.example\xe9").unwrap();
    let odd_host = app
        .mcp_request("/mcp", &initialize_body())
        .header("host", not_ascii)
        .send()
        .await
        .unwrap()
        .status();
    let two_origins = app
        .mcp_request("/mcp", &initialize_body())
        .header("origin", "http://localhost")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap()
        .status();
    let authority = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let body = initialize_body();
    let request = format!(
        "POST http://evil.example/mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();

    assert_eq!(odd_host, 403);
    assert_eq!(two_origins, 403);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

#[actix_web::test]
async fn a_body_that_trickles_past_its_deadline_is_408_and_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.server.request_body_timeout_ms = 300;
    })
    .await;
    let authority = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut answer),
    )
    .await;
    let on_time = app.post_mcp(&initialize_body(), &[]).await.status();

    assert!(read.is_ok(), "the gateway closes the connection");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("server.request_body_timeout_ms"),
        "{answer}"
    );
    assert_eq!(on_time, 200);
}

#[actix_web::test]
async fn a_listed_host_is_allowed() {
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.server.allowed_hosts = vec!["gw.internal".into()];
    })
    .await;

    let response = app
        .post_mcp(&initialize_body(), &[("host", "gw.internal:443")])
        .await;

    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(StoreKind::Postgres, |s| s.server.max_body_bytes = 2048).await;
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(4096));

    let response = app.post_mcp(&big, &[]).await;

    assert_eq!(response.status(), 413);
}

#[actix_web::test]
async fn bearer_tokens_from_the_environment_guard_the_mcp_endpoints_only() {
    std::env::set_var("MCPGATE_TEST_CLIENT_TOKEN", "tok-from-env");
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.server.auth.bearer_tokens = vec!["${MCPGATE_TEST_CLIENT_TOKEN}".into()];
    })
    .await;

    let without = app.post_mcp(&initialize_body(), &[]).await;
    let wrong = app
        .post_mcp(&initialize_body(), &[("authorization", "Bearer nope")])
        .await;
    let right = app
        .post_mcp(
            &initialize_body(),
            &[("authorization", "Bearer tok-from-env")],
        )
        .await;
    let probe = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(without.status(), 401);
    assert_eq!(without.headers()["www-authenticate"], "Bearer");
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.text().await.unwrap().contains("tok-from-env"));
    assert_eq!(right.status(), 200);
    assert_eq!(probe.status(), 200);
}

#[actix_web::test]
async fn a_session_past_the_limit_is_refused_with_503_until_one_ends() {
    let app = spawn_app_with(StoreKind::Postgres, |s| s.server.max_sessions = 2).await;
    let first = app.initialize().await;
    let second = app.initialize().await;

    let refused = app.post_mcp(&initialize_body(), &[]).await;
    let (status, header) = (
        refused.status(),
        refused.headers().get("mcp-session-id").cloned(),
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    let sse = app
        .client
        .get(format!("{}/sse", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!((status.as_u16(), header), (503, None));
    assert_eq!(body["error"]["code"], -32000, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2 sessions open") && message.contains("server.max_sessions"),
        "{body}"
    );
    assert_eq!(sse.status(), 503);
    // The open sessions go on, and one that ends makes room.
    assert_eq!(
        app.rpc(&first, "ping", json!({})).await["result"],
        json!({})
    );
    let ended = app.end_session(&second).await;
    assert_eq!(ended.status(), 200);
    let third = app.initialize().await;
    assert_ne!(third, first);
    let metrics = app.metrics_text().await;
    for transport in ["streamable", "sse"] {
        let line = format!("mcpgate_sessions_refused_total{{transport=\"{transport}\"}} 1");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[actix_web::test]
async fn past_the_limit_a_new_session_takes_the_place_of_the_one_idle_the_longest() {
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.server.max_sessions = 2;
        s.server.evict_idle_after_ms = 300;
    })
    .await;
    // The older session holds a stream: it is not idle, however quiet.
    let second = app.initialize().await;
    let first = app.initialize().await;
    let stream = stream_of(&app, &second, "").await;
    let too_soon = app.post_mcp(&initialize_body(), &[]).await.status();

    actix_rt::time::sleep(std::time::Duration::from_millis(400)).await;
    let third = app.initialize().await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let evicted = app
        .post_mcp(&ping, &[("mcp-session-id", first.as_str())])
        .await
        .status();
    let streaming = app.rpc(&second, "ping", json!({})).await;
    let fresh = app.rpc(&third, "ping", json!({})).await;
    let in_use = app.post_mcp(&initialize_body(), &[]).await.status();

    assert_eq!(stream.status(), 200);
    assert_eq!(too_soon, 503, "no session has been idle long enough");
    assert_eq!(evicted, 404, "the idle session was ended for the new one");
    assert_eq!(
        streaming["result"],
        json!({}),
        "the session with a stream goes on"
    );
    assert_eq!(fresh["result"], json!({}));
    assert_eq!(in_use, 503, "the sessions left are in use");
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("mcpgate_sessions_evicted_total 1"),
        "{metrics}"
    );
    drop(stream);
}

/// The `GET` stream of `session`, sent with `authorization` (none when empty).
async fn stream_of(app: &TestApp, session: &str, authorization: &str) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/mcp", app.address))
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .header("accept", "text/event-stream");
    if !authorization.is_empty() {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

/// Opens a Streamable HTTP session as the client with `token`: the status, and the session's id.
async fn open_as(app: &TestApp, token: &str) -> (u16, Option<String>, Value) {
    let bearer = format!("Bearer {token}");
    let response = app
        .post_mcp(&initialize_body(), &[("authorization", bearer.as_str())])
        .await;
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, id, body)
}

/// A ping in `session` as the client with `token`: the status.
async fn ping_as(app: &TestApp, token: &str, session: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let headers = [
        ("authorization", bearer.as_str()),
        ("mcp-session-id", session),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    app.post_mcp(&ping, &headers).await.status().as_u16()
}

#[actix_web::test]
async fn a_session_opened_with_one_token_is_not_served_to_another() {
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.server.auth.bearer_tokens = vec!["token-a".into(), "token-b".into()];
    })
    .await;
    let (_, session, _) = open_as(&app, "token-a").await;
    let session = session.unwrap();

    let other = ping_as(&app, "token-b", &session).await;
    let own = ping_as(&app, "token-a", &session).await;

    assert_eq!(
        other, 404,
        "another token holder is told there is no such session"
    );
    assert_eq!(own, 200);
}

#[actix_web::test]
async fn one_client_holds_at_most_its_share_of_sessions_and_its_own_idlest_makes_room() {
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.server.max_sessions_per_client = 2;
        s.server.evict_idle_after_ms = 300;
        s.server.auth.bearer_tokens = vec!["token-a".into(), "token-b".into()];
    })
    .await;
    let (_, first, _) = open_as(&app, "token-a").await;
    let (_, second, _) = open_as(&app, "token-a").await;
    let (first, second) = (first.unwrap(), second.unwrap());
    let (refused, _, refusal) = open_as(&app, "token-a").await;
    let (other_client, _, _) = open_as(&app, "token-b").await;
    // The second holds a stream: it is not idle, however quiet.
    let stream = stream_of(&app, &second, "Bearer token-a").await;

    actix_rt::time::sleep(std::time::Duration::from_millis(400)).await;
    let (in_place, third, _) = open_as(&app, "token-a").await;
    let evicted = ping_as(&app, "token-a", &first).await;
    let streaming = ping_as(&app, "token-a", &second).await;
    let fresh = ping_as(&app, "token-a", &third.unwrap()).await;
    let (in_use, _, _) = open_as(&app, "token-a").await;

    assert_eq!(stream.status(), 200);
    assert_eq!(refused, 429, "{refusal}");
    let message = refusal["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("server.max_sessions_per_client"),
        "{refusal}"
    );
    assert_eq!(other_client, 200, "another client is not held back");
    assert_eq!(in_place, 200, "the client's idle session made room");
    assert_eq!((evicted, streaming, fresh), (404, 200, 200));
    assert_eq!(in_use, 429, "the client's sessions left are in use");
    let metrics = app.metrics_text().await;
    for line in [
        "mcpgate_sessions_evicted_total 1",
        "mcpgate_sessions_refused_total{transport=\"streamable\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    drop(stream);
}

/// Opens a session with `X-Forwarded-For: forwarded_for` and no token: the status.
async fn open_forwarded_for(app: &TestApp, forwarded_for: &str) -> u16 {
    let headers = [("x-forwarded-for", forwarded_for)];
    let response = app.post_mcp(&initialize_body(), &headers).await;
    response.status().as_u16()
}

#[actix_web::test]
async fn a_trusted_proxy_names_the_client_that_a_limit_per_client_counts() {
    let limited = |s: &mut mcpgate::configuration::Settings| {
        s.server.max_sessions_per_client = 1;
        s.server.evict_idle_after_ms = 0;
    };
    // The tests' client connects from 127.0.0.1, trusted by the first gateway only.
    let trusting = spawn_app_with(StoreKind::Sqlite, |s| {
        limited(s);
        s.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let untrusting = spawn_app_with(StoreKind::Sqlite, limited).await;

    let behind_proxy = [
        open_forwarded_for(&trusting, "198.51.100.1").await,
        open_forwarded_for(&trusting, "198.51.100.1").await,
        open_forwarded_for(&trusting, "198.51.100.2").await,
        // A client that writes its own header is named by the proxy's addition after it.
        open_forwarded_for(&trusting, "198.51.100.2, 198.51.100.3").await,
    ];
    let direct = [
        open_forwarded_for(&untrusting, "198.51.100.1").await,
        open_forwarded_for(&untrusting, "198.51.100.2").await,
    ];

    assert_eq!(behind_proxy, [200, 429, 200, 200]);
    assert_eq!(
        direct,
        [200, 429],
        "without trust, both are the peer 127.0.0.1"
    );
}

#[actix_web::test]
async fn a_trusted_proxy_that_is_not_an_address_is_refused_by_name() {
    let mut settings = crate::helpers::test_settings("sqlite://unused.db");

    settings.server.trusted_proxies = vec!["10.0.0.0/8".into(), "lb.internal".into()];
    let refused = settings.validate().unwrap_err().to_string();
    settings.server.trusted_proxies = vec!["10.0.0.0/8".into(), "192.168.1.5".into()];

    assert!(refused.contains("server.trusted_proxies"), "{refused}");
    assert!(settings.validate().is_ok());
}
