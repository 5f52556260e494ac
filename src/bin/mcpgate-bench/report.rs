//! The Markdown report: every measurement with its ratio to the direct call, and how to
//! reproduce it.

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::gateway;
use crate::load::Measured;

/// One measurement.
#[derive(Clone)]
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

impl Row {
    /// A row of `bench`.
    pub fn new(bench: &'static str, what: &str, concurrency: usize, measured: Measured) -> Row {
        Row {
            bench,
            what: what.to_string(),
            concurrency,
            measured,
        }
    }
}

/// B5's figures.
pub struct B5 {
    /// From spawning the gateway to its first 200 on `/readyz`.
    pub ready: Duration,
    /// Its RSS after B1, B2 and B6, KiB.
    pub rss_kb: u64,
    /// Size of the gateway binary.
    pub binary_bytes: u64,
}

/// A line of the targets table: the target, this run's figure, and whether it is met (`None`:
/// no target is set, the figure is for information).
pub type Target = (String, String, Option<bool>);

/// CPU time spent on the machine during the run, to tell how much else was running.
pub struct Others {
    /// The run's wall time.
    pub wall: Duration,
    /// CPU seconds the machine was busy (all cores).
    pub machine: Option<f64>,
    /// CPU seconds of the benchmark's own process tree.
    pub own: Option<f64>,
}

/// The counters [`Others`] is measured from, read when a run starts.
pub struct Readings {
    at: Instant,
    machine: Option<f64>,
    own: Option<f64>,
}

impl Readings {
    /// The counters now.
    pub fn now() -> Readings {
        Readings {
            at: Instant::now(),
            machine: gateway::machine_busy_seconds(),
            own: gateway::own_tree_seconds(),
        }
    }
}

impl Others {
    /// What was used since `start`.
    pub fn since(start: &Readings) -> Others {
        Others {
            wall: start.at.elapsed(),
            machine: gateway::machine_busy_seconds()
                .zip(start.machine)
                .map(|(a, b)| a - b),
            own: gateway::own_tree_seconds()
                .zip(start.own)
                .map(|(a, b)| a - b),
        }
    }

    /// The sentence for the report.
    pub fn sentence(&self) -> String {
        let wall = self.wall.as_secs_f64();
        match (self.machine, self.own) {
            (Some(machine), Some(own)) => format!(
                "Other load during this run: over its {wall:.0} s the machine's cores were busy \
                 for {machine:.1} CPU-seconds (/proc/stat), of which the benchmark's own processes \
                 (generator, upstreams, gateways, any peers, and the children they reaped; \
                 /proc/self/stat) used {own:.1}; the difference, {:.1} CPU-seconds ({:.0}% of one \
                 core on average), is what other processes used. The two counters are sampled \
                 differently, so a few percent of the total either way is noise; the stdio \
                 servers that peers run are killed with them, not reaped, and count as other.\n",
                machine - own,
                (machine - own) / wall.max(f64::MIN_POSITIVE) * 100.0
            ),
            _ => "Other load during this run: /proc could not be read.\n".to_string(),
        }
    }
}

