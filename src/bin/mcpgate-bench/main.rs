//! `mcpgate-bench`: the MCP-hop benchmark. `run` starts everything it needs on loopback (the
//! fast upstream, then the release gateway in front of it), warms up, measures, and writes
//! `docs/PERFORMANCE.md`; `compare` measures the gateway's calls for two gateway builds in
//! alternating rounds; `upstream` is the fast upstream on its own (`--stdio` for its stdio
//! mode).
//!
//! What `run` measures, in order: B1 (`tools/call` over Streamable HTTP through the gateway's
//! `mcp` connector against the upstream directly), B2 (the same through an `http` connector
//! against the REST call directly), B6 (through a `stdio` connector against the stdio upstream
//! driven directly), B5 (start-up to `/readyz`, binary size, RSS after B1, B2 and B6), B3
//! (`tools/list` of 100 connectors × 50 tools, cold and cached), B4 (10,000 idle sessions per
//! transport: RSS and idle CPU) and B7 (the peer gateways that `scripts/bench-peers-setup`
//! installed, in front of the same upstream, with mcpgate measured again beside each).
//!
//! # Layout
//! - `gateway`: starting the gateway and the upstream, ports, sessions, /proc readings.
//! - `load`: the HTTP load generator. `b6`: the stdio driver.
//! - `b3`, `b4`, `peers` (B7, with `contextforge` and `b7_report`): one benchmark each.
//! - `compare`: two builds side by side.
//! - `report`: the Markdown of B1, B2, B5, B6 and the targets table.
//! - `upstream`, `stdio_upstream`: the fast upstream over HTTP and over stdio.

mod b3;
mod b4;
mod b6;
mod b7_report;
mod compare;
mod contextforge;
mod gateway;
mod load;
mod peers;
mod report;
mod stdio_upstream;
mod upstream;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use gateway::Gateway;

