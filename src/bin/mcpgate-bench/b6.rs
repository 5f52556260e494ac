//! B6, the direct side: the stdio upstream (`mcpgate-bench upstream --stdio`) spawned and driven
//! over its stdin/stdout by this process, with `concurrency` requests in flight at once
//! (pipelined, matched to their answers by id). The gateway side of B6 is an ordinary HTTP load
//! run against a `stdio` connector, set up in `main`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::load::{self, Measured};

/// The only field of an answer that the driver reads.
#[derive(Deserialize)]
struct Answer {
    id: Option<u64>,
    error: Option<serde_json::Value>,
}

/// A `tools/call` request line with this id.
fn call(id: u64) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"hi\"}}}}}}\n"
    )
}

/// Spawns the stdio upstream and measures `tools/call` on it at `concurrency`.
pub async fn direct(
    exe: &Path,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Measured, String> {
    let mut child = Command::new(exe)
        .args(["upstream", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the stdio upstream: {e}"))?;
    let mut input = child
        .stdin
        .take()
        .ok_or("the stdio upstream has no stdin")?;
    let output = child
        .stdout
        .take()
        .ok_or("the stdio upstream has no stdout")?;
    let mut output = BufReader::with_capacity(64 * 1024, output);
    handshake(&mut input, &mut output).await?;
    let measured = drive(&mut input, &mut output, concurrency, warmup, duration).await;
    drop(input);
    let _ = child.kill().await;
    measured
}

/// `initialize`, its answer, then `notifications/initialized`.
async fn handshake(
    input: &mut ChildStdin,
    output: &mut BufReader<ChildStdout>,
) -> Result<(), String> {
    let init = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"}}}\n";
    write(input, init.as_bytes()).await?;
    let mut line = String::new();
    let read = output.read_line(&mut line).await;
    if !matches!(read, Ok(n) if n > 0) || !line.contains("\"result\"") {
        return Err(format!(
            "the stdio upstream did not answer initialize: {line:?}"
        ));
    }
    write(
        input,
        b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n",
    )
    .await
}

async fn write(input: &mut ChildStdin, bytes: &[u8]) -> Result<(), String> {
    input
        .write_all(bytes)
        .await
        .map_err(|e| format!("cannot write to the stdio upstream: {e}"))
}

/// Keeps `concurrency` calls in flight: request `id` belongs to slot `id % concurrency`, and a
/// slot sends its next call when its answer arrives. Answers that arrive together are followed
/// by one write of all the next calls.
async fn drive(
    input: &mut ChildStdin,
    output: &mut BufReader<ChildStdout>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Measured, String> {
    let concurrency = concurrency.max(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let cpu_before = load::cpu_seconds();
    let mut sent_at = vec![start; concurrency];
    let mut next_id = vec![0u64; concurrency];
    let mut batch = String::new();
    for slot in 0..concurrency {
        next_id[slot] = slot as u64 + concurrency as u64;
        sent_at[slot] = Instant::now();
        batch.push_str(&call(slot as u64));
    }
    write(input, batch.as_bytes()).await?;
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let mut line = String::new();
    let mut in_flight = concurrency;
    while in_flight > 0 {
        batch.clear();
        loop {
            line.clear();
            match output.read_line(&mut line).await {
                Ok(0) | Err(_) => return Err("the stdio upstream closed its output".into()),
                Ok(_) => {}
            }
            let answer: Answer = serde_json::from_str(&line)
                .map_err(|e| format!("the stdio upstream sent a bad line ({e}): {line:?}"))?;
            let Some(id) = answer.id else { continue };
            let slot = (id % concurrency as u64) as usize;
            let now = Instant::now();
            if sent_at[slot] >= measure_from && now <= end {
                latencies.push((now - sent_at[slot]).as_micros() as u32);
                if answer.error.is_some() {
                    errors += 1;
                }
            }
            if now < end {
                sent_at[slot] = now;
                batch.push_str(&call(next_id[slot]));
                next_id[slot] += concurrency as u64;
            } else {
                in_flight -= 1;
            }
            if output.buffer().is_empty() {
                break;
            }
        }
        if !batch.is_empty() {
            write(input, batch.as_bytes()).await?;
        }
    }
    let cpu = load::cpu_seconds() - cpu_before;
    let wall = start.elapsed().as_secs_f64();
    Ok(load::summarize(latencies, errors, duration, cpu / wall))
}
