//! The Markdown report: every measurement with its ratio to the direct call, and how to
//! reproduce it.

use std::fmt::Write;
use std::time::Duration;

use crate::load::Measured;

/// One measurement.
pub struct Row {
    /// `B1`, `B2`, …
    pub bench: &'static str,
    /// What was called.
    pub what: String,
    /// Connections at once.
    pub concurrency: usize,
    /// The figures.
    pub measured: Measured,
}

/// The report.
pub fn markdown(
    rows: &[Row],
    smoke: bool,
    ready: Duration,
    rss_kb: u64,
    binary_bytes: u64,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# mcpgate performance\n");
    if smoke {
        let _ = writeln!(
            text,
            "**Smoke run: short durations, figures not meaningful.**\n"
        );
    }
    let _ = writeln!(
        text,
        "Measured on this machine (2 cores shared by the load generator, the gateway and the \
         upstream), all on loopback, side by side in one run of:\n\n```sh\ncargo build --release \
         && target/release/mcpgate-bench run\n```\n\nThe load generator is `mcpgate-bench`'s own: \
         keep-alive HTTP/1.1 connections on one thread, each sending its next request as soon as \
         the answer is read. Its CPU column is its own CPU time over wall time (1.00 = one core), to \
         show whether it is the bottleneck. The upstream is `mcpgate-bench upstream` (actix-web, one \
         worker): MCP over Streamable HTTP with JSON answers, and the REST connector contract.\n"
    );
    let _ = writeln!(
        text,
        "| bench | call | concurrency | requests/s | p50 ms | p99 ms | errors | generator CPU | vs direct |"
    );
    let _ = writeln!(
        text,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for row in rows {
        let direct = rows.iter().find(|r| {
            r.bench == row.bench && r.concurrency == row.concurrency && r.what.contains("directly")
        });
        let ratio = match direct {
            Some(d) if !row.what.contains("directly") && d.measured.rps > 0.0 => {
                format!("{:.2}×", row.measured.rps / d.measured.rps)
            }
            _ => "—".into(),
        };
        let m = &row.measured;
        let _ = writeln!(
            text,
            "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {} | {:.2} | {} |",
            row.bench,
            row.what,
            row.concurrency,
            m.rps,
            m.p50_ms,
            m.p99_ms,
            m.errors,
            m.generator_cpu,
            ratio
        );
    }
    let added = |bench: &str| {
        let at = |direct: bool| {
            rows.iter()
                .find(|r| {
                    r.bench == bench && r.concurrency == 1 && r.what.contains("directly") == direct
                })
                .map(|r| r.measured.p50_ms)
        };
        match (at(true), at(false)) {
            (Some(d), Some(g)) => format!("{:.3} ms", g - d),
            _ => "—".into(),
        }
    };
    let _ = writeln!(
        text,
        "\nLatency the gateway adds to p50 at concurrency 1: B1 {}, B2 {}.\n",
        added("B1"),
        added("B2")
    );
    let _ = writeln!(
        text,
        "B5 (partial): start-up to `/readyz` with the SQLite default {:.0} ms (process spawn \
         included); release binary {:.1} MiB; gateway RSS after B1 and B2 {:.1} MiB.\n",
        ready.as_secs_f64() * 1000.0,
        binary_bytes as f64 / 1_048_576.0,
        rss_kb as f64 / 1024.0
    );
    let _ = writeln!(
        text,
        "Not measured yet: B3 (`tools/list` of 100 connectors × 50 tools), B4 (10,000 idle \
         sessions), B6 (stdio backend), B7 (peers), and the profile-driven changes."
    );
    text
}
