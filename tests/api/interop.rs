//! Real MCP clients (the Python SDK and the MCP Inspector CLI) against the gateway, in front of a
//! real connector process written in Python (the stateless revision's client is in
//! `interop_stateless`). `scripts/interop-setup` installs the clients and
//! names them in MCPGATE_INTEROP_* variables; `scripts/test` does both.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

use crate::helpers::{connector, spawn_app, TestApp};

/// The example connector, ended when dropped.
pub(crate) struct PythonConnector {
    child: Child,
    pub(crate) url: String,
}

impl PythonConnector {
    pub(crate) fn start() -> PythonConnector {
        let mut child = Command::new("python3")
            .args(["examples/connectors/python/connector.py", "--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the example connector");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .expect("port line");
        PythonConnector {
            child,
            url: format!("http://{address}"),
        }
    }
}

impl Drop for PythonConnector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The installed clients, or `None` outside CI when they are not installed.
pub(crate) fn tools() -> Option<(String, String, String)> {
    let vars = [
        "MCPGATE_INTEROP_PYTHON",
        "MCPGATE_INTEROP_NODE",
        "MCPGATE_INTEROP_INSPECTOR",
    ];
    match vars.map(std::env::var) {
        [Ok(python), Ok(node), Ok(inspector)] => Some((python, node, inspector)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("interop clients missing: run scripts/test (it runs scripts/interop-setup)")
        }
        _ => {
            eprintln!("interop clients not installed; run scripts/test to include this test");
            None
        }
    }
}

/// Runs a command off the test's thread, which also runs the gateway's actors.
pub(crate) async fn output(mut command: Command) -> Output {
    actix_web::web::block(move || command.output().expect("client runs"))
        .await
        .unwrap()
}

async fn python_client(python: &str, app: &TestApp, transport: &str, path: &str) -> Value {
    python_client_at(python, &app.address, transport, path).await
}

/// What the Python SDK's client saw of the server at `address`, over `transport` at `path`.
pub(crate) async fn python_client_at(
    python: &str,
    address: &str,
    transport: &str,
    path: &str,
) -> Value {
    let mut command = Command::new(python);
    command.args([
        "tests/interop/python_client.py",
        "--transport",
        transport,
        &format!("{address}{path}"),
    ]);
    let out = output(command).await;
    assert!(
        out.status.success(),
        "python client over {transport}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("python client over {transport}: {stdout}");
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

#[actix_web::test]
async fn a_backend_listing_malformed_tools_does_not_break_the_python_sdk_for_the_others() {
    let Some((python, _, _)) = tools() else {
        return;
    };
    let notes = PythonConnector::start();
    let bad = crate::fake_connector::FakeConnector::with_tools(vec![
        json!({"name": "schema_text", "inputSchema": "string schema"}),
        json!({"name": "schema_list", "inputSchema": [1, 2]}),
        json!({"name": "schema_string", "inputSchema": {"type": "string"}}),
        json!({"name": "schema_null", "inputSchema": null}),
        json!({"name": "described", "description": 42, "inputSchema": {"type": "object"}}),
        json!({"name": "untyped", "inputSchema": {"properties": {"q": {"type": "string"}}}}),
        json!({"name": "", "inputSchema": {"type": "object"}}),
    ])
    .await;
    let app = spawn_app(vec![
        connector("notes", &notes.url),
        connector("bad", &bad.url),
    ])
    .await;

    let seen = python_client(&python, &app, "streamable-http", "/mcp").await;

    let mended = ["bad_described", "bad_schema_null", "bad_untyped"];
    let expected: Vec<&str> = mended
        .into_iter()
        .chain(["notes_add", "notes_echo", "notes_fail"])
        .collect();
    assert_eq!(seen["tools"], json!(expected));
    assert_eq!(seen["echo"], "hello from python");
}

#[actix_web::test]
async fn the_python_sdk_lists_and_calls_through_both_transports() {
    let Some((python, _, _)) = tools() else {
        return;
    };
    let backend = PythonConnector::start();
    let app = spawn_app(vec![connector("notes", &backend.url)]).await;

    for (transport, path) in [("streamable-http", "/mcp"), ("sse", "/sse")] {
        let seen = python_client(&python, &app, transport, path).await;

        assert_eq!(seen["server_name"], "mcpgate", "{transport}");
        assert_eq!(
            seen["tools"],
            serde_json::json!(["notes_add", "notes_echo", "notes_fail"])
        );
        assert_eq!(seen["echo"], "hello from python");
        assert_eq!(seen["fail_is_error"], true);
        assert_eq!(seen["fail_text"], "the fail tool always fails");
        assert!(seen["resources"]
            .as_array()
            .unwrap()
            .contains(&"notes:file://README.md".into()));
        assert!(seen["readme_text"].as_str().unwrap().starts_with("# notes"));
        assert_eq!(seen["prompts"], serde_json::json!(["notes_summarize"]));
        assert_eq!(
            seen["summarize_text"],
            "Summarize what is known about rust."
        );
    }
    app.wait_until(|app| app.stored_calls() == 4).await;
}

#[actix_web::test]
async fn the_inspector_cli_lists_calls_reads_and_gets_through_both_transports() {
    let Some((_, node, inspector)) = tools() else {
        return;
    };
    let backend = PythonConnector::start();
    let app = spawn_app(vec![connector("notes", &backend.url)]).await;
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--method", "tools/list"], "\"notes_echo\""),
        (
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "notes_echo",
                "--tool-arg",
                "text=from inspector",
            ],
            "\"from inspector\"",
        ),
        (
            &["--method", "resources/read", "--uri", "notes:memo://today"],
            "\"notes:memo://today\"",
        ),
        (
            &[
                "--method",
                "prompts/get",
                "--prompt-name",
                "notes_summarize",
                "--prompt-args",
                "topic=gateways",
            ],
            "Summarize what is known about gateways.",
        ),
    ];