/// The report: the B1/B2/B6 table, B5, and the targets (B1, B5, then `more`).
pub fn markdown(rows: &[Row], smoke: bool, b5: &B5, more: &[Target], others: &Others) -> String {
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
         upstream), all on loopback, side by side in one run of:\n\n```sh\n{}\n```\n\n(the \
         benchmark's command line as it was run; `eval \"$(scripts/bench-peers-setup)\"` \
         beforehand installs the B7 peers and tells the benchmark where they are). The load \
         generator is `mcpgate-bench`'s own: keep-alive HTTP/1.1 connections on one thread, each \
         sending its next request as soon as the answer is read, every request with its own \
         JSON-RPC id. Its CPU column is its own CPU time over wall time (1.00 = one core), to \
         show whether it is the bottleneck. The upstream is `mcpgate-bench upstream` (actix-web, \
         one worker): MCP over Streamable HTTP with JSON answers, and the REST connector \
         contract; `mcpgate-bench upstream --stdio` is the same MCP server on stdin/stdout (one \
         thread), which B6 drives directly with its requests pipelined and matched by id.\n\n{}",
        command_line(),
        others.sentence()
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
        "\nLatency the gateway adds to p50 at concurrency 1: B1 {}, B2 {}, B6 {}.\n",
        added("B1"),
        added("B2"),
        added("B6")
    );
    let _ = writeln!(
        text,
        "## B5\n\n| measure | figure |\n| --- | --- |\n\
         | start-up to `/readyz`, SQLite default, connectors `up` (mcp), `rest` (http) and `st` \
         (stdio), process spawn included | {:.0} ms |\n\
         | release binary size | {} bytes ({:.1} MiB) |\n\
         | gateway RSS after B1, B2 and B6 | {} KiB ({:.1} MiB) |\n",
        b5.ready.as_secs_f64() * 1000.0,
        b5.binary_bytes,
        b5.binary_bytes as f64 / 1_048_576.0,
        b5.rss_kb,
        b5.rss_kb as f64 / 1024.0
    );
    let _ = writeln!(text, "{}", targets(rows, b5, more));
    let _ = writeln!(
        text,
        "Profiles and what they say: docs/PERFORMANCE-profile.md."
    );
    text
}

