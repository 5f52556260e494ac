//! Several gateways on one store with `server.advertise_url`: a session lives in the gateway
//! that opened it, and its requests that reach another gateway are forwarded there; a session
//! whose gateway is gone gets 404.

use std::time::Duration;

use mcpgate::configuration::Settings;
use mcpgate::connector::ConnectorSettings;
use mcpgate::store::{leases, session_holders};
use serde_json::{json, Value};

use crate::backends::{marker, tiny};
use crate::fake_connector::FakeConnector;
use crate::helpers::{
    connector, serve_local, spawn_app_sharing, spawn_app_with, test_settings, StoreKind, TestApp,
};
use crate::interop::{python_client_at, PythonConnector};
use crate::legacy_sse::{post, SseClient};
use crate::stateless::{answer, request};

/// A free loopback port: taken for the gateway's own settings, as its advertised URL names it.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Serves `connectors` and advertises the gateway's own address.
fn advertised(connectors: Vec<ConnectorSettings>) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        let port = free_port();
        s.server.port = port;
        s.server.advertise_url = format!("http://127.0.0.1:{port}");
        s.server.keep_alive_ms = 200;
        s.connectors = connectors;
    }
}

/// Two gateways on one store serving `backend`, each advertising its address.
async fn two(backend: &FakeConnector) -> (TestApp, TestApp) {
    let connectors = || vec![connector("c", &backend.url)];
    let first = spawn_app_with(StoreKind::Postgres, advertised(connectors())).await;
    let second = spawn_app_sharing(&first, advertised(connectors())).await;
    (first, second)
}

/// The samples of `mcpgate_sessions_forwarded_total` on `app`, as `outcome=count`.
async fn forwarded(app: &TestApp) -> Vec<String> {
    let text = app.metrics_text().await;
    let mut counted: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("mcpgate_sessions_forwarded_total{outcome=\""))
        .map(|line| line.replace("\"} ", "="))
        .collect();
    counted.sort();
    counted
}

/// The session holders the store of `app` notes.
async fn holders(app: &TestApp) -> i64 {
    app.rows("session_holders").await
}

async fn send(app: &TestApp, method: reqwest::Method, session: &str) -> reqwest::Response {
    app.client
        .request(method, format!("{}/mcp", app.address))
        .header("mcp-session-id", session)
        .header("accept", "application/json, text/event-stream")
        .send()
        .await
        .expect("a response")
}

#[actix_web::test]
async fn a_session_opened_on_one_gateway_is_served_through_another() {
    let backend = FakeConnector::start().await;
    let (first, second) = two(&backend).await;
    let session = first.initialize().await;

    // Requests, a notification, the session's stream and its end, all sent to the second.
    let listed = second.rpc(&session, "tools/list", json!({})).await;
    let called = second
        .rpc(
            &session,
            "tools/call",
            json!({"name": "c_echo", "arguments": {"text": "hi"}}),
        )
        .await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": 99}});
    let noted = second
        .post_mcp(&note.to_string(), &[("mcp-session-id", &session)])
        .await
        .status();
    let mut stream = send(&second, reqwest::Method::GET, &session).await;
    let streamed = (
        stream.status(),
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string(),
        actix_rt::time::timeout(Duration::from_secs(5), stream.chunk()).await,
    );
    let held = holders(&first).await;
    let ended = send(&second, reqwest::Method::DELETE, &session)
        .await
        .status();
    let after = TestApp::read_until(
        || async {
            send(&first, reqwest::Method::DELETE, &session)
                .await
                .status()
        },
        |status| *status == 404,
    )
    .await;
    let forgotten = TestApp::read_until(|| holders(&first), |n| *n == 0).await;
    let forwarded_before = forwarded(&second).await;
    // The second remembers the holder: the first says the session is gone, and the second
    // forgets it too, so the next request is not forwarded.
    let gone = (
        send(&second, reqwest::Method::DELETE, &session)
            .await
            .status(),
        send(&second, reqwest::Method::DELETE, &session)
            .await
            .status(),
    );

    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["c_echo", "c_fail"]);
    assert_eq!(called["result"]["content"][0]["text"], "hi", "{called}");
    assert_eq!(noted, 202);
    assert_eq!(
        (streamed.0.as_u16(), streamed.1.as_str()),
        (200, "text/event-stream")
    );
    let first_bytes = streamed
        .2
        .expect("a keep-alive within 5 s")
        .expect("the stream");
    assert!(
        first_bytes.is_some_and(|b| !b.is_empty()),
        "the stream carries events"
    );
    assert_eq!(held, 1, "the first gateway holds the session");
    assert_eq!(ended, 200, "ended through the second");
    assert_eq!(after, 404, "the first no longer has it");
    assert_eq!(forgotten, 0, "an ended session is forgotten");
    assert_eq!(forwarded_before, ["forwarded=5"]);
    assert_eq!((gone.0.as_u16(), gone.1.as_u16()), (404, 404));
    assert_eq!(forwarded(&second).await, ["forwarded=6"]);
    assert_eq!(forwarded(&first).await, Vec::<String>::new());
}

