//! The binary: commands, settings errors that name the key, secrets that never print.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A settings directory: the default settings, and `connectors` as `connectors.yaml`.
pub(crate) fn config_dir(connectors: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("config/default.yaml", dir.path().join("default.yaml")).unwrap();
    std::fs::write(dir.path().join("connectors.yaml"), connectors).unwrap();
    dir
}

/// The `mcpgate` binary with `--config config`, `args` and `env` (and no `RUST_LOG`).
pub(crate) fn mcpgate(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
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
    assert!(String::from_utf8_lossy(&first.stderr).contains("applied 21 migrations"));
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
fn an_unknown_setting_stops_start_up_naming_it_and_its_section() {
    let dir = config_dir("connectors: []");
    // A key renamed since (recorder.keep_feedback_ms), misspelt ones, one in a nested section.
    let cases = [
        (
            "MCPGATE__RECORDER__KEEP_FEEDBACK_MS",
            "keep_feedback_ms",
            "recorder",
        ),
        ("MCPGATE__SERVER__PROT", "prot", "server"),
        ("MCPGATE__TRAINER__LLM__MODLE", "modle", "trainer.llm"),
    ];
    for (variable, field, section) in cases {
        let output = run(dir.path(), &["serve"], &[(variable, "1")]);

        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let named = format!("unknown field `{field}`");
        assert!(stderr.contains(&named), "{stderr}");
        assert!(stderr.contains(&format!("for key `{section}`")), "{stderr}");
    }
    let output = run(
        dir.path(),
        &["serve"],
        &[("MCPGATE__DATABSE__URL", "sqlite://x.db")],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `databse`"), "{stderr}");
}

#[test]
fn a_keep_shorter_than_what_is_read_back_stops_start_up_naming_the_key() {
    let dir = config_dir("connectors: []");
    let cases = [
        (
            "MCPGATE__RECORDER__KEEP_CALLS_MS",
            "3600000",
            "recorder.keep_calls_ms",
        ),
        (
            "MCPGATE__RECORDER__KEEP_SIGNALS_MS",
            "1000",
            "recorder.keep_signals_ms",
        ),
        (
            "MCPGATE__RECORDER__KEEP_RATINGS_MS",
            "3599999",
            "recorder.keep_ratings_ms",
        ),
        (
            "MCPGATE__RECORDER__PRUNE_INTERVAL_MS",
            "0",
            "recorder.prune_interval_ms",
        ),
        // actix-server panics past 512 workers; the settings refuse it first.
        ("MCPGATE__SERVER__WORKERS", "100000", "server.workers"),
        (
            "MCPGATE__TRAINER__CANARY_SHARE",
            "5.0",
            "trainer.canary_share",
        ),
        (
            "MCPGATE__TRAINER__LLM__BASE_URL",
            "notaurl",
            "trainer.llm.base_url",
        ),
        (
            "MCPGATE__TRAINER__LLM__TIMEOUT_MS",
            "0",
            "trainer.llm.timeout_ms",
        ),
        (
            "MCPGATE__FEEDBACK__TOOL_NAME",
            "bad name!",
            "feedback.tool_name",
        ),
        // An empty token would let in a request without one.
        (
            "MCPGATE__SERVER__AUTH__BEARER_TOKENS",
            "real-token,",
            "server.auth.bearer_tokens",
        ),
        ("MCPGATE__ADMIN__TOKENS", "tok-A,,tok-B", "admin.tokens"),
        (
            "MCPGATE__ADMIN__TOKENS",
            "${MCPGATE_TEST_UNSET_TOKEN}",
            "admin.tokens",
        ),
        ("MCPGATE__ADMIN__TOKENS", "two words", "admin.tokens"),
    ];
    for (variable, value, key) in cases {
        let output = run(dir.path(), &["serve"], &[(variable, value)]);

        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("invalid setting `{key}`")),
            "{stderr}"
        );
    }
    let empty_variable = [
        ("MCPGATE__ADMIN__TOKENS", "${MCPGATE_TEST_EMPTY_TOKEN}"),
        ("MCPGATE_TEST_EMPTY_TOKEN", ""),
    ];
    let output = run(dir.path(), &["serve"], &empty_variable);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("entry 1 is empty"), "{stderr}");
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

#[test]
fn stopping_the_gateway_ends_the_process_groups_of_its_stdio_backends() {
    let cwd = std::env::current_dir().unwrap();
    let server = cwd.join("tests/interop/tiny_stdio_server.py");
    let marker = format!("mcpgate-shutdown-{}", uuid::Uuid::new_v4().simple());
    let dir = config_dir(&format!(
        "connectors:\n  - name: tiny\n    kind: stdio\n    command: python3\n    args: [\"{}\", \"--marker\", \"{marker}\"]\n",
        server.display()
    ));
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut child = mcpgate(
        dir.path(),
        &["serve"],
        &[
            ("MCPGATE__DATABASE__URL", db.as_str()),
            ("MCPGATE__SERVER__PORT", "0"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // The command lines that hold the marker: the backend's, and once it has started its
    // grandchild (whose command holds `time.sleep`), the grandchild's. A grandchild forked but
    // not yet started shows the backend's command line: it is not counted as started.
    let marked = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .filter(|c| c.contains(&marker))
            .collect()
    };
    let count = || marked().len();
    let both = || {
        let running = marked();
        running.iter().any(|c| c.contains("time.sleep"))
            && running.iter().any(|c| c.contains("tiny_stdio_server"))
    };
    let started = std::time::Instant::now();
    let mut ready = both();
    while !ready && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
        ready = both();
    }
    if !ready {
        let _ = child.kill();
    }
    assert!(ready, "the backend and its grandchild run: {:?}", marked());

    // SAFETY: sends SIGTERM to the gateway process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    let ended = std::time::Instant::now();
    while count() > 0 && ended.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }

    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(count(), 0, "no process of the backend's group is left");
}

#[test]
fn a_stop_during_a_long_prune_ends_the_process_without_waiting_for_the_whole_backlog() {
    use diesel::{Connection, RunQueryDsl, SqliteConnection};
    let dir = config_dir("connectors: []");
    let path = dir.path().join("s.db");
    let db = format!("sqlite://{}", path.display());
    let env = [
        ("MCPGATE__DATABASE__URL", db.as_str()),
        ("MCPGATE__SERVER__PORT", "0"),
    ];
    assert!(run(dir.path(), &["migrate"], &env).status.success());
    // Call records ten days old, far more than one statement deletes: their prune runs for
    // seconds, and starts before the server listens.
    let backlog = 2_000_000;
    let old_ms = mcpgate::connector::now_ms() - 10 * 86_400_000;
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query(format!(
        "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {backlog}) \
         INSERT INTO tool_calls (connector, tool, started_at_ms, duration_us, outcome) \
         SELECT 'c', 't', {old_ms} + x, 1, 'ok' FROM g"
    ))
    .execute(&mut conn)
    .unwrap();
    let mut child = mcpgate(dir.path(), &["serve"], &env)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = std::io::BufRead::lines(stderr).map_while(Result::ok);
    let listening = lines.by_ref().any(|line| line.contains("starting service"));
    // The server's signal handlers are in place shortly after it starts its service.
    std::thread::sleep(Duration::from_millis(300));

    // SAFETY: sends SIGTERM to the gateway process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let log: Vec<String> = lines.collect();

    assert!(listening && status.success(), "{status:?}: {log:?}");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left = diesel::sql_query("SELECT COUNT(*) AS n FROM tool_calls")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert!(
        left > 0 && left < backlog,
        "{left} of {backlog} left: {log:?}"
    );
}