/// The benchmark.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Run the fast upstream on 127.0.0.1:PORT, or on stdin/stdout with --stdio.
    Upstream {
        /// Port.
        #[arg(long, required_unless_present = "stdio")]
        port: Option<u16>,
        /// Serve MCP as newline-delimited JSON-RPC on stdin/stdout instead.
        #[arg(long, conflicts_with = "port")]
        stdio: bool,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Tools the REST side lists.
        #[arg(long, default_value_t = 1)]
        rest_tools: usize,
    },
    /// Run the benchmark and write the report.
    Run {
        /// A short run that checks everything works (not how fast).
        #[arg(long)]
        smoke: bool,
        /// The gateway binary (default: `mcpgate` beside this one).
        #[arg(long)]
        gateway: Option<PathBuf>,
        /// The settings directory whose default.yaml the gateway starts from.
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// Where the Markdown report goes.
        #[arg(long, default_value = "docs/PERFORMANCE.md")]
        out: PathBuf,
        /// Idle sessions per transport for B4 (default: 10,000; 200 with --smoke).
        #[arg(long)]
        sessions: Option<usize>,
    },
    /// Measure the calls through the gateway (B1, B2 and B6) for two gateway builds, in
    /// alternating rounds, and write their comparison.
    Compare {
        /// The build compared with.
        #[arg(long)]
        baseline: PathBuf,
        /// The build measured (default: `mcpgate` beside this one).
        #[arg(long)]
        gateway: Option<PathBuf>,
        /// Rounds; each starts both gateways afresh, in alternating order.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..))]
        rounds: u16,
        /// Short durations (whether it works, not how fast).
        #[arg(long)]
        smoke: bool,
        /// The settings directory whose default.yaml both gateways start from.
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// `database.url` for both gateways, e.g. `postgres://postgres@127.0.0.1/bench` (default:
        /// a SQLite file of its own for each).
        #[arg(long)]
        database: Option<String>,
        /// Where the Markdown report goes (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let outcome = match Cli::parse().command {
        Mode::Upstream { stdio: true, .. } => stdio_upstream::serve().map_err(|e| e.to_string()),
        Mode::Upstream {
            port,
            workers,
            rest_tools,
            ..
        } => {
            let port = port.unwrap_or(0);
            actix_web::rt::System::new()
                .block_on(upstream::serve(port, workers, rest_tools))
                .map_err(|e| e.to_string())
        }
        Mode::Run {
            smoke,
            gateway,
            config,
            out,
            sessions,
        } => {
            let plan = Plan::new(smoke, sessions);
            actix_web::rt::System::new().block_on(run(&plan, gateway, &config, &out))
        }
        Mode::Compare {
            baseline,
            gateway,
            rounds,
            smoke,
            config,
            database,
            out,
        } => {
            let plan = Plan::new(smoke, None);
            actix_web::rt::System::new().block_on(compare(
                &plan,
                baseline,
                gateway,
                database,
                &config,
                out.as_deref(),
                rounds.into(),
            ))
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mcpgate-bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How long and how much a run measures.
pub struct Plan {
    /// Short run.
    pub smoke: bool,
    /// Load before measuring, per scenario.
    pub warmup: Duration,
    /// Measured time, per scenario.
    pub duration: Duration,
    /// Concurrency levels.
    pub levels: Vec<usize>,
    /// B4 sessions per transport.
    pub sessions: usize,
    /// B4 idle window.
    pub idle: Duration,
}

impl Plan {
    fn new(smoke: bool, sessions: Option<usize>) -> Plan {
        match smoke {
            true => Plan {
                smoke,
                warmup: Duration::from_millis(200),
                duration: Duration::from_millis(500),
                levels: vec![1, 4],
                sessions: sessions.unwrap_or(200),
                idle: Duration::from_secs(2),
            },
            false => Plan {
                smoke,
                warmup: Duration::from_secs(2),
                duration: Duration::from_secs(5),
                levels: vec![1, 16, 64],
                sessions: sessions.unwrap_or(10_000),
                // Longer than the 15 s keep-alive interval, so one round of comments is in it.
                idle: Duration::from_secs(20),
            },
        }
    }
}

/// A `tools/call` of `tool`, whose id the load generator makes unique per request (see
/// `load::ID_MARK`).
pub fn call(tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1000000000,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"hi"}}}}}}"#
    )
}

/// The connectors.yaml of the gateway that B1, B2 and B6 call: `up` (mcp) and `rest` (http)
/// in front of the upstream at `upstream_port`, `st` (stdio) spawning `exe upstream --stdio`.
pub fn connectors(exe: &Path, upstream_port: u16) -> String {
    format!(
        "connectors:\n  - name: up\n    kind: mcp\n    url: http://127.0.0.1:{upstream_port}/mcp\n    transport: streamable_http\n  - name: rest\n    kind: http\n    url: http://127.0.0.1:{upstream_port}\n  - name: st\n    kind: stdio\n    command: {}\n    args: [upstream, --stdio]\n",
        serde_json::Value::from(exe.display().to_string())
    )
}

