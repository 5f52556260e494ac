//! The load generator: `concurrency` keep-alive HTTP/1.1 connections on one thread, each sending
//! the same request again as soon as its answer is read, for a fixed time. It records every
//! latency and its own CPU time, to show it is not the bottleneck.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request id that the generator replaces in every request it sends with one of the same
/// width that no other request in flight has (clients must not reuse the id of a request in
/// flight in one session, and servers that route answers by id hang when they do).
pub const ID_MARK: &[u8] = b"\"id\":1000000000";

/// How long after the end of a run an answer is still waited for.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// How long a single exchange ([`exchange`], [`roundtrip`]) may take.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(30);

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
    match session {
        Some(s) => post(
            path,
            port,
            body,
            &[("accept", "application/json"), ("mcp-session-id", s)],
        ),
        None => post(path, port, body, &[("accept", "application/json")]),
    }
}

/// A prepared POST of a JSON `body` with extra `headers`.
pub fn post(path: &str, port: u16, body: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
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
    let workers = (0..concurrency).map(|index| {
        let request = request.clone();
        async move { connection(port, request, index, measure_from, end).await }
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
    summarize(latencies, errors, duration, cpu / wall)
}

/// The figures of one run from its latencies (microseconds), errors, measured time and the
/// generator's CPU share.
pub fn summarize(
    mut latencies: Vec<u32>,
    errors: u64,
    duration: Duration,
    generator_cpu: f64,
) -> Measured {
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
        generator_cpu,
    }
}

/// One connection's loop: latencies (microseconds) measured after `from`, and errors. Request
/// ids ([`ID_MARK`]) are 1,000,000,000 + index × 10,000,000 + a count.
async fn connection(
    port: u16,
    mut request: Vec<u8>,
    index: usize,
    from: Instant,
    end: Instant,
) -> (Vec<u32>, u64) {
    let id_at = request
        .windows(ID_MARK.len())
        .position(|w| w == ID_MARK)
        .map(|at| at + ID_MARK.len() - 10);
    let mut next_id = 1_000_000_000 + index as u64 * 10_000_000;
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut open: Option<TcpStream> = None;
    while Instant::now() < end {
        let stream = match open.as_mut() {
            Some(stream) => stream,
            None => {
                let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else {
                    return (latencies, errors + 1);
                };
                let _ = stream.set_nodelay(true);
                open.insert(stream)
            }
        };
        if let Some(at) = id_at {
            let digits = format!("{}", next_id % 10_000_000_000);
            if digits.len() == 10 {
                request[at..at + 10].copy_from_slice(digits.as_bytes());
            }
            next_id += 1;
        }
        let sent = Instant::now();
        if stream.write_all(&request).await.is_err() {
            errors += 1;
            break;
        }
        // An answer still missing 5 s after the end counts as an error and ends the connection.
        let deadline = tokio::time::Instant::from_std(end + ANSWER_GRACE);
        let answer = tokio::time::timeout_at(deadline, read_full(stream, &mut buffer)).await;
        match answer.ok().flatten() {
            Some(response) => {
                let status = response.status;
                if response.close {
                    open = None;
                }
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

/// One response read by [`read_full`].
struct Response {
    /// HTTP status.
    status: u16,
    /// The status line and headers.
    head: String,
    /// The body, decoded when it was chunked.
    body: Vec<u8>,
    /// The server closes the connection after it.
    close: bool,
}

/// Reads one whole response, with a Content-Length body (none = empty) or a chunked one (as
/// Python and Node MCP servers send their `text/event-stream` answers).
async fn read_full(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Response> {
    let mut filled = 0;
    let head_end = loop {
        filled += fill(stream, buffer, filled).await?;
        if let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end]).ok()?.to_string();
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let header = |wanted: &str| {
        head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    let close = header("connection").is_some_and(|v| v == "close");
    let start = head_end + 4;
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let body = read_chunks(stream, buffer, start, filled).await?;
        return Some(Response {
            status,
            head,
            body,
            close,
        });
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let total = start + length;
    while filled < total {
        filled += fill(stream, buffer, filled).await?;
    }
    let body = buffer[start..total].to_vec();
    Some(Response {
        status,
        head,
        body,
        close,
    })
}

/// Reads more of the stream into `buffer` after `filled` bytes (growing it when full); the
/// count read, or `None` at the end of the stream.
async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>, filled: usize) -> Option<usize> {
    if filled == buffer.len() {
        buffer.resize(buffer.len() * 2, 0);
    }
    match stream.read(&mut buffer[filled..]).await.ok()? {
        0 => None,
        n => Some(n),
    }
}

/// Decodes a chunked body that starts at `at` in `buffer` (`filled` bytes read so far).
async fn read_chunks(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    mut at: usize,
    mut filled: usize,
) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(end) = buffer[at..filled].windows(2).position(|w| w == b"\r\n") {
                break at + end;
            }
            filled += fill(stream, buffer, filled).await?;
        };
        let size_text = std::str::from_utf8(&buffer[at..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        // The chunk, then its CRLF (after the last, empty chunk: the final CRLF).
        let total = line_end + 2 + size + 2;
        while filled < total {
            filled += fill(stream, buffer, filled).await?;
        }
        body.extend_from_slice(&buffer[line_end + 2..line_end + 2 + size]);
        at = total;
        if size == 0 {
            return Some(body);
        }
    }
}

/// Sends one request on an open connection and reads its answer: the status and the head.
pub async fn roundtrip(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Option<(u16, String)> {
    let exchange = async {
        stream.write_all(request).await.ok()?;
        read_full(stream, buffer).await.map(|r| (r.status, r.head))
    };
    tokio::time::timeout(EXCHANGE_DEADLINE, exchange)
        .await
        .ok()?
}

/// Sends one request on a new connection; returns the status and the head.
pub async fn exchange(port: u16, request: &[u8]) -> Option<(u16, String)> {
    exchange_body(port, request).await.map(|(s, h, _)| (s, h))
}

/// Sends one request on a new connection; returns the status, the head and the body.
pub async fn exchange_body(port: u16, request: &[u8]) -> Option<(u16, String, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(request).await.ok()?;
        let mut buffer = vec![0u8; 256 * 1024];
        let response = read_full(&mut stream, &mut buffer).await?;
        let body = String::from_utf8_lossy(&response.body).into_owned();
        Some((response.status, response.head, body))
    };
    tokio::time::timeout(EXCHANGE_DEADLINE, exchange)
        .await
        .ok()?
}

/// The value of header `name` in a response head, if present.
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, value) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
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
