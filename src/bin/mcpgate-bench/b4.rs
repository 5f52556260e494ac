//! B4: many concurrent idle sessions held open against a fresh gateway, once per transport —
//! legacy SSE (`GET /sse`, the stream kept open) and Streamable HTTP (`initialize` on `POST
//! /mcp`, then the session's `GET /mcp` stream kept open) — and the gateway's RSS and CPU while
//! they sit idle. It owns opening and holding the sessions and B4's section of the report.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::{self, Gateway};
use crate::load;

/// Sessions being opened at once.
const OPENING_AT_ONCE: usize = 128;

/// Connections that send the `initialize` requests of the Streamable HTTP sessions.
const INITIALIZING_CONNECTIONS: usize = 8;

/// How long one stream may take to open.
const OPEN_DEADLINE: Duration = Duration::from_secs(10);

/// One transport's figures.
#[derive(Debug)]
pub struct Row {
    /// `legacy SSE` or `Streamable HTTP`.
    pub transport: &'static str,
    /// Sessions asked for.
    pub wanted: usize,
    /// Sessions whose stream was open when measured.
    pub opened: usize,
    /// How long opening them all took.
    pub open_time: Duration,
    /// Gateway RSS, KiB, ready and before any session.
    pub rss_before_kb: u64,
    /// Gateway RSS, KiB, after the idle window with every session open.
    pub rss_kb: u64,
    /// Gateway CPU time over the idle window, as a share of one core.
    pub idle_cpu: f64,
    /// The idle window.
    pub idle: Duration,
}

/// Measures both transports, each against a gateway of its own in front of the upstream.
pub async fn run(
    gateway_binary: &Path,
    config: &Path,
    upstream_port: u16,
    sessions: usize,
    idle: Duration,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for transport in ["legacy SSE", "Streamable HTTP"] {
        let connectors = format!(
            "connectors:\n  - name: up\n    kind: mcp\n    url: http://127.0.0.1:{upstream_port}/mcp\n    transport: streamable_http\n"
        );
        let gateway = Gateway::spawn(gateway_binary, config, "b4", &connectors, &[])?;
        let port = gateway.port;
        gateway::wait_for(port, "/readyz", Duration::from_secs(30)).await?;
        let rss_before_kb = gateway::rss_kb(gateway.pid());
        let started = Instant::now();
        let streams = match transport {
            "legacy SSE" => open_all(sessions, |_| open_sse(port)).await,
            _ => {
                let ids = initialize_all(port, sessions).await?;
                open_all(sessions, |i| open_streamable(port, ids[i].clone())).await
            }
        };
        let open_time = started.elapsed();
        let opened = streams.len();
        eprintln!("B4 {transport}: {opened} of {sessions} sessions open in {open_time:?}");
        // Let what opening them allocated and deferred settle before the idle window.
        actix_rt::time::sleep(Duration::from_secs(2)).await;
        let cpu_before =
            gateway::cpu_seconds(gateway.pid()).ok_or("cannot read the gateway's CPU time")?;
        let window = Instant::now();
        actix_rt::time::sleep(idle).await;
        let cpu_after =
            gateway::cpu_seconds(gateway.pid()).ok_or("cannot read the gateway's CPU time")?;
        let idle_cpu = (cpu_after - cpu_before) / window.elapsed().as_secs_f64();
        let rss_kb = gateway::rss_kb(gateway.pid());
        for stream in &streams {
            // Reset instead of a FIN, so 10,000 closed connections leave no TIME_WAIT behind.
            gateway::reset_on_close(stream);
        }
        drop(streams);
        drop(gateway);
        rows.push(Row {
            transport,
            wanted: sessions,
            opened,
            open_time,
            rss_before_kb,
            rss_kb,
            idle_cpu,
            idle,
        });
    }
    Ok(rows)
}

/// Runs `open(i)` for i in 0..count, `OPENING_AT_ONCE` at a time; the streams that opened.
async fn open_all<F, Fut>(count: usize, open: F) -> Vec<TcpStream>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Option<TcpStream>>,
{
    futures_util::stream::iter((0..count).map(|i| {
        let opening = open(i);
        async move {
            actix_rt::time::timeout(OPEN_DEADLINE, opening)
                .await
                .ok()
                .flatten()
        }
    }))
    .buffer_unordered(OPENING_AT_ONCE)
    .filter_map(|s| async move { s })
    .collect()
    .await
}

/// `GET /sse`, read until the `endpoint` event has arrived; the open stream.
async fn open_sse(port: u16) -> Option<TcpStream> {
    let request =
        format!("GET /sse HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\naccept: text/event-stream\r\n\r\n");
    open_stream(port, request, b"event: endpoint").await
}

/// `GET /mcp` of session `id`, read until the answer's head; the open stream.
async fn open_streamable(port: u16, id: String) -> Option<TcpStream> {
    let request = format!(
        "GET /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\naccept: text/event-stream\r\n\
         mcp-session-id: {id}\r\nmcp-protocol-version: 2025-11-25\r\n\r\n"
    );
    open_stream(port, request, b"\r\n\r\n").await
}

