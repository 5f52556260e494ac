//! The fast upstream's stdio mode (`mcpgate-bench upstream --stdio`): the same MCP answers as
//! the HTTP upstream, as newline-delimited JSON-RPC on stdin and stdout, one thread, no async.
//! Answers are buffered and flushed whenever no further request is waiting in the input, so
//! pipelined requests cost one write for many answers. It owns nothing else: the clients that
//! drive it are in `b6` and the gateway's `stdio` connector.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::fd::AsFd;

use serde_json::Value;

/// Serves stdin until it closes. A line that is not JSON gets a JSON-RPC parse error.
pub fn serve() -> std::io::Result<()> {
    // Its own buffer over fd 0 (not `Stdin`'s), so that it can tell when no input is waiting.
    let stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut input = BufReader::with_capacity(64 * 1024, stdin);
    let mut output = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            output.flush()?;
            return Ok(());
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Value>(text) {
            Ok(message) => crate::upstream::answer(&message),
            Err(err) => Some(serde_json::json!({"jsonrpc": "2.0", "id": null,
                "error": {"code": -32700, "message": format!("parse error: {err}")}})),
        };
        if let Some(reply) = reply {
            serde_json::to_writer(&mut output, &reply)?;
            output.write_all(b"\n")?;
        }
        if input.buffer().is_empty() {
            output.flush()?;
        }
    }
}