/// `compare`: writes the report to `out`, or to standard output.
async fn compare(
    plan: &Plan,
    baseline: PathBuf,
    candidate: Option<PathBuf>,
    database: Option<String>,
    config: &Path,
    out: Option<&Path>,
    rounds: usize,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let candidate = candidate.unwrap_or_else(|| exe.with_file_name("mcpgate"));
    for binary in [&baseline, &candidate] {
        if !binary.is_file() {
            return Err(format!("no gateway binary at {}", binary.display()));
        }
    }
    let builds = compare::Builds {
        baseline,
        candidate,
        database,
    };
    let text = compare::run(plan, &exe, config, &builds, rounds).await?;
    match out {
        Some(out) => write_report(out, &text),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Writes a report to `out`, making its directory if need be, and says where.
fn write_report(out: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("report written to {}", out.display());
    Ok(())
}

async fn run(
    plan: &Plan,
    gateway_binary: Option<PathBuf>,
    config: &Path,
    out: &Path,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let gateway_binary = gateway_binary.unwrap_or_else(|| exe.with_file_name("mcpgate"));
    let open_files = gateway::raise_open_files(2 * plan.sessions as u64 + 4096)?;
    let start = report::Readings::now();
    let (upstream, upstream_port) = gateway::upstream(&exe, 1).await?;

    let connectors = connectors(&exe, upstream_port);
    let gateway = Gateway::spawn(&gateway_binary, config, "main", &connectors, &[])?;
    let port = gateway.port;
    gateway::wait_for(port, "/readyz", Duration::from_secs(30)).await?;
    let ready_after = gateway.spawned.elapsed();
    let session = gateway::session(port).await?;

    let mut rows = Vec::new();
    let scenarios: [(&str, &str, u16, Vec<u8>); 5] = [
        (
            "B1",
            "upstream directly (MCP, Streamable HTTP)",
            upstream_port,
            load::request("/mcp", upstream_port, &call("echo"), None),
        ),
        (
            "B1",
            "through mcpgate (`mcp` connector)",
            port,
            load::request("/mcp", port, &call("up_echo"), Some(&session)),
        ),
        (
            "B2",
            "upstream directly (REST execute)",
            upstream_port,
            load::request(
                "/tools/echo/execute",
                upstream_port,
                r#"{"arguments":{"text":"hi"}}"#,
                None,
            ),
        ),
        (
            "B2",
            "through mcpgate (`http` connector)",
            port,
            load::request("/mcp", port, &call("rest_echo"), Some(&session)),
        ),
        (
            "B6",
            "through mcpgate (`stdio` connector)",
            port,
            load::request("/mcp", port, &call("st_echo"), Some(&session)),
        ),
    ];
    for (bench, what, port, request) in scenarios {
        if bench == "B6" {
            for &concurrency in &plan.levels {
                let measured = b6::direct(&exe, concurrency, plan.warmup, plan.duration).await?;
                eprintln!("B6 stdio upstream directly c={concurrency}: {measured:?}");
                rows.push(report::Row::new(
                    "B6",
                    "upstream directly over stdio (driven by the bench)",
                    concurrency,
                    measured,
                ));
            }
        }
        for &concurrency in &plan.levels {
            let measured = load::run(
                port,
                request.clone(),
                concurrency,
                plan.warmup,
                plan.duration,
            )
            .await;
            eprintln!("{bench} {what} c={concurrency}: {measured:?}");
            rows.push(report::Row::new(bench, what, concurrency, measured));
        }
    }
    let rss_kb = gateway::rss_kb(gateway.pid());
    let binary_bytes = std::fs::metadata(&gateway_binary)
        .map(|m| m.len())
        .unwrap_or(0);
    drop(gateway);

    let (connectors, per_connector) = if plan.smoke { (10, 50) } else { (100, 50) };
    let b3 = b3::run(
        &exe,
        &gateway_binary,
        config,
        connectors,
        per_connector,
        plan.warmup,
        plan.duration,
    )
    .await?;
    eprintln!("B3: {b3:?}");

    if open_files < plan.sessions as u64 + 1024 {
        return Err(format!(
            "B4 needs {} open files per process and only {open_files} are allowed (raise the \
             hard limit, or pass a smaller --sessions)",
            plan.sessions + 1024
        ));
    }
    let b4 = b4::run(
        &gateway_binary,
        config,
        upstream_port,
        plan.sessions,
        plan.idle,
    )
    .await?;

    let b7 = peers::run(plan, &exe, &gateway_binary, config, upstream_port).await?;

    let mut targets = b4::targets(&b4);
    targets.extend(report::b6_targets(&rows));
    targets.extend(b7_report::targets(&b7, &rows));
    drop(upstream);
    let others = report::Others::since(&start);
    let mut text = report::markdown(
        &rows,
        plan.smoke,
        &report::B5 {
            ready: ready_after,
            rss_kb,
            binary_bytes,
        },
        &targets,
        &others,
    );
    text.push_str(&report::b3(&b3));
    text.push_str(&b4::section(&b4));
    text.push_str(&b7_report::section(&b7, &rows));
    write_report(out, &text)
}