/// Sends `request` on a new connection and reads until `until` shows up in a 200 answer.
async fn open_stream(port: u16, request: String, until: &[u8]) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut seen = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&chunk[..n]);
        if seen.windows(until.len()).any(|w| w == until) {
            return seen.starts_with(b"HTTP/1.1 200").then_some(stream);
        }
        if seen.len() > 64 * 1024 {
            return None;
        }
    }
}

/// `count` Streamable HTTP sessions opened by `initialize` (and `notifications/initialized`)
/// on a few keep-alive connections; their ids.
async fn initialize_all(port: u16, count: usize) -> Result<Vec<String>, String> {
    let per_connection = count.div_ceil(INITIALIZING_CONNECTIONS);
    let workers = (0..INITIALIZING_CONNECTIONS).map(|w| {
        let todo = per_connection.min(count.saturating_sub(w * per_connection));
        initialize_on_one_connection(port, todo)
    });
    let mut ids = Vec::with_capacity(count);
    for result in futures_util::future::join_all(workers).await {
        ids.extend(result?);
    }
    Ok(ids)
}

async fn initialize_on_one_connection(port: u16, count: usize) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(count);
    if count == 0 {
        return Ok(ids);
    }
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot connect to the gateway: {e}"))?;
    let mut buffer = vec![0u8; 16 * 1024];
    let init = load::request("/mcp", port, gateway::INITIALIZE, None);
    let notification = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    for _ in 0..count {
        let (status, head) = load::roundtrip(&mut stream, &init, &mut buffer)
            .await
            .ok_or("the gateway did not answer initialize")?;
        let id = load::header_value(&head, "mcp-session-id").ok_or(format!(
            "no session id in the initialize answer (HTTP {status})"
        ))?;
        let request = load::post(
            "/mcp",
            port,
            notification,
            &[("accept", "application/json"), ("mcp-session-id", &id)],
        );
        let (status, _) = load::roundtrip(&mut stream, &request, &mut buffer)
            .await
            .ok_or("the gateway did not answer notifications/initialized")?;
        if status != 202 {
            return Err(format!("notifications/initialized answered HTTP {status}"));
        }
        ids.push(id);
    }
    gateway::reset_on_close(&stream);
    Ok(ids)
}

/// B4's section of the report.
pub fn section(rows: &[Row]) -> String {
    let mut text = String::new();
    let wanted = rows.first().map_or(0, |r| r.wanted);
    let _ = writeln!(
        text,
        "\n## B4: {wanted} concurrent idle sessions\n\n\
         A fresh gateway per transport (one `mcp` connector to the upstream), SQLite default. \
         Legacy SSE: `GET /sse` read up to its `endpoint` event, then held open. Streamable \
         HTTP: `initialize` and `notifications/initialized` on `POST /mcp` (8 keep-alive \
         connections), then one `GET /mcp` stream per session held open. The gateway has no \
         session limit in its settings (actix-web's default cap is 25,000 connections per \
         worker). RSS is VmRSS from /proc/PID/status; idle CPU is utime+stime from \
         /proc/PID/stat over the idle window (2 s after the last session opened), as a share \
         of one core. The keep-alive comment interval (`server.keep_alive_ms`) is 15 s.\n\n\
         | transport | sessions open | opened in | RSS ready, no session | RSS with the sessions | per session | idle CPU (window) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let per_session =
            (r.rss_kb.saturating_sub(r.rss_before_kb)) as f64 * 1024.0 / r.opened.max(1) as f64;
        let _ = writeln!(
            text,
            "| {} | {} of {} | {:.2} s | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.2}% ({:.0} s) |",
            r.transport,
            r.opened,
            r.wanted,
            r.open_time.as_secs_f64(),
            r.rss_before_kb as f64 / 1024.0,
            r.rss_kb as f64 / 1024.0,
            per_session / 1024.0,
            r.idle_cpu * 100.0,
            r.idle.as_secs_f64(),
        );
    }
    text
}

/// The B4 lines of the targets table: (target, figure, met).
pub fn targets(rows: &[Row]) -> Vec<crate::report::Target> {
    let mut lines = Vec::new();
    for r in rows {
        let full = r.opened >= 10_000;
        lines.push((
            format!(
                "B4 ({}): ≤ 150 MB RSS for 10,000 idle sessions",
                r.transport
            ),
            format!(
                "{:.1} MiB ({} bytes) with {} of {} open",
                r.rss_kb as f64 / 1024.0,
                r.rss_kb * 1024,
                r.opened,
                r.wanted
            ),
            Some(full && r.rss_kb * 1024 <= 150_000_000),
        ));
        lines.push((
            format!("B4 ({}): idle CPU < 2% of a core", r.transport),
            format!("{:.2}% with {} open", r.idle_cpu * 100.0, r.opened),
            Some(full && r.idle_cpu < 0.02),
        ));
    }
    lines
}