    for path in ["/mcp", "/sse"] {
        for (args, expected) in cases {
            let mut command = Command::new(&node);
            command
                .arg(&inspector)
                .arg("--cli")
                .arg(format!("{}{path}", app.address))
                .args(args)
                .env("HOME", home.path());
            let out = output(command).await;
            let stdout = String::from_utf8_lossy(&out.stdout);
            eprintln!(
                "inspector {path} {args:?}: exit {:?}\n{stdout}",
                out.status.code()
            );

            assert!(
                out.status.success(),
                "{path} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(expected), "{path} {args:?}: {stdout}");
        }
    }
}

/// An environment variable that `scripts/interop-setup` exports, or `None` outside CI.
pub fn installed(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) => Some(value),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("{var} missing: run scripts/test (it runs scripts/interop-setup)")
        }
        Err(_) => {
            eprintln!("{var} not set; run scripts/test to include this test");
            None
        }
    }
}

fn stdio_connector(
    name: &str,
    command: &str,
    args: &[&str],
) -> mcpgate::connector::ConnectorSettings {
    serde_json::from_value(
        serde_json::json!({"name": name, "kind": "stdio", "command": command,
        "args": args, "timeout_ms": 15000, "health_check_interval_ms": 5000,
        "health_check_timeout_ms": 5000}),
    )
    .unwrap()
}