/// This process's command line, as it was run, with any password in a URL (`--database`)
/// shown as `***`.
pub fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, arg)| match i {
            0 => arg
                .rsplit_once("/target/")
                .map_or(arg.clone(), |(_, tail)| format!("target/{tail}")),
            _ => without_password(arg),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` with the password of a URL in it replaced by `***`.
fn without_password(arg: String) -> String {
    let (flag, value) = match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (format!("{flag}="), value),
        _ => (String::new(), arg.as_str()),
    };
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            format!("{flag}{url}")
        }
        _ => arg,
    }
}

/// B6's lines of the targets table: no target is set for B6, so they are for information.
pub fn b6_targets(rows: &[Row]) -> Vec<Target> {
    let find = |direct: bool, concurrency: usize| {
        rows.iter().find(|r| {
            r.bench == "B6" && r.concurrency == concurrency && r.what.contains("directly") == direct
        })
    };
    let mut lines = Vec::new();
    if let (Some(d), Some(g)) = (find(true, 1), find(false, 1)) {
        lines.push((
            "B6 (no target set): p50 added at concurrency 1".to_string(),
            format!("{:.3} ms", g.measured.p50_ms - d.measured.p50_ms),
            None,
        ));
    }
    let top = rows.iter().map(|r| r.concurrency).max().unwrap_or(1);
    if let (Some(d), Some(g)) = (find(true, top), find(false, top)) {
        lines.push((
            format!("B6 (no target set): share of direct throughput at concurrency {top}"),
            format!("{:.2}×", g.measured.rps / d.measured.rps.max(1.0)),
            None,
        ));
    }
    lines
}

/// The B1 and B5 targets against this run's figures, then `more`.
fn targets(rows: &[Row], b5: &B5, more: &[Target]) -> String {
    let find = |direct: bool, concurrency: usize| {
        rows.iter().find(|r| {
            r.bench == "B1" && r.concurrency == concurrency && r.what.contains("directly") == direct
        })
    };
    let mut out = String::from(
        "## Against the targets (this run)\n\n| target | figure | met |\n| --- | --- | --- |\n",
    );
    let mut line = |target: &str, figure: String, met: Option<bool>| {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "—",
        };
        let _ = writeln!(out, "| {target} | {figure} | {met} |");
    };
    let top = rows.iter().map(|r| r.concurrency).max().unwrap_or(1);
    if let Some(d) = find(true, top) {
        line(
            &format!("upstream directly ≥ 50,000 `tools/call`/s at concurrency {top}"),
            format!("{:.0}/s", d.measured.rps),
            Some(d.measured.rps >= 50_000.0),
        );
    }
    if let (Some(d), Some(g)) = (find(true, 1), find(false, 1)) {
        let added = g.measured.p50_ms - d.measured.p50_ms;
        line(
            "B1: adds ≤ 0.1 ms to p50 at concurrency 1",
            format!("adds {added:.3} ms"),
            Some(added <= 0.1),
        );
    }
    if let (Some(d), Some(g)) = (find(true, top), find(false, top)) {
        let share = g.measured.rps / d.measured.rps.max(1.0);
        line(
            &format!("B1: ≥ 0.35× direct throughput at concurrency {top}"),
            format!("{share:.2}×"),
            Some(share >= 0.35),
        );
        line(
            &format!("B1: p99 ≤ 5 ms at concurrency {top}"),
            format!("{:.3} ms", g.measured.p99_ms),
            Some(g.measured.p99_ms <= 5.0),
        );
    }
    let ready_ms = b5.ready.as_secs_f64() * 1000.0;
    line(
        "B5: ready in ≤ 100 ms",
        format!("{ready_ms:.0} ms"),
        Some(ready_ms <= 100.0),
    );
    line(
        "B5: RSS after B1 ≤ 40 MB (40,000,000 bytes)",
        format!(
            "{:.1} MiB ({} bytes)",
            b5.rss_kb as f64 / 1024.0,
            b5.rss_kb * 1024
        ),
        Some(b5.rss_kb * 1024 <= 40_000_000),
    );
    for (target, figure, met) in more {
        line(target, figure.clone(), *met);
    }
    out
}

/// B3's figures.
#[derive(Debug)]
pub struct B3 {
    /// Connectors behind the gateway.
    pub connectors: usize,
    /// Tools in all.
    pub tools: usize,
    /// From spawning the gateway to its first `/healthz` answer.
    pub alive: Duration,
    /// From spawning it to `/readyz` (every connector's first load done).
    pub ready: Duration,
    /// `tools/list` of every tool in one page, from the cache, concurrency 1.
    pub cached: Measured,
}

/// B3's section of the report.
pub fn b3(b3: &B3) -> String {
    format!(
        "\n## B3: `tools/list` of {} connectors × {} tools ({} tools, one page)\n\n\
         | measure | figure |\n| --- | --- |\n\
         | cached `tools/list`, concurrency 1: requests/s | {:.0} |\n\
         | cached `tools/list`: p50 / p99 | {:.3} ms / {:.3} ms |\n\
         | cold: process answering `/healthz` after spawn | {:.0} ms |\n\
         | cold: `/readyz` (all {} first loads done) after spawn | {:.0} ms |\n\
         | cold fan-out (`/readyz` − `/healthz`) | {:.0} ms |\n\n\
         Target: cached `tools/list` of 5,000 tools ≤ 2 ms p50 ({}).\n",
        b3.connectors,
        b3.tools / b3.connectors.max(1),
        b3.tools,
        b3.cached.rps,
        b3.cached.p50_ms,
        b3.cached.p99_ms,
        b3.alive.as_secs_f64() * 1000.0,
        b3.connectors,
        b3.ready.as_secs_f64() * 1000.0,
        (b3.ready.saturating_sub(b3.alive)).as_secs_f64() * 1000.0,
        if b3.cached.p50_ms <= 2.0 {
            "met"
        } else {
            "not met"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_password_in_a_url_is_not_shown() {
        let shown = |arg: &str| without_password(arg.to_string());
        assert_eq!(
            shown("postgres://bench:s3cret@127.0.0.1/bench"),
            "postgres://bench:***@127.0.0.1/bench"
        );
        assert_eq!(
            shown("--database=postgres://bench:s3cret@db/bench"),
            "--database=postgres://bench:***@db/bench"
        );
        for kept in [
            "postgres://postgres@127.0.0.1/bench",
            "--rounds",
            "6",
            "/tmp/a=b",
        ] {
            assert_eq!(shown(kept), kept);
        }
    }
}