#[actix_web::test]
async fn a_legacy_session_takes_its_messages_through_another_gateway() {
    let backend = FakeConnector::start().await;
    let (first, second) = two(&backend).await;
    let mut stream = SseClient::open(&first).await;
    let (_, endpoint) = stream.next_event().await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}});

    let accepted = post(&second, &endpoint, init).await.status();
    let answer = stream.next_message().await;

    assert_eq!(accepted, 202);
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["protocolVersion"], "2024-11-05",
        "{answer}"
    );
    assert_eq!(forwarded(&second).await, ["forwarded=1"]);
}

#[actix_web::test]
async fn a_session_whose_gateway_is_gone_or_that_no_gateway_shares_gets_404() {
    let backend = FakeConnector::start().await;
    let (first, second) = two(&backend).await;
    let unshared = spawn_app_sharing(&first, |s| {
        s.connectors = vec![connector("c", &backend.url)];
    })
    .await;
    let session = first.initialize().await;
    let on_unshared = send(&unshared, reqwest::Method::DELETE, &session).await;
    // A forwarded request is not forwarded again.
    let marked = second
        .client
        .delete(format!("{}/mcp", second.address))
        .header("mcp-session-id", &session)
        .header("mcpgate-forwarded", "1")
        .send()
        .await
        .expect("a response")
        .status();
    // A gateway that died holding a session, so recently that its presence has not run out:
    // its note names an address nobody serves.
    let gone = "the-id-of-a-session-on-a-dead-gateway";
    let key = second.gateway.client_keys.of_session(gone);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let noted = mcpgate::store::blocking(&second.gateway.pool, move |conn| {
        leases::take(conn, "presence/dead", "dead", 0, i64::MAX / 2)?;
        session_holders::put(conn, &key, ("dead", &dead), 0)
    });
    noted.await.expect("noted");
    let refused = send(&second, reqwest::Method::DELETE, gone).await;
    let refused: (u16, Value) = (refused.status().as_u16(), refused.json().await.unwrap());
    let left = TestApp::read_until(|| holders(&first), |n| *n == 1).await;
    first.stop().await;

    assert_eq!(
        on_unshared.status(),
        404,
        "a gateway that shares no session"
    );
    assert_eq!(marked, 404);
    assert_eq!(refused.0, 404);
    assert_eq!(refused.1["error"]["message"], "no open session has this id");
    assert_eq!(forwarded(&second).await, ["holder_unreachable=1"]);
    assert_eq!(
        left, 1,
        "the dead gateway's note is forgotten; the first's stays"
    );
    assert_eq!(
        holders(&second).await,
        0,
        "a gateway that stops forgets its sessions"
    );
}

#[actix_web::test]
async fn a_request_waiting_for_input_is_taken_up_by_a_retry_sent_to_another_gateway() {
    let tinies = || vec![tiny("tiny", &marker())];
    let first = spawn_app_with(StoreKind::Postgres, advertised(tinies())).await;
    let second = spawn_app_sharing(&first, advertised(tinies())).await;
    let ask = json!({"name": "tiny_ask", "arguments": {}});
    let sampled = json!({"role": "assistant", "model": "m",
                         "content": {"type": "text", "text": "from the client"}});

    let (_, asked) = answer(
        &first,
        &request(11, "tools/call", ask.clone(), json!({"sampling": {}})),
    )
    .await;
    let state = asked["result"]["requestState"].clone();
    let key = asked["result"]["inputRequests"]
        .as_object()
        .and_then(|requests| requests.keys().next().cloned())
        .expect("an input request");
    let held = holders(&first).await;
    let mut retry = ask;
    retry["inputResponses"] = json!({key: sampled});
    retry["requestState"] = state;
    let (status, done) = answer(
        &second,
        &request(12, "tools/call", retry, json!({"sampling": {}})),
    )
    .await;

    assert_eq!(held, 1, "the first notes the request it parked");
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "sampled: from the client",
        "{done}"
    );
    assert_eq!(forwarded(&second).await, ["forwarded=1"]);
    assert_eq!(
        TestApp::read_until(|| holders(&first), |n| *n == 0).await,
        0,
        "a request taken up is forgotten"
    );
}

#[actix_web::test]
async fn a_request_left_waiting_for_input_is_forgotten_when_it_expires() {
    let first = spawn_app_with(StoreKind::Postgres, |s| {
        advertised(vec![tiny("tiny", &marker())])(s);
        s.mcp.request_timeout_ms = 500;
    })
    .await;
    let ask = json!({"name": "tiny_ask", "arguments": {}});

    let (_, asked) = answer(
        &first,
        &request(11, "tools/call", ask, json!({"sampling": {}})),
    )
    .await;
    let held = holders(&first).await;
    let left = TestApp::read_until(|| holders(&first), |n| *n == 0).await;

    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    assert_eq!((held, left), (1, 0));
}