/// Lists, calls, reads and gets through the gateway in front of server-everything as `every`.
async fn exercise_everything(app: &TestApp) {
    let session = app.initialize().await;
    let names = app.tool_names(&session).await;
    let echo = app
        .rpc(&session, "tools/call", serde_json::json!({"name": "every_echo", "arguments": {"message": "through the gateway"}}))
        .await;
    let sum = app
        .rpc(
            &session,
            "tools/call",
            serde_json::json!({"name": "every_get-sum", "arguments": {"a": 2, "b": 40}}),
        )
        .await;
    let resources = app
        .rpc(&session, "resources/list", serde_json::json!({}))
        .await;
    let first = resources["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let read = app
        .rpc(
            &session,
            "resources/read",
            serde_json::json!({ "uri": first }),
        )
        .await;
    let prompt = app
        .rpc(
            &session,
            "prompts/get",
            serde_json::json!({"name": "every_simple-prompt"}),
        )
        .await;

    assert!(names.contains(&"every_echo".to_string()), "{names:?}");
    assert_eq!(
        echo["result"]["content"][0]["text"],
        "Echo: through the gateway"
    );
    assert!(sum["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("42"));
    assert!(first.starts_with("every:"), "{first}");
    assert_eq!(read["result"]["contents"][0]["uri"], first.as_str());
    assert!(prompt["result"]["messages"][0]["content"]["text"].is_string());
}

#[actix_web::test]
async fn server_everything_works_behind_the_gateway_as_a_stdio_process() {
    let (Some(node), Some(everything)) = (
        installed("MCPGATE_INTEROP_NODE"),
        installed("MCPGATE_EVERYTHING"),
    ) else {
        return;
    };
    let connector = stdio_connector("every", &node, &[&everything, "stdio"]);
    let app = spawn_app(vec![connector]).await;

    exercise_everything(&app).await;
}

#[actix_web::test]
async fn server_everything_works_behind_the_gateway_over_streamable_http() {
    let (Some(node), Some(everything)) = (
        installed("MCPGATE_INTEROP_NODE"),
        installed("MCPGATE_EVERYTHING"),
    ) else {
        return;
    };
    let port = free_port();
    let mut server = start_everything_http(&node, &everything, port);
    let connector = serde_json::from_value(serde_json::json!({"name": "every", "kind": "mcp",
        "url": format!("http://127.0.0.1:{port}/mcp"), "timeout_ms": 15000}))
    .unwrap();
    let app = spawn_app(vec![connector]).await;

    exercise_everything(&app).await;

    let _ = server.kill();
    let _ = server.wait();
}

#[actix_web::test]
async fn mcp_server_time_works_behind_the_gateway_as_a_stdio_process() {
    let Some(time_server) = installed("MCPGATE_TIME_SERVER") else {
        return;
    };
    let app = spawn_app(vec![stdio_connector("time", &time_server, &[])]).await;
    let session = app.initialize().await;

    let names = app.tool_names(&session).await;
    let now = app
        .rpc(
            &session,
            "tools/call",
            serde_json::json!({"name": "time_get_current_time", "arguments": {"timezone": "UTC"}}),
        )
        .await;
    let resources = app
        .rpc(&session, "resources/list", serde_json::json!({}))
        .await;
    let prompts = app
        .rpc(&session, "prompts/list", serde_json::json!({}))
        .await;

    assert_eq!(names, ["time_convert_time", "time_get_current_time"]);
    let text = now["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("UTC"), "{text}");
    assert_eq!(resources["result"]["resources"], serde_json::json!([]));
    assert_eq!(prompts["result"]["prompts"], serde_json::json!([]));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// server-everything over Streamable HTTP on `port` (loopback only), once it listens.
fn start_everything_http(node: &str, everything: &str, port: u16) -> Child {
    start_everything(node, everything, "streamableHttp", port, "listening")
}

/// server-everything in `mode` on `port` (loopback only), once stderr says `ready`.
fn start_everything(node: &str, everything: &str, mode: &str, port: u16, ready: &str) -> Child {
    let mut server = Command::new(node)
        .args([
            "--require",
            "./tests/interop/loopback.cjs",
            everything,
            mode,
        ])
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    while !line.contains(ready) {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "server-everything {mode} did not start"
        );
    }
    // Keep reading stderr: a closed pipe would kill the server at its next log line.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    server
}

#[actix_web::test]
async fn a_restarted_upstream_server_is_initialized_again_without_the_client_noticing() {
    let (Some(node), Some(everything)) = (
        installed("MCPGATE_INTEROP_NODE"),
        installed("MCPGATE_EVERYTHING"),
    ) else {
        return;
    };
    let port = free_port();
    let mut server = start_everything_http(&node, &everything, port);
    let connector = serde_json::from_value(serde_json::json!({"name": "every", "kind": "mcp",
        "url": format!("http://127.0.0.1:{port}/mcp"), "timeout_ms": 15000,
        "health_check_interval_ms": 60000}))
    .unwrap();
    let app = spawn_app(vec![connector]).await;
    let session = app.initialize().await;
    let uri = "every:demo://resource/static/document/architecture.md";
    let before = app
        .rpc(
            &session,
            "resources/read",
            serde_json::json!({ "uri": uri }),
        )
        .await;

    let _ = server.kill();
    let _ = server.wait();
    let mut server = start_everything_http(&node, &everything, port);
    let after = app
        .rpc(
            &session,
            "resources/read",
            serde_json::json!({ "uri": uri }),
        )
        .await;
    let call = app
        .rpc(
            &session,
            "tools/call",
            serde_json::json!({"name": "every_echo", "arguments": {"message": "again"}}),
        )
        .await;

    assert_eq!(before["result"]["contents"][0]["uri"], uri);
    assert_eq!(after["result"]["contents"][0]["uri"], uri, "{after}");
    assert_eq!(
        call["result"]["content"][0]["text"], "Echo: again",
        "{call}"
    );
    let _ = server.kill();
    let _ = server.wait();
}

#[actix_web::test]
async fn a_legacy_sse_server_is_reached_by_falling_back_from_streamable_http() {
    let (Some(node), Some(everything)) = (
        installed("MCPGATE_INTEROP_NODE"),
        installed("MCPGATE_EVERYTHING"),
    ) else {
        return;
    };
    let port = free_port();
    let mut server = start_everything(&node, &everything, "sse", port, "running");
    let connector = serde_json::from_value(serde_json::json!({"name": "every", "kind": "mcp",
        "url": format!("http://127.0.0.1:{port}/sse"), "transport": "auto", "timeout_ms": 15000}))
    .unwrap();
    let app = spawn_app(vec![connector]).await;

    exercise_everything(&app).await;

    let _ = server.kill();
    let _ = server.wait();
}
