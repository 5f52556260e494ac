//! `mcpgate stdio`: one session on stdin and stdout with logs on stderr, bad lines answered
//! with errors, and stateless requests (revision 2026-07-28) beside the session.

use std::process::Stdio;
use std::time::Duration;

use crate::cli::{config_dir, mcpgate};

/// The messages of `mcpgate stdio`'s output, one per line; every line must be one.
fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON-RPC"))
        .collect()
}

/// The answer to request `id` among `messages` (`null` when there is none).
fn answer_to(messages: &[serde_json::Value], id: i64) -> serde_json::Value {
    let answer = messages
        .iter()
        .find(|m| m["id"] == id && m.get("method").is_none());
    answer.cloned().unwrap_or_default()
}

/// `mcpgate stdio` with the tiny stdio server behind it as `tiny`, its three streams piped;
/// the directory holds its settings and database.
fn stdio_in_front_of_tiny() -> (tempfile::TempDir, std::process::Child) {
    let cwd = std::env::current_dir().unwrap();
    let server = cwd.join("tests/interop/tiny_stdio_server.py");
    let dir = config_dir(&format!(
        "connectors:\n  - name: tiny\n    kind: stdio\n    command: python3\n    args: [\"{}\"]\n",
        server.display()
    ));
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let child = mcpgate(
        dir.path(),
        &["stdio"],
        &[("MCPGATE__DATABASE__URL", db.as_str())],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    (dir, child)
}

#[test]
fn stdio_serves_one_session_on_stdin_and_stdout_with_logs_on_stderr() {
    use std::io::Write;
    let (_dir, mut child) = stdio_in_front_of_tiny();
    let input = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        // Before the first load is done: it waits for it, as a call does.
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"mcpgate_feedback","arguments":{"target_kind":"tool","target":"tiny_echo","rating":5}}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"tiny_echo","arguments":{"text":"over stdio"}}}"#,
        "not json",
    ];
    let mut stdin = child.stdin.take().unwrap();
    for line in input {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut answers = json_lines(&stdout);
    answers.retain(|m| m.get("id").is_some());
    let by_id = |id: i64| answer_to(&answers, id);
    assert!(output.status.success());
    assert_eq!(by_id(1)["result"]["protocolVersion"], "2025-06-18");
    let tools = by_id(2)["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(tools.iter().any(|t| t["name"] == "tiny_echo"), "{stdout}");
    assert_eq!(by_id(3)["result"]["content"][0]["text"], "over stdio");
    assert_ne!(by_id(4)["result"]["isError"], true, "{stdout}");
    assert!(by_id(4)["result"]["content"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("recorded")));
    assert!(
        answers.iter().any(|m| m["error"]["code"] == -32700),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("upstream MCP session initialized"));
    assert!(!stderr.contains("did not finish writing"), "{stderr}");
}

#[test]
fn a_secret_a_process_writes_on_stderr_is_masked_in_the_log() {
    let cwd = std::env::current_dir().unwrap();
    let server = cwd.join("tests/interop/tiny_stdio_server.py");
    let dir = config_dir(&format!(
        "connectors:\n  - name: tiny\n    kind: stdio\n    command: python3\n    args: [\"{}\"]\n    env:\n      TINY_SAY: \"token=${{MCPGATE_TEST_STDERR_SECRET}}\"\n",
        server.display()
    ));
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let env = [
        ("MCPGATE__DATABASE__URL", db.as_str()),
        ("MCPGATE_TEST_STDERR_SECRET", "hunter2-stderr"),
    ];
    let mut child = mcpgate(dir.path(), &["stdio"], &env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"tiny_echo","arguments":{"text":"hi"}}}"#,
    ];
    for line in input {
        std::io::Write::write_all(&mut stdin, format!("{line}\n").as_bytes()).unwrap();
    }
    // The call waits for the first load, so the process has started and spoken by its answer.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut answer = String::new();
    while !answer.contains(r#""id":2"#) {
        answer.clear();
        if std::io::BufRead::read_line(&mut stdout, &mut answer).unwrap() == 0 {
            break;
        }
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tiny server ready token=***"),
        "{answer}{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn stdio_answers_a_line_that_is_not_utf8_or_too_long_with_an_error_and_reads_on() {
    use std::io::Write;
    let dir = config_dir("connectors: []");
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let env = [
        ("MCPGATE__DATABASE__URL", db.as_str()),
        ("MCPGATE__SERVER__MAX_BODY_BYTES", "2000"),
    ];
    let mut child = mcpgate(dir.path(), &["stdio"], &env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    writeln!(stdin, "{initialize}").unwrap();
    stdin.write_all(b"\xff\xfe not UTF-8\n").unwrap();
    writeln!(stdin, "{}", "x".repeat(5000)).unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"ping"}}"#).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let answers = json_lines(&stdout);
    // Answers come as they are ready, not in the order asked.
    let error = |code: i64| answers.iter().find(|a| a["error"]["code"] == code);
    let ping = answers.iter().find(|a| a["id"] == 2);
    assert!(output.status.success(), "{:?}: {stdout}", output.status);
    assert_eq!(answers.len(), 4, "{stdout}");
    assert!(error(-32700).is_some(), "{stdout}");
    let too_long = error(-32600).map(|a| a["error"]["message"].to_string());
    assert!(
        too_long.is_some_and(|m| m.contains("longer than 2000 bytes")),
        "{stdout}"
    );
    assert_eq!(
        ping.map(|p| p["result"].clone()),
        Some(serde_json::json!({})),
        "{stdout}"
    );
}

