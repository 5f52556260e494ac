//! The binary: commands, settings errors that name the key, secrets that never print.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn config_dir(connectors: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("config/default.yaml", dir.path().join("default.yaml")).unwrap();
    std::fs::write(dir.path().join("connectors.yaml"), connectors).unwrap();
    dir
}

fn mcpgate(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    command.arg("--config").arg(config).args(args);
    command.env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    mcpgate(config, args, env).output().unwrap()
}

#[test]
fn version_and_help_describe_the_commands() {
    let dir = config_dir("connectors: []");

    let version = run(dir.path(), &["--version"], &[]);
    let help = run(dir.path(), &["--help"], &[]);

    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "mcpgate 0.1.0"
    );
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("serve") && help.contains("migrate") && help.contains("--config"));
}

#[test]
fn migrate_applies_the_migrations_once() {
    let dir = config_dir("connectors: []");
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let env = [("MCPGATE__DATABASE__URL", db.as_str())];

    let first = run(dir.path(), &["migrate"], &env);
    let second = run(dir.path(), &["migrate"], &env);

    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("applied 3 migrations"));
    assert!(String::from_utf8_lossy(&second.stderr).contains("applied 0 migrations"));
}

#[test]
fn an_invalid_connector_stops_start_up_naming_the_key() {
    let dir = config_dir("connectors:\n  - name: bad\n    url: ftp://nowhere\n");

    let output = run(dir.path(), &["serve"], &[]);

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connectors[0].url"), "{stderr}");
}

#[test]
fn a_value_of_the_wrong_type_stops_start_up_naming_the_key() {
    let dir = config_dir("connectors: []");

    let output = run(
        dir.path(),
        &["serve"],
        &[("MCPGATE__SERVER__PORT", "eighty")],
    );

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.port"), "{stderr}");
}

#[test]
fn a_missing_secret_variable_is_named_without_any_value() {
    let dir = config_dir(
        "connectors:\n  - name: gh\n    url: http://127.0.0.1:9\n    headers:\n      Authorization: \"Bearer ${MCPGATE_TEST_UNSET_SECRET}\"\n",
    );
    let db = format!("sqlite://{}", dir.path().join("s.db").display());

    let output = run(
        dir.path(),
        &["serve"],
        &[("MCPGATE__DATABASE__URL", db.as_str())],
    );

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MCPGATE_TEST_UNSET_SECRET") && stderr.contains("Authorization"));
}

#[test]
fn a_header_secret_never_reaches_the_log_even_at_trace_level() {
    let dir = config_dir(
        "connectors:\n  - name: gh\n    url: http://127.0.0.1:9\n    timeout_ms: 200\n    health_check_interval_ms: 100\n    headers:\n      X-Key: \"${MCPGATE_TEST_HEADER_SECRET}\"\n    auth:\n      type: bearer\n      token: \"${MCPGATE_TEST_HEADER_SECRET}\"\n",
    );
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let secret = "s3cr3t-value-that-must-not-print";
    let mut child = mcpgate(
        dir.path(),
        &["serve"],
        &[
            ("MCPGATE__DATABASE__URL", db.as_str()),
            ("MCPGATE__SERVER__PORT", "0"),
            ("MCPGATE_TEST_HEADER_SECRET", secret),
            ("RUST_LOG", "trace"),
        ],
    )
    .stderr(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();

    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connector `gh` is unreachable"), "{stderr}");
    assert!(!stderr.contains(secret));
    assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));
}
