//! `mcpgate stdio`: the gateway for one client on stdin/stdout (newline-delimited JSON-RPC), as
//! `claude_desktop_config.json` starts local servers. Logs go to stderr. Owns the framing of
//! lines; the [`Session`] answers, and its stateless side (`stdio_stateless`) answers the
//! requests of the stateless revision (2026-07-28). When stdin ends, answers still owed are
//! written (within the request deadline), then the gateway shuts down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::stdio_stateless::StdioStateless;
use crate::configuration::Settings;
use crate::lines::{read_line, Line};
use crate::mcp::jsonrpc::{classify, RpcError, PARSE_ERROR};
use crate::mcp::scope::Scope;
use crate::session::{EndSession, HandleMessage, Session, Transport, STREAM_CAPACITY};
use crate::startup::{build_gateway, shut_down};

/// Serves one session on stdin/stdout until stdin ends.
pub async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    // No other gateway can reach this one: it holds nothing for them.
    settings.server.advertise_url.clear();
    let (gateway, recorder) = build_gateway(&settings).await?;
    let (sender, mut outbound) = mpsc::channel::<Bytes>(STREAM_CAPACITY);
    let stateless = StdioStateless::new(gateway.clone(), sender.clone());
    let shared = gateway.clone().into_inner();
    let (_, session) = Session::start(
        shared,
        (Transport::Stdio, None),
        Some((sender, 0)),
        Scope::All,
    )
    .map_err(|full| anyhow::anyhow!("no session: server.max_sessions ({}) are open", full.max))?;
    let answered = Arc::new(AtomicUsize::new(0));

    let written = answered.clone();
    let writer = actix_rt::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = outbound.recv().await {
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
            if is_answer(&line) {
                written.fetch_add(1, Ordering::SeqCst);
            }
        }
    });

    let mut asked = 0;
    let max = settings.server.max_body_bytes;
    let mut stdin = BufReader::new(tokio::io::stdin());
    while let Some(line) = read_line(&mut stdin, max).await? {
        let message = match line {
            Line::Text(line) if line.trim().is_empty() => continue,
            Line::Text(line) => match serde_json::from_str::<Value>(&line) {
                Ok(value) if stateless.takes(&value) => {
                    asked += usize::from(StdioStateless::owes_answer(&value));
                    stateless.handle(value);
                    continue;
                }
                Ok(value) => classify(value),
                Err(e) => Err((
                    Value::Null,
                    RpcError::new(PARSE_ERROR, format!("the line is not valid JSON: {e}")),
                )),
            },
            Line::TooLong => Err((
                Value::Null,
                RpcError::invalid_request(format!(
                    "the line is longer than {max} bytes (server.max_body_bytes)"
                )),
            )),
        };
        if message.as_ref().map_or(true, |m| m.is_request()) {
            asked += 1;
        }
        session.do_send(HandleMessage::plain(message));
    }

    let deadline = tokio::time::Instant::now() + settings.mcp.request_timeout();
    let settled = || answered.load(Ordering::SeqCst) + stateless.cancelled();
    while settled() < asked && tokio::time::Instant::now() < deadline {
        actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The session and the stateless side hold the gateway, whose recorders' writers finish
    // only once every holder is gone: end them first, or shutting down waits its full limit.
    let _ = session.send(EndSession).await;
    drop(stateless);
    writer.abort();
    shut_down(gateway, recorder).await;
    crate::upstream::end_all_processes();
    Ok(())
}

/// Whether a written line is an answer (it has an `id` and no `method`).
fn is_answer(line: &[u8]) -> bool {
    serde_json::from_slice::<Value>(line)
        .map(|m| m.get("id").is_some() && m.get("method").is_none())
        .unwrap_or(false)
}
