//! The load generator: `concurrency` keep-alive HTTP/1.1 connections on one thread, each sending
//! the same request again as soon as its answer is read, for a fixed time. It records every
//! latency and its own CPU time, to show it is not the bottleneck.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Requests answered per second.
    pub rps: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Answers that were not 2xx.
    pub errors: u64,
    /// The generator's CPU time over wall time (1.0 = one core busy).
    pub generator_cpu: f64,
}

/// A prepared request: its bytes, sent as they are.
pub fn request(path: &str, port: u16, body: &str, session: Option<&str>) -> Vec<u8> {
    let session = session.map_or(String::new(), |s| format!("mcp-session-id: {s}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n\
         accept: application/json\r\n{session}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Runs `concurrency` connections to 127.0.0.1:`port` for `warmup` then `duration`.
pub async fn run(
    port: u16,
    request: Vec<u8>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Measured {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let cpu_before = cpu_seconds();
    let workers = (0..concurrency).map(|_| {
        let request = request.clone();
        async move { connection(port, &request, measure_from, end).await }
    });
    let results = futures_util::future::join_all(workers).await;
    let cpu = cpu_seconds() - cpu_before;
    let wall = start.elapsed().as_secs_f64();
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0;
    for (lat, err) in results {
        latencies.extend(lat);
        errors += err;
    }
    latencies.sort_unstable();
    let pick = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1] as f64 / 1000.0
    };
    Measured {
        rps: latencies.len() as f64 / duration.as_secs_f64(),
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        errors,
        generator_cpu: cpu / wall,
    }
}

/// One connection's loop: latencies (microseconds) measured after `from`, and errors.
async fn connection(port: u16, request: &[u8], from: Instant, end: Instant) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return (latencies, 1);
    };
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; 64 * 1024];
    while Instant::now() < end {
        let sent = Instant::now();
        if stream.write_all(request).await.is_err() {
            errors += 1;
            break;
        }
        match read_response(&mut stream, &mut buffer).await {
            Some(status) => {
                if sent >= from {
                    latencies.push(sent.elapsed().as_micros() as u32);
                    if !(200..300).contains(&status) {
                        errors += 1;
                    }
                }
            }
            None => {
                errors += 1;
                break;
            }
        }
    }
    (latencies, errors)
}

/// Reads one response with a Content-Length body; returns its status.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<u16> {
    read_full(stream, buffer).await.map(|(status, _, _)| status)
}

/// Reads one whole response: status, head, and where the body ends in `buffer`.
async fn read_full(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(u16, String, usize)> {
    let mut filled = 0;
    let head_end = loop {
        let n = stream.read(&mut buffer[filled..]).await.ok()?;
        if n == 0 {
            return None;
        }
        filled += n;
        if let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if filled == buffer.len() {
            buffer.resize(buffer.len() * 2, 0);
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end]).ok()?.to_string();
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let total = head_end + 4 + length;
    if buffer.len() < total {
        buffer.resize(total, 0);
    }
    while filled < total {
        let n = stream.read(&mut buffer[filled..]).await.ok()?;
        if n == 0 {
            return None;
        }
        filled += n;
    }
    Some((status, head, total))
}

/// Sends one request on a new connection; returns the status and the head.
pub async fn exchange(port: u16, request: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(request).await.ok()?;
    let mut buffer = vec![0u8; 256 * 1024];
    read_full(&mut stream, &mut buffer)
        .await
        .map(|(s, h, _)| (s, h))
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0; utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}
