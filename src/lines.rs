//! Reading newline-delimited input with a bound: a line is held in memory only up to a limit,
//! so that a peer that writes without a line end (a spawned MCP server, the client of `mcpgate
//! stdio`) cannot grow the gateway's memory. Bytes that are not UTF-8 are replaced, not fatal.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line read by [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line, without its line end; bytes that are not UTF-8 become U+FFFD.
    Text(String),
    /// A line longer than the limit, skipped to its end without being kept.
    TooLong,
}

/// The next line of `reader`, holding at most `max` bytes of it in memory; `None` at the end.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let end = available.iter().position(|&b| b == b'\n');
        let used = end.map_or(available.len(), |at| at + 1);
        let content = end.unwrap_or(available.len());
        if !too_long && line.len() + content > max {
            too_long = true;
            line = Vec::new();
        }
        if !too_long {
            line.extend_from_slice(&available[..content]);
        }
        reader.consume(used);
        if end.is_some() {
            break;
        }
    }
    if too_long {
        return Ok(Some(Line::TooLong));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(Line::Text(
        String::from_utf8_lossy(&line).into_owned(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[actix_rt::test]
    async fn lines_over_the_limit_are_skipped_whole_and_the_reading_goes_on() {
        let input = format!("short\r\n{}\nnext é\nlast", "x".repeat(100));
        // A buffer of 7 bytes, so that lines end in the middle of reads.
        let mut reader = BufReader::with_capacity(7, input.as_bytes());
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut reader, 10).await.unwrap() {
            lines.push(line);
        }
        let text = |s: &str| Line::Text(s.to_string());
        assert_eq!(
            lines,
            [text("short"), Line::TooLong, text("next é"), text("last")]
        );
    }
}
