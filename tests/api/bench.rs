//! A smoke run of the benchmark: it starts the upstream and the gateway, measures every
//! scenario briefly and writes a report (whether it works, not how fast).

use std::process::Command;

#[test]
fn the_benchmark_runs_end_to_end_and_writes_its_report() {
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("PERFORMANCE.md");

    let status = Command::new(env!("CARGO_BIN_EXE_mcpgate-bench"))
        .args([
            "run",
            "--smoke",
            "--gateway",
            env!("CARGO_BIN_EXE_mcpgate"),
            "--out",
        ])
        .arg(&report)
        .status()
        .unwrap();

    assert!(status.success());
    let text = std::fs::read_to_string(&report).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| B1 |") || l.starts_with("| B2 |"))
        .collect();
    assert_eq!(rows.len(), 8, "{text}");
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let rps: f64 = cells[4].parse().unwrap();
        assert!(rps > 0.0, "{row}");
        assert_eq!(cells[7], "0", "no errors: {row}");
    }
    assert!(text.contains("Latency the gateway adds to p50"));
    assert!(text.contains("## Against the targets"));
    assert!(text.contains("## B3"));
}