#[actix_web::test]
async fn what_a_gateway_that_is_gone_held_is_forgotten_once_its_presence_runs_out() {
    let backend = FakeConnector::start().await;
    let (first, second) = two(&backend).await;
    let session = first.initialize().await;
    // Notes of a holder that never renewed a presence (it died long ago).
    let noted = mcpgate::store::blocking(&first.gateway.pool, move |conn| {
        session_holders::put(conn, "session-a", ("long-gone", "http://127.0.0.1:9"), 0)?;
        session_holders::put(conn, "session-b", ("long-gone", "http://127.0.0.1:9"), 0)
    });
    noted.await.expect("noted");

    // Each gateway renews every 100 ms and prunes every tenth renewal.
    let left = TestApp::read_until(|| holders(&first), |n| *n == 1).await;
    let presences = first.rows("leases WHERE name LIKE 'presence/%'").await;

    assert_eq!(left, 1, "the first's own session stays");
    assert_eq!(presences, 2, "one presence per gateway");
    let listed = second.rpc(&session, "tools/list", json!({})).await;
    assert!(listed["result"]["tools"].is_array(), "{listed}");
}

/// A load balancer that sends each request to the next of `targets` in turn, keeping no client
/// on one (a test double); returns its port.
fn round_robin(targets: Vec<String>) -> u16 {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    serve_local(move |config| {
        let (targets, next) = (targets.clone(), next.clone());
        config.default_service(actix_web::web::to(
            move |req: actix_web::HttpRequest, body: bytes::Bytes| {
                let turn = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let target = targets[turn % targets.len()].clone();
                relay(req, body, target)
            },
        ));
    })
}

/// Sends `req` on to `target` and its answer back as it comes.
async fn relay(
    req: actix_web::HttpRequest,
    body: bytes::Bytes,
    target: String,
) -> actix_web::HttpResponse {
    use actix_web::http::header;
    let hop = [
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
    ];
    let client = awc::Client::builder().disable_timeout().finish();
    let mut request = client
        .request(req.method().clone(), format!("{target}{}", req.uri()))
        .no_decompress();
    for (name, value) in req.headers().iter().filter(|(n, _)| !hop.contains(n)) {
        request = request.append_header((name.clone(), value.clone()));
    }
    let response = request.send_body(body).await.expect("a gateway answers");
    let mut answer = actix_web::HttpResponse::build(response.status());
    for (name, value) in response.headers().iter().filter(|(n, _)| !hop.contains(n)) {
        answer.append_header((name.clone(), value.clone()));
    }
    answer.streaming(response)
}

#[actix_web::test]
async fn the_python_sdk_keeps_its_session_behind_a_balancer_that_alternates_gateways() {
    let Some((python, _, _)) = crate::interop::tools() else {
        return;
    };
    let backend = PythonConnector::start();
    let notes = || vec![connector("notes", &backend.url)];
    let first = spawn_app_with(StoreKind::Postgres, advertised(notes())).await;
    let second = spawn_app_sharing(&first, advertised(notes())).await;
    let balancer = format!(
        "http://127.0.0.1:{}",
        round_robin(vec![first.address.clone(), second.address.clone(),])
    );

    for (transport, path) in [("streamable-http", "/mcp"), ("sse", "/sse")] {
        let seen = python_client_at(&python, &balancer, transport, path).await;

        assert_eq!(seen["server_name"], "mcpgate", "{transport}");
        assert_eq!(
            seen["tools"],
            json!(["notes_add", "notes_echo", "notes_fail"]),
            "{transport}"
        );
        assert_eq!(seen["echo"], "hello from python", "{transport}");
        assert_eq!(seen["fail_is_error"], true, "{transport}");
        assert_eq!(seen["prompts"], json!(["notes_summarize"]), "{transport}");
    }
    let mut forwards = forwarded(&first).await;
    forwards.extend(forwarded(&second).await);
    let count = |sample: &String| sample.strip_prefix("forwarded=")?.parse::<u64>().ok();
    let total: u64 = forwards.iter().filter_map(count).sum();
    assert!(
        total >= 6,
        "half the requests reach the other gateway: {forwards:?}"
    );
}

#[actix_web::test]
async fn an_advertised_url_that_is_not_an_http_url_is_refused_by_name() {
    let mut settings = test_settings("sqlite://unused.db");

    let mut refused = Vec::new();
    let bad = [
        "10.0.0.5:8080",
        "ftp://10.0.0.5",
        "http://10.0.0.5/?a=b",
        "http://10.0.0.5:8080/sub",
        "http://10.0.0.5:8080#frag",
        "http://10.0.0.5:99999",
    ];
    for url in bad {
        settings.server.advertise_url = url.to_string();
        refused.push(settings.validate().unwrap_err().to_string());
    }
    settings.server.advertise_url = "http://10.0.0.5:8080".into();
    let plain = settings.validate();
    settings.server.advertise_url = "http://10.0.0.5:8080/".into();

    assert!(plain.is_ok());
    assert!(settings.validate().is_ok());
    for message in refused {
        assert!(message.contains("server.advertise_url"), "{message}");
    }
}
