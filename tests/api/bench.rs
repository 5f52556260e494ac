//! A smoke run of the benchmark: it starts the upstream and the gateway, measures every
//! scenario briefly (B4 with 200 sessions, B7 with the peers that happen to be installed) and
//! writes a report (whether it works, not how fast).

use std::process::Command;

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::helpers::{StoreKind, TestDatabase};

/// Runs `mcpgate-bench` with `args` and `--out` a new file, checks that it succeeded, and gives
/// the report it wrote.
fn report_of(args: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.md");
    let status = Command::new(env!("CARGO_BIN_EXE_mcpgate-bench"))
        .args(args)
        .arg("--out")
        .arg(&report)
        .status()
        .unwrap();
    assert!(status.success(), "mcpgate-bench {args:?}");
    std::fs::read_to_string(&report).unwrap()
}

#[test]
fn the_benchmark_runs_end_to_end_and_writes_its_report() {
    let text = report_of(&["run", "--smoke", "--gateway", env!("CARGO_BIN_EXE_mcpgate")]);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["| B1 |", "| B2 |", "| B6 |"]
                .iter()
                .any(|b| l.starts_with(b))
        })
        .collect();
    assert_eq!(rows.len(), 12, "{text}");
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let rps: f64 = cells[4].parse().unwrap();
        assert!(rps > 0.0, "{row}");
        assert_eq!(cells[7], "0", "no errors: {row}");
    }
    assert!(text.contains("Latency the gateway adds to p50"));
    assert!(text.contains("## Against the targets"));
    assert!(text.contains("## B3"));
    assert!(text.contains("## B5"));
    let b4: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| legacy SSE |") || l.starts_with("| Streamable HTTP |"))
        .collect();
    assert_eq!(b4.len(), 2, "one B4 row per transport: {text}");
    for row in b4 {
        assert!(
            row.contains(" 200 of 200 "),
            "every idle session opened: {row}"
        );
    }
    // B7 measures mcpgate always, and the peers only where scripts/bench-peers-setup ran (how
    // fast or reliable a peer is is not this test's business).
    assert!(text.contains("## B7"));
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| mcpgate (`"))
        .collect();
    assert_eq!(ours.len(), 4, "mcpgate in front of both upstreams: {text}");
    for row in ours {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let rps: f64 = cells[4].parse().unwrap();
        assert!(rps > 0.0, "{row}");
        assert_eq!(cells[7], "0", "no errors: {row}");
    }
}

/// `compare` with the same build on both sides: every call at every level for both, no errors,
/// and a ratio per row.
#[test]
fn the_comparison_measures_both_builds_and_writes_its_table() {
    let text = report_of(&[
        "compare",
        "--smoke",
        "--rounds",
        "2",
        "--baseline",
        env!("CARGO_BIN_EXE_mcpgate"),
        "--gateway",
        env!("CARGO_BIN_EXE_mcpgate"),
    ]);
    assert!(text.contains("2 rounds"), "{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("| B"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    // Three calls (B1, B2, B6) at the smoke run's two levels.
    assert_eq!(rows.len(), 6, "{text}");
    for cells in rows {
        for (column, cell) in [(3, cells[3]), (4, cells[4]), (5, cells[5])] {
            let figure: f64 = cell.parse().unwrap_or_else(|_| panic!("{cells:?}"));
            assert!(figure > 0.0, "column {column}: {cells:?}");
        }
        assert!(
            cells[6].contains('–'),
            "a range of per-round ratios: {cells:?}"
        );
        assert_eq!(cells[9], "0", "no errors: {cells:?}");
    }
}

/// `compare --database`: both gateways store their calls in that database, and the report
/// names no password.
#[test]
fn the_comparison_runs_both_builds_on_the_database_it_is_given() {
    let db = TestDatabase::create(StoreKind::Postgres);
    let mut url = url::Url::parse(db.url()).unwrap();
    if url.password().is_none() {
        // Trust authentication ignores it; the report must not show it all the same.
        url.set_password(Some("s3cret-bench")).unwrap();
    }
    let password = url.password().unwrap().to_string();
    let text = report_of(&[
        "compare",
        "--smoke",
        "--rounds",
        "1",
        "--baseline",
        env!("CARGO_BIN_EXE_mcpgate"),
        "--gateway",
        env!("CARGO_BIN_EXE_mcpgate"),
        "--database",
        url.as_str(),
    ]);

    assert!(
        text.contains("- store: the database given by `--database`"),
        "{text}"
    );
    assert!(!text.contains(&password), "{text}");
    let mut conn = PgConnection::establish(db.url()).unwrap();
    let calls = diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM tool_calls")
        .get_result::<i64>(&mut conn)
        .unwrap();
    assert!(calls > 0, "the gateways recorded their calls there");
}

#[test]
fn the_comparison_names_a_missing_build_and_a_round_count_of_zero() {
    let missing = Command::new(env!("CARGO_BIN_EXE_mcpgate-bench"))
        .args(["compare", "--smoke", "--baseline", "/nonexistent/mcpgate"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no gateway binary at /nonexistent/mcpgate"),
        "{stderr}"
    );

    let zero = Command::new(env!("CARGO_BIN_EXE_mcpgate-bench"))
        .args(["compare", "--rounds", "0", "--baseline"])
        .arg(env!("CARGO_BIN_EXE_mcpgate"))
        .output()
        .unwrap();
    assert!(!zero.status.success());
    let stderr = String::from_utf8_lossy(&zero.stderr);
    assert!(stderr.contains("--rounds"), "{stderr}");
}
