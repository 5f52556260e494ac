//! Reading a Streamable HTTP server's event streams, and resuming them (2025-11-25): a server
//! may end a stream before it is done, once its events carry ids, and expect the client back
//! with `GET` and `Last-Event-ID` after the wait its `retry:` field names. An answer stream is
//! resumed until its answer comes (see [`super::http::HttpConnection::send`]); a session's
//! stream of server messages is opened again whenever it ends, from the last event seen.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::{Client, ClientRequest};
use futures_util::StreamExt;

use super::sse::{EventTooLarge, Parser};
use super::{McpClient, UpstreamEvent};

/// The longest wait before opening a stream again.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// The first wait before opening a stream again; it doubles while the stream keeps ending
/// sooner than the wait before it.
pub(super) const FIRST_WAIT: Duration = Duration::from_millis(250);
/// The least wait before resuming an answer stream, whatever the server asks.
pub(super) const LEAST_WAIT: Duration = Duration::from_millis(100);

/// The wait before opening a stream again that ended `lasted` after it was opened, `backoff`
/// the wait before it: back to the first when the stream lasted longer than that, else
/// doubled, up to [`MAX_WAIT`].
pub(super) fn next_backoff(backoff: Duration, lasted: Duration) -> Duration {
    match lasted > backoff {
        true => FIRST_WAIT,
        false => (backoff * 2).min(MAX_WAIT),
    }
}

/// How reading a stream stopped.
pub(super) enum Ended {
    /// The server ended it.
    Done,
    /// It broke (the connection failed).
    Broke,
    /// An event was longer than the connector allows; the stream cannot be read on.
    TooLarge(EventTooLarge),
    /// The connection was dropped.
    Closed,
}

/// Reads `response`'s events into `parser` and hands their messages to `mcp` (`related` is
/// the request whose answer stream it is), until it ends, `related` is answered (a resumed
/// stream may stay open after the answer), or `closed` is set.
pub(super) async fn read_into<S>(
    mcp: &McpClient,
    response: &mut awc::ClientResponse<S>,
    parser: &mut Parser,
    related: Option<u64>,
    closed: Option<&Cell<bool>>,
) -> Ended
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    parser.restart();
    while let Some(chunk) = response.next().await {
        if closed.is_some_and(Cell::get) {
            return Ended::Closed;
        }
        let Ok(chunk) = chunk else {
            return Ended::Broke;
        };
        match parser.push(&chunk) {
            Ok(events) => events
                .iter()
                .for_each(|event| super::http::deliver(mcp, &event.data, related)),
            Err(too_large) => return Ended::TooLarge(too_large),
        }
        if related.is_some_and(|id| !waits_for(mcp, id)) {
            return Ended::Done;
        }
    }
    Ended::Done
}

/// Whether request `id` still waits for its answer.
pub(super) fn waits_for(mcp: &McpClient, id: u64) -> bool {
    mcp.inner.pending.borrow().contains_key(&id)
}

/// Reads a stream of server messages (not tied to a request) until it ends or breaks, or its
/// connection is dropped; false when it cannot be read on (an event over the limit).
pub(super) async fn read_events<S>(
    mcp: &McpClient,
    response: &mut awc::ClientResponse<S>,
    parser: &mut Parser,
    closed: &Cell<bool>,
) -> bool
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let Ended::TooLarge(too_large) = read_into(mcp, response, parser, None, Some(closed)).await
    else {
        return true;
    };
    log::warn!(
        "connector `{}`: its stream of server messages sent {too_large}; the stream is closed",
        mcp.connector()
    );
    false
}

/// Where a resumed stream starts: the id of the last event read, if the server named one.
pub(super) fn resume_from(parser: &Parser) -> Option<String> {
    parser
        .last_id()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// The wait the server asked for before a stream is resumed (at most [`MAX_WAIT`]).
pub(super) fn asked_wait(parser: &Parser) -> Option<Duration> {
    parser
        .retry_ms()
        .map(|ms| Duration::from_millis(ms).min(MAX_WAIT))
}

/// How to open a session's stream: `GET` on the endpoint, with the session's headers.
#[derive(Clone)]
pub(super) struct StreamRequest {
    pub client: Client,
    pub url: String,
    pub session_id: Option<String>,
    pub version: Option<String>,
}

impl StreamRequest {
    /// The `GET`, resuming after `last_id` when given.
    pub fn get(&self, last_id: Option<&str>) -> ClientRequest {
        let mut request = self
            .client
            .get(&self.url)
            .insert_header(("accept", "text/event-stream"));
        if let Some(id) = &self.session_id {
            request = request.insert_header(("mcp-session-id", id.as_str()));
        }
        if let Some(version) = &self.version {
            request = request.insert_header(("mcp-protocol-version", version.as_str()));
        }
        if let Some(last) = last_id {
            request = request.insert_header(("last-event-id", last));
        }
        request
    }
}

/// Keeps a session's stream of server messages open until `closed` is set: opened again when
/// it ends, from its last event when the server named ids, after the server's wait, or longer
/// while the stream keeps ending soon (see [`next_backoff`]). Opened again afresh, what the server said in
/// between is lost: the lists are loaded again and subscribers told to read again. A server without such a stream (405), or
/// that no longer knows the session (404), is not asked again on this connection.
pub(super) async fn follow(mcp: McpClient, stream: StreamRequest, closed: Rc<Cell<bool>>) {
    let mut parser = Parser::new(mcp.max_message_bytes());
    let mut backoff = FIRST_WAIT;
    let mut ended = false;
    while !closed.get() {
        let opened = Instant::now();
        let last = resume_from(&parser);
        if let Ok(mut response) = stream.get(last.as_deref()).send().await {
            let status = response.status();
            if matches!(status.as_u16(), 404 | 405) {
                return;
            }
            if status.is_success() {
                if ended && last.is_none() {
                    mcp.upstream_event(UpstreamEvent::Missed);
                }
                if !read_events(&mcp, &mut response, &mut parser, &closed).await {
                    return;
                }
            }
        }
        ended = true;
        backoff = next_backoff(backoff, opened.elapsed());
        // The server's wait, but never less than the backoff of a stream that keeps ending.
        let wait = asked_wait(&parser).map_or(backoff, |asked| asked.max(backoff));
        actix_rt::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_keeps_ending_soon_waits_longer_and_one_that_lasted_starts_over() {
        let ms = Duration::from_millis;
        assert_eq!(next_backoff(FIRST_WAIT, ms(10)), ms(500));
        assert_eq!(next_backoff(ms(500), ms(400)), ms(1000));
        assert_eq!(next_backoff(ms(20_000), ms(1)), MAX_WAIT);
        assert_eq!(next_backoff(ms(8_000), ms(10_000)), FIRST_WAIT);
    }
}
