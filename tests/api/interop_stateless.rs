//! The Python SDK's `Client` as a client of the stateless revision (2026-07-28), over HTTP and
//! over `mcpgate stdio`, in front of the tiny stdio server.

use std::process::Command;

use serde_json::Value;

use crate::helpers::spawn_app;
use crate::interop::{output, tools};

/// Runs `tests/interop/python_stateless_client.py` with `target` and checks what it saw.
async fn python_stateless_client(python: &str, target: &[&str], env: &[(&str, &str)]) {
    let mut command = Command::new(python);
    command
        .arg("tests/interop/python_stateless_client.py")
        .args(target)
        .envs(env.iter().copied());

    let out = output(command).await;

    assert!(
        out.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(seen["protocol_version"], "2026-07-28", "{seen}");
    assert_eq!(seen["server_name"], "mcpgate");
    assert!(seen["tools"]
        .as_array()
        .unwrap()
        .contains(&"tiny_echo".into()));
    assert_eq!(seen["echo"], "stateless hello");
    assert_eq!(seen["progress"], serde_json::json!([1.0, 2.0, 3.0]));
    assert_eq!(seen["progress_text"], "done");
    assert_eq!(seen["sampled"], serde_json::json!(["hi"]));
    assert_eq!(seen["asked"], "sampled: from the python client");
}

#[actix_web::test]
async fn the_python_sdk_speaks_the_stateless_revision_and_answers_an_input_request() {
    let Some((python, _, _)) = tools() else {
        return;
    };
    let app = spawn_app(vec![crate::backends::tiny(
        "tiny",
        &crate::backends::marker(),
    )])
    .await;

    python_stateless_client(&python, &[&format!("{}/mcp", app.address)], &[]).await;
}

#[actix_web::test]
async fn the_python_sdk_speaks_the_stateless_revision_to_mcpgate_stdio() {
    let Some((python, _, _)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("config/default.yaml", dir.path().join("default.yaml")).unwrap();
    let server = std::env::current_dir()
        .unwrap()
        .join("tests/interop/tiny_stdio_server.py");
    let connectors = format!(
        "connectors:\n  - name: tiny\n    kind: stdio\n    command: python3\n    args: [\"{}\"]\n",
        server.display()
    );
    std::fs::write(dir.path().join("connectors.yaml"), connectors).unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let config = dir.path().display().to_string();
    let gateway = env!("CARGO_BIN_EXE_mcpgate");

    python_stateless_client(
        &python,
        &["--stdio", gateway, "--config", &config, "stdio"],
        &[("MCPGATE__DATABASE__URL", &db)],
    )
    .await;
}
