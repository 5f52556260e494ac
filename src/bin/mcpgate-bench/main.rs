//! `mcpgate-bench`: the MCP-hop benchmark. `run` starts everything it needs on loopback (the
//! fast upstream, then the release gateway in front of it), warms up, measures, and writes
//! `docs/PERFORMANCE.md`; `upstream` is the fast upstream on its own.
//!
//! Measured so far: B1 (`tools/call` over Streamable HTTP through the gateway's `mcp` connector
//! against the upstream directly), B2 (the same through an `http` connector against the REST
//! call directly), B3 (`tools/list` of 100 connectors × 50 tools, cold and cached), and from B5
//! the start-up time to `/readyz`, the binary size and the RSS after B1. B4, B6 and B7 are not
//! built yet.

mod load;
mod report;
mod upstream;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// The benchmark.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Run the fast upstream on 127.0.0.1:PORT.
    Upstream {
        /// Port.
        #[arg(long)]
        port: u16,
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
    },
}

/// A child process ended when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Mode::Upstream {
            port,
            workers,
            rest_tools,
        } => {
            let served =
                actix_web::rt::System::new().block_on(upstream::serve(port, workers, rest_tools));
            match served {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("upstream: {err}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Mode::Run {
            smoke,
            gateway,
            config,
            out,
        } => match actix_web::rt::System::new().block_on(run(smoke, gateway, &config, &out)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("bench: {err}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

async fn wait_for(port: u16, path: &str, deadline: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n").into_bytes();
    while start.elapsed() < deadline {
        if let Some((200, _)) = load::exchange(port, &request).await {
            return Ok(start.elapsed());
        }
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
    Err(format!(
        "nothing answered 200 on {path} at port {port} within {deadline:?}"
    ))
}

async fn run(
    smoke: bool,
    gateway: Option<PathBuf>,
    config: &Path,
    out: &Path,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let gateway = gateway.unwrap_or_else(|| exe.with_file_name("mcpgate"));
    let (warmup, duration, levels) = match smoke {
        true => (
            Duration::from_millis(200),
            Duration::from_millis(500),
            vec![1, 4],
        ),
        false => (
            Duration::from_secs(2),
            Duration::from_secs(5),
            vec![1, 16, 64],
        ),
    };

    let upstream_port = free_port()?;
    let _upstream = Guard(
        Command::new(&exe)
            .args(["upstream", "--port", &upstream_port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the upstream: {e}"))?,
    );
    wait_for(upstream_port, "/info", Duration::from_secs(10)).await?;

    let dir = std::env::temp_dir().join(format!("mcpgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(config.join("default.yaml"), dir.join("default.yaml"))
        .map_err(|e| format!("cannot read {}: {e}", config.join("default.yaml").display()))?;
    std::fs::write(
        dir.join("connectors.yaml"),
        format!(
            "connectors:\n  - name: up\n    kind: mcp\n    url: http://127.0.0.1:{upstream_port}/mcp\n    transport: streamable_http\n  - name: rest\n    kind: http\n    url: http://127.0.0.1:{upstream_port}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let gateway_port = free_port()?;
    let started = Instant::now();
    let gateway_process = Guard(
        Command::new(&gateway)
            .arg("--config")
            .arg(&dir)
            .arg("serve")
            .env("MCPGATE__SERVER__PORT", gateway_port.to_string())
            .env(
                "MCPGATE__DATABASE__URL",
                format!("sqlite://{}", dir.join("bench.db").display()),
            )
            .env("MCPGATE__FEEDBACK__TOOL_NAME", "")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", gateway.display()))?,
    );
    wait_for(gateway_port, "/readyz", Duration::from_secs(30)).await?;
    let ready_after = started.elapsed();

    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    let (status, head) = load::exchange(
        gateway_port,
        &load::request("/mcp", gateway_port, init, None),
    )
    .await
    .ok_or("the gateway did not answer initialize")?;
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: ").map(str::to_string))
        .ok_or(format!(
            "no session id in the initialize answer (HTTP {status})"
        ))?;
    let call = |tool: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"hi"}}}}}}"#
        )
    };

    let mut rows = Vec::new();
    let scenarios: [(&str, &str, u16, Vec<u8>); 4] = [
        (
            "B1",
            "upstream directly (MCP, Streamable HTTP)",
            upstream_port,
            load::request("/mcp", upstream_port, &call("echo"), None),
        ),
        (
            "B1",
            "through mcpgate (`mcp` connector)",
            gateway_port,
            load::request("/mcp", gateway_port, &call("up_echo"), Some(&session)),
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
            gateway_port,
            load::request("/mcp", gateway_port, &call("rest_echo"), Some(&session)),
        ),
    ];
    for (bench, what, port, request) in scenarios {
        for &concurrency in &levels {
            let measured = load::run(port, request.clone(), concurrency, warmup, duration).await;
            eprintln!("{bench} {what} c={concurrency}: {measured:?}");
            rows.push(report::Row {
                bench,
                what: what.to_string(),
                concurrency,
                measured,
            });
        }
    }
    let rss_kb = rss_kb(gateway_process.0.id());
    let binary_bytes = std::fs::metadata(&gateway).map(|m| m.len()).unwrap_or(0);
    drop(gateway_process);
    let _ = std::fs::remove_dir_all(&dir);

    let (connectors, per_connector) = if smoke { (10, 50) } else { (100, 50) };
    let b3 = b3(
        &exe,
        &gateway,
        config,
        connectors,
        per_connector,
        warmup,
        duration,
    )
    .await?;
    eprintln!("B3: {b3:?}");

    let mut text = report::markdown(&rows, smoke, ready_after, rss_kb, binary_bytes);
    text.push_str(&report::b3(&b3));
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("report written to {}", out.display());
    Ok(())
}

/// B3: `tools/list` of `connectors` × `per_connector` tools, cold and from the cache.
async fn b3(
    exe: &Path,
    gateway: &Path,
    config: &Path,
    connectors: usize,
    per_connector: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<report::B3, String> {
    let upstream_port = free_port()?;
    let _upstream = Guard(
        Command::new(exe)
            .args(["upstream", "--port", &upstream_port.to_string()])
            .args(["--rest-tools", &per_connector.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the upstream: {e}"))?,
    );
    wait_for(upstream_port, "/info", Duration::from_secs(10)).await?;
    let dir = std::env::temp_dir().join(format!("mcpgate-bench-b3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(config.join("default.yaml"), dir.join("default.yaml"))
        .map_err(|e| e.to_string())?;
    let mut yaml = String::from("connectors:\n");
    for i in 0..connectors {
        yaml.push_str(&format!(
            "  - name: c{i:03}\n    kind: http\n    url: http://127.0.0.1:{upstream_port}\n"
        ));
    }
    std::fs::write(dir.join("connectors.yaml"), yaml).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let started = Instant::now();
    let _gateway = Guard(
        Command::new(gateway)
            .arg("--config")
            .arg(&dir)
            .arg("serve")
            .env("MCPGATE__SERVER__PORT", port.to_string())
            .env(
                "MCPGATE__DATABASE__URL",
                format!("sqlite://{}", dir.join("b3.db").display()),
            )
            .env(
                "MCPGATE__MCP__PAGE_SIZE",
                (connectors * per_connector + 10).to_string(),
            )
            .env("MCPGATE__FEEDBACK__TOOL_NAME", "")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", gateway.display()))?,
    );
    let alive = wait_for(port, "/healthz", Duration::from_secs(30)).await?;
    let alive = alive.max(started.elapsed());
    let ready = wait_for(port, "/readyz", Duration::from_secs(30)).await? + alive;
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    let (_, head) = load::exchange(port, &load::request("/mcp", port, init, None))
        .await
        .ok_or("the gateway did not answer initialize")?;
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: ").map(str::to_string))
        .ok_or("no session id")?;
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;
    let request = load::request("/mcp", port, list, Some(&session));
    let measured = load::run(port, request, 1, warmup, duration).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report::B3 {
        connectors,
        tools: connectors * per_connector,
        alive,
        ready,
        cached: measured,
    })
}

/// Resident set size of a process, in KiB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
