//! The official conformance suite (`@modelcontextprotocol/conformance`) against the fixture
//! server, which answers both eras, directly and through the gateway. The gateway reaches it
//! twice: with 2025-11-25 sessions (virtual server `conformance`) and statelessly
//! (`transport: stateless`, virtual server `stateless`), and each virtual server is tested with
//! the scenarios required by 2025-11-25 (30) and by 2026-07-28 (37), so that every bridge between
//! the eras is crossed. The fixture keeps its events (`--resumable`), so every stream it sends
//! starts with a priming event that has an id. The per-scenario summaries are printed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{connector, spawn_app_with, StoreKind, TestApp};
use crate::stateless_listen::listened;

/// The fixture server over Streamable HTTP, ended when dropped.
pub(crate) struct Fixture {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_fixture(python: &str, flags: &[&str]) -> Fixture {
    let mut child = Command::new(python)
        .args([
            "tests/conformance/fixture_server.py",
            "streamable-http",
            "--port",
            "0",
        ])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the fixture starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .expect("port line")
        .to_string();
    Fixture {
        child,
        url: format!("http://{address}/mcp"),
    }
}

/// Runs `tests/conformance/run-suite` for `revision` off the test's thread; returns its exit
/// status and summary.
async fn run_suite(url: String, revision: &'static str) -> (bool, String) {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_path_buf();
    let output = actix_web::web::block(move || {
        Command::new("bash")
            .arg("tests/conformance/run-suite")
            .arg(&url)
            .arg(&dir)
            .env("MCPGATE_CONFORMANCE_REVISION", revision)
            .output()
            .expect("run-suite runs")
    })
    .await
    .unwrap();
    let summary = std::fs::read_to_string(out.path().join("summary.txt"))
        .unwrap_or_else(|_| format!("no summary: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.success(), summary)
}

#[actix_web::test]
async fn every_required_scenario_passes_directly_and_through_the_gateway() {
    let vars = [
        "MCPGATE_INTEROP_PYTHON",
        "MCPGATE_INTEROP_NODE",
        "MCPGATE_CONFORMANCE",
    ];
    let Some(python) = (match vars.map(std::env::var) {
        [Ok(python), Ok(_), Ok(_)] => Some(python),
        _ if std::env::var_os("CI").is_some() => {
            panic!("conformance tools missing: run scripts/test (it runs scripts/interop-setup)")
        }
        _ => {
            eprintln!("conformance suite not installed; run scripts/test to include this test");
            None
        }
    }) else {
        return;
    };
    let fixture = start_fixture(&python, &["--resumable"]);
    let upstream = fixture.url.clone();
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        let mut sessions = connector("fixture", &upstream);
        sessions.kind = mcpgate::connector::ConnectorKind::Mcp;
        sessions.timeout_ms = 30_000;
        let mut stateless = sessions.clone();
        stateless.name = "modern".into();
        stateless.transport = mcpgate::upstream::Mode::Stateless;
        s.connectors = vec![sessions, stateless];
        s.servers = ["conformance:fixture", "stateless:modern"]
            .map(|pair| {
                let (name, connector) = pair.split_once(':').unwrap();
                serde_json::from_value(serde_json::json!(
                    {"name": name, "connectors": [connector], "prefix": false}))
                .unwrap()
            })
            .to_vec();
    })
    .await;

    let (direct_ok, direct) = run_suite(fixture.url.clone(), "2025-11-25").await;
    let through = format!("{}/servers/conformance/mcp", app.address);
    let (gateway_ok, gateway) = run_suite(through.clone(), "2025-11-25").await;
    let (_, stateless) = run_suite(through, "2026-07-28").await;
    let modern = format!("{}/servers/stateless/mcp", app.address);
    let (_, modern_old) = run_suite(modern.clone(), "2025-11-25").await;
    let (modern_ok, modern_new) = run_suite(modern, "2026-07-28").await;

    let headline = |summary: &str| {
        summary
            .lines()
            .take_while(|l| !l.starts_with("##"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    eprintln!(
        "=== directly against the fixture ===\n{}",
        headline(&direct)
    );
    eprintln!("=== through the gateway ===\n{}", headline(&gateway));
    eprintln!(
        "=== 2026-07-28 through the gateway ===\n{}",
        headline(&stateless)
    );
    eprintln!(
        "=== 2025-11-25 through the gateway, fixture reached statelessly ===\n{}",
        headline(&modern_old)
    );
    eprintln!(
        "=== 2026-07-28 through the gateway, fixture reached statelessly ===\n{}",
        headline(&modern_new)
    );
    assert!(
        direct_ok,
        "the fixture fails required scenarios directly:\n{direct}"
    );
    assert!(
        gateway_ok,
        "required scenarios fail through the gateway:\n{gateway}"
    );
    assert!(
        gateway.contains("30/30 required server scenarios passed"),
        "{gateway}"
    );
    // The gateway names the input requests it makes of a 2025-11-25 backend's requests itself
    // (`elicitation-1`); this one scenario wants the key its own fixture would choose.
    let failed = |summary: &str| -> Vec<String> {
        summary
            .lines()
            .take_while(|l| !l.starts_with("=== Every check"))
            .filter(|l| l.starts_with("FAIL") && l.contains("[required]"))
            .map(str::to_string)
            .collect()
    };
    assert!(
        stateless.contains("36/37 required server scenarios passed"),
        "{stateless}"
    );
    assert_eq!(
        failed(&stateless),
        ["FAIL  input-required-result-basic-elicitation [required]: 1 passed, 1 failed - failed: InputRequiredResultElicitationIncomplete"],
        "{stateless}"
    );
    assert!(stateless.contains("inputRequests missing expected key \"user_name\""));
    // Scored by no revision yet, but part of 2026-07-28: the checks of standard and custom
    // (`x-mcp-header`) headers.
    for pending in [
        "http-header-validation",
        "http-custom-header-server-validation",
    ] {
        assert!(
            stateless.contains(&format!("PASS  {pending} [not scored]")),
            "{pending}: {stateless}"
        );
    }
    // A stateless backend passes its input requests on under its own keys: every scenario.
    assert!(modern_ok, "{modern_new}");
    assert!(
        modern_new.contains("37/37 required server scenarios passed"),
        "{modern_new}"
    );
    // Sessions in front of a stateless backend: its input requests become requests to the
    // client, and resource subscriptions go on its listen stream.
    assert!(failed(&modern_old).is_empty(), "{modern_old}");
    assert!(
        modern_old.contains("30/30 required server scenarios passed"),
        "{modern_old}"
    );
}

#[actix_web::test]
async fn a_server_that_refuses_sessions_is_reached_statelessly_by_transport_auto() {
    let Some(python) = python() else {
        return;
    };
    let fixture = start_fixture(&python, &["--only-stateless"]);
    let app = behind(&fixture.url, 200).await;
    let call = |id: i64, tool: &str, extra: serde_json::Value| {
        let mut params = serde_json::json!({"name": tool, "arguments": {}});
        for (key, value) in extra.as_object().unwrap() {
            params[key] = value.clone();
        }
        crate::stateless::request(
            id,
            "tools/call",
            params,
            serde_json::json!({"elicitation": {}}),
        )
    };
    let answer = |body: serde_json::Value| {
        let app = &app;
        async move {
            let (_, mut all) =
                crate::stateless::messages(crate::stateless::post(app, &body, &[]).await).await;
            all.pop().unwrap()
        }
    };

    let (_, view) = app.get_json("/api/v1/connectors/only").await;
    let simple = answer(call(1, "only_test_simple_text", serde_json::json!({}))).await;
    let asked = answer(call(
        2,
        "only_test_input_required_result_elicitation",
        serde_json::json!({}),
    ))
    .await;
    let reply = serde_json::json!({"action": "accept", "content": {"name": "Alice"}});
    let retry = serde_json::json!({"inputResponses": {"user_name": reply},
        "requestState": asked["result"]["requestState"]});
    let greeted = answer(call(
        3,
        "only_test_input_required_result_elicitation",
        retry,
    ))
    .await;
    let session = app.initialize().await;
    let old = app
        .rpc(
            &session,
            "tools/call",
            serde_json::json!({"name": "only_test_simple_text", "arguments": {}}),
        )
        .await;

    assert_eq!(view["status"]["health"], "healthy", "{view}");
    assert!(view["tools"].as_u64() > Some(10), "{view}");
    assert_eq!(
        simple["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    assert_eq!(
        asked["result"]["inputRequests"]["user_name"]["method"],
        "elicitation/create"
    );
    assert_eq!(
        greeted["result"]["content"][0]["text"], "Hello, Alice!",
        "{greeted}"
    );
    assert_eq!(
        old["result"]["content"][0]["text"], "This is a simple text response for testing.",
        "a session client reaches it too"
    );
}

/// The Python that runs the fixture; `None` outside CI when it is not installed.
pub(crate) fn python() -> Option<String> {
    let python = std::env::var("MCPGATE_INTEROP_PYTHON").ok();
    assert!(
        python.is_some() || std::env::var_os("CI").is_none(),
        "MCPGATE_INTEROP_PYTHON missing: run scripts/test"
    );
    python
}

/// A gateway whose one connector, `only`, is the fixture at `url` with the default transport
/// (`auto`), checked every `health_ms`.
pub(crate) async fn behind(url: &str, health_ms: u64) -> TestApp {
    spawn_app_with(StoreKind::Sqlite, |s| {
        let mut only = connector("only", url);
        only.kind = mcpgate::connector::ConnectorKind::Mcp;
        only.health_check_interval_ms = health_ms;
        s.connectors = vec![only];
    })
    .await
}

/// What the tool `name` of the fixture at `url` answers, asked directly and statelessly.
pub(crate) async fn fixture_says(url: &str, name: &str) -> String {
    let meta = serde_json::json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}});
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": {}, "_meta": meta}});
    let sent = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .json(&body)
        .send()
        .await;
    let Ok(text) = async { sent?.text().await }.await else {
        return String::new();
    };
    let json = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or(&text);
    let answer: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn a_stateless_backend_that_restarts_is_listened_to_again() {
    let Some(python) = python() else {
        return;
    };
    let first = start_fixture(&python, &["--only-stateless"]);
    let url = first.url.clone();
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/mcp")
        .to_string();
    // Lists are reloaded only when the backend says they changed.
    let app = behind(&url, 60_000).await;
    let dynamic = || async {
        let body = crate::stateless::request(
            1,
            "tools/list",
            serde_json::json!({}),
            serde_json::json!({}),
        );
        let (_, replies) =
            crate::stateless::messages(crate::stateless::post(&app, &body, &[]).await).await;
        let tools = replies[0]["result"]["tools"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        tools.iter().any(|t| t["name"] == "only_test_dynamic_tool")
    };
    let streams = |url: String| async move { fixture_says(&url, "test_listen_streams").await };

    let listening = TestApp::read_until(|| streams(url.clone()), |n| n == "1").await;
    fixture_says(&url, "test_trigger_tool_change").await;
    let added = TestApp::read_until(dynamic, |d| *d).await;
    drop(first);
    let second = start_fixture(&python, &["--only-stateless", "--port", &port]);
    let again = TestApp::read_until(|| streams(second.url.clone()), |n| n == "1").await;
    // The restarted server lists no dynamic tool; two changes bring it back, then remove it.
    fixture_says(&second.url, "test_trigger_tool_change").await;
    fixture_says(&second.url, "test_trigger_tool_change").await;
    let removed = TestApp::read_until(dynamic, |d| !*d).await;

    assert_eq!(listening, "1", "the gateway listens to the server");
    assert!(
        added,
        "a change told on the listen stream reloads the tools"
    );
    assert_eq!(again, "1", "the gateway listens to the restarted server");
    assert!(
        !removed,
        "a change of the restarted server reaches the gateway"
    );
}

#[actix_web::test]
async fn resource_subscriptions_reach_a_stateless_backend_on_its_listen_stream() {
    let Some(python) = python() else {
        return;
    };
    let fixture = start_fixture(&python, &["--only-stateless"]);
    let url = fixture.url.clone();
    // A closed stream is noticed at the next write: keep-alives every 100 ms.
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        let mut only = connector("only", &url);
        only.kind = mcpgate::connector::ConnectorKind::Mcp;
        only.health_check_interval_ms = 60_000;
        s.connectors = vec![only];
        s.server.keep_alive_ms = 100;
    })
    .await;
    let watchers = || fixture_says(&url, "test_watchers");
    let listen = |id: i64, uris: serde_json::Value| {
        let notifications = serde_json::json!({ "resourceSubscriptions": uris });
        let params = serde_json::json!({ "notifications": notifications });
        crate::stateless::request(id, "subscriptions/listen", params, serde_json::json!({}))
    };
    let before = watchers().await;

    let watched = serde_json::json!(["only:test://watched-resource"]);
    let mut stream = crate::stateless::post(&app, &listen(61, watched), &[]).await;
    let ack = listened(&mut stream, 1, Duration::from_secs(10)).await;
    let while_open = watchers().await;
    let touched = fixture_says(&url, "test_touch_watched").await;
    let updated = listened(&mut stream, 1, Duration::from_secs(10)).await;
    drop(stream);
    let after = TestApp::read_until(watchers, |n| n == "0").await;

    assert_eq!(before, "0");
    assert_eq!(
        ack[0]["params"]["notifications"]["resourceSubscriptions"],
        serde_json::json!(["only:test://watched-resource"]),
        "the backend acknowledged the subscription to the gateway"
    );
    assert_eq!(
        while_open, "1",
        "the gateway's listen stream names the resource"
    );
    assert_eq!(touched, "Touched");
    assert_eq!(updated[0]["method"], "notifications/resources/updated");
    assert_eq!(updated[0]["params"]["uri"], "only:test://watched-resource");
    assert_eq!(after, "0", "the last subscriber gone, the backend is told");
}