#[test]
fn stdio_answers_stateless_requests_listens_and_cancels_on_notifications_cancelled() {
    use std::io::Write;
    let (dir, mut child) = stdio_in_front_of_tiny();
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let call = |id: u32, tool: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}},{meta}}}}}"#
        )
    };
    let lines = [
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{meta}}}}}"#),
        r#"{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":3,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"v999","io.modelcontextprotocol/clientCapabilities":{}}}}"#.to_string(),
        format!(r#"{{"jsonrpc":"2.0","id":4,"method":"ping","params":{{{meta}}}}}"#),
        call(5, "tiny_wait"),
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}"#.to_string(),
        call(6, "tiny_cancelled"),
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true}},{meta}}}}}"#),
        call(8, "tiny_grow"),
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#.to_string(),
    ];
    let mut stdin = child.stdin.take().unwrap();
    for line in &lines {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        // The cancellation must reach the backend before the next call asks about it, and a
        // list change the listener before it is cancelled.
        let settle = if line.contains("tiny_grow") {
            1500
        } else {
            300
        };
        std::thread::sleep(Duration::from_millis(settle));
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let answers = json_lines(&stdout);
    let by_id = |id: i64| answer_to(&answers, id);
    assert!(output.status.success());
    assert_eq!(
        by_id(1)["result"]["supportedVersions"],
        serde_json::json!(["2026-07-28"])
    );
    assert_eq!(by_id(2)["error"]["code"], -32602, "{stdout}");
    assert_eq!(by_id(3)["error"]["code"], -32022, "{stdout}");
    assert_eq!(by_id(4)["error"]["code"], -32601, "{stdout}");
    assert!(
        by_id(5).is_null(),
        "a cancelled request is not answered: {stdout}"
    );
    let cancelled = by_id(6)["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let cancelled: serde_json::Value = serde_json::from_str(&cancelled).unwrap_or_default();
    assert_eq!(cancelled.as_array().map(Vec::len), Some(1), "{stdout}");
    let told = |method: &str| {
        answers.iter().any(|m| {
            m["method"] == method
                && m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 7
        })
    };
    assert!(told("notifications/subscriptions/acknowledged"), "{stdout}");
    assert!(told("notifications/tools/list_changed"), "{stdout}");
    assert!(
        by_id(7).is_null(),
        "a listen request is answered by nothing: {stdout}"
    );
    // The process's one client is one principal to the trainer: its calls' records name it.
    let query = "select distinct coalesce(session_id, '') from tool_calls where connector = 'tiny'";
    let named = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys; print([r[0] for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])])"])
        .arg(dir.path().join("s.db"))
        .arg(query)
        .output()
        .unwrap();
    let named = String::from_utf8_lossy(&named.stdout);
    assert!(
        named.starts_with("['principal-") && named.matches(',').count() == 0,
        "{named}"
    );
}
