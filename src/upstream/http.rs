//! The HTTP transports to a remote MCP server: Streamable HTTP (answers as JSON or as an SSE
//! stream, a session id, an optional stream for server messages) and the legacy HTTP+SSE
//! transport. In `auto` mode the first `initialize` is posted as Streamable HTTP; a 400, 404 or
//! 405 answer switches to legacy SSE, as the specification's backwards-compatibility section
//! describes (and when that fails too, [`super::McpClient`] tries `stateless`). In `stateless`
//! mode (revision 2026-07-28) requests carry the revision's headers, notifications are not sent,
//! a 4xx with a JSON-RPC error is the request's answer, and list changes come on a
//! `subscriptions/listen` stream instead of `GET`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use awc::Client;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::oneshot;

use super::resume::{self, read_into, Ended, StreamRequest};
use super::sse::Parser;
use super::{McpClient, Sent};
use crate::connector::header_pair;
use crate::connector::ConnectorError;

/// Which HTTP transport to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Streamable HTTP, falling back to legacy SSE, then to the stateless revision.
    #[default]
    Auto,
    /// Streamable HTTP only.
    StreamableHttp,
    /// Legacy HTTP+SSE only.
    Sse,
    /// Streamable HTTP without sessions: the stateless revision (2026-07-28).
    Stateless,
}

/// A connection to a remote MCP server.
pub struct HttpConnection {
    client: Client,
    url: String,
    /// Streamable HTTP until a fallback; then the legacy endpoint to post to.
    legacy_endpoint: RefCell<Option<String>>,
    mode: Mode,
    generation: u64,
    session_id: RefCell<Option<String>>,
    version: RefCell<Option<String>>,
    /// Set when the connection is dropped; its streams of server messages end at their next
    /// event, and a stateless listen stream at once.
    closed: Rc<Cell<bool>>,
    /// The stateless listen stream.
    listen: Rc<super::listen::Stream>,
    /// Whether the server has answered anything over this connection.
    answered: Cell<bool>,
    timeout: Duration,
}

impl HttpConnection {
    /// Prepares a connection; legacy SSE mode opens its stream now.
    pub async fn open(
        generation: u64,
        mcp: &McpClient,
        url: &str,
        mode: Mode,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpConnection, ConnectorError> {
        // Redirects are not followed, for the connector's headers' sake (see the `http` backend).
        let mut builder = Client::builder().timeout(timeout).disable_redirects();
        for (name, value) in headers {
            if let Some(pair) = header_pair(mcp.connector(), name, value) {
                builder = builder.add_default_header(pair);
            }
        }
        let connection = HttpConnection {
            client: builder.finish(),
            url: url.to_string(),
            legacy_endpoint: RefCell::new(None),
            mode,
            generation,
            session_id: RefCell::new(None),
            version: RefCell::new(None),
            closed: Rc::new(Cell::new(false)),
            listen: Rc::default(),
            answered: Cell::new(false),
            timeout,
        };
        if mode == Mode::Sse {
            connection.open_legacy(mcp).await?;
        }
        Ok(connection)
    }

    /// Remembers the negotiated revision for the `MCP-Protocol-Version` header.
    pub fn set_protocol_version(&self, version: &str) {
        *self.version.borrow_mut() = Some(version.to_string());
    }

    /// Whether the server has answered anything (an HTTP status, even a refusal): it is up.
    pub fn answered(&self) -> bool {
        self.answered.get()
    }

    /// Marks the connection closed; its streams end at their next event, the stateless listen
    /// stream at once.
    pub fn close(&self) {
        self.closed.set(true);
        self.listen.wake();
    }

    /// Posts one message. Answers and related messages are handed to `mcp` as they arrive.
    pub async fn send(&self, mcp: &McpClient, message: Value, related: Option<u64>) -> Sent {
        let legacy = self.legacy_endpoint.borrow().clone();
        if let Some(endpoint) = legacy {
            return self.post_legacy(&endpoint, &message).await;
        }
        let stateless = self.mode == Mode::Stateless;
        if stateless && message.get("id").is_none() {
            // The revision has no notifications from client to server; leaving cancels.
            return Sent::Ok;
        }
        let is_initialize = message["method"] == "initialize";
        let mut request = self
            .client
            .post(&self.url)
            .insert_header(("accept", "application/json, text/event-stream"))
            .insert_header(("content-type", "application/json"));
        if stateless {
            for (name, value) in super::stateless::headers(mcp, &message) {
                request = request.insert_header((name, value));
            }
        }
        if let Some(id) = self.session_id.borrow().as_deref() {
            request = request.insert_header(("mcp-session-id", id));
        }
        if let Some(version) = self.version.borrow().as_deref() {
            request = request.insert_header(("mcp-protocol-version", version));
        }
        let mut response = match request.send_body(message.to_string()).await {
            Ok(response) => {
                self.answered.set(true);
                response
            }
            Err(e) => return Sent::Failed(format!("POST failed: {e}")),
        };
        let status = response.status().as_u16();
        if is_initialize && self.mode == Mode::Auto && matches!(status, 400 | 404 | 405) {
            if let Err(err) = self.open_legacy(mcp).await {
                return Sent::Failed(err.to_string());
            }
            let endpoint = self.legacy_endpoint.borrow().clone().unwrap_or_default();
            return self.post_legacy(&endpoint, &message).await;
        }
        if status == 404 && self.session_id.borrow().is_some() {
            return Sent::SessionGone;
        }
        if status == 202 {
            return Sent::Ok;
        }
        if response.status().is_redirection() {
            return Sent::Failed(crate::connector::redirected(&response));
        }
        if stateless && (400..500).contains(&status) {
            // A refusal with a JSON-RPC error in its body is the request's answer.
            let body = response.body().limit(64 * 1024).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            if serde_json::from_str::<Value>(&text).is_ok_and(|v| v.get("error").is_some()) {
                deliver(mcp, &text, related);
                return Sent::Ok;
            }
            return Sent::Failed(format!("HTTP {status}: {}", text.trim()));
        }
        if !(200..300).contains(&status) {
            let body = response.body().limit(4096).await.unwrap_or_default();
            return Sent::Failed(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        if let Some(id) = response.headers().get("mcp-session-id") {
            if let Ok(id) = id.to_str() {
                *self.session_id.borrow_mut() = Some(id.to_string());
            }
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let max = mcp.max_message_bytes();
        if content_type.starts_with("text/event-stream") {
            // Read until the answer comes, resuming the stream when the server ends it first.
            let mut parser = Parser::new(max);
            let mut resumed_from: Option<String> = None;
            loop {
                let ended = read_into(mcp, &mut response, &mut parser, related, None).await;
                if let Ended::TooLarge(too_large) = ended {
                    return Sent::Failed(format!("the answer stream sent {too_large}"));
                }
                let waiting = related.is_some_and(|id| resume::waits_for(mcp, id));
                let from = resume::resume_from(&parser);
                let Some(last) = from.filter(|_| waiting && !stateless) else {
                    return match ended {
                        Ended::Broke if waiting => Sent::Failed("the answer stream broke".into()),
                        Ended::Done if waiting => Sent::Unanswered(
                            "the answer stream ended without the answer, and gave no event \
                             id to resume it from"
                                .into(),
                        ),
                        _ => Sent::Ok,
                    };
                };
                if resumed_from.as_deref() == Some(last.as_str()) {
                    return Sent::Failed(format!(
                        "the answer stream, resumed after event `{last}`, ended again with \
                         neither the answer nor a new event"
                    ));
                }
                let wait = resume::asked_wait(&parser).unwrap_or_default();
                actix_rt::time::sleep(wait.max(resume::LEAST_WAIT)).await;
                response = match self.stream_request().get(Some(&last)).send().await {
                    Ok(resumed) if resumed.status().is_success() => resumed,
                    Ok(refused) => {
                        let status = refused.status().as_u16();
                        return Sent::Failed(format!("resuming the answer stream: HTTP {status}"));
                    }
                    Err(e) => return Sent::Failed(format!("resuming the answer stream: {e}")),
                };
                resumed_from = Some(last);
            }
        }
        match response.body().limit(max).await {
            Ok(body) if body.is_empty() => Sent::Ok,
            Ok(body) => {
                deliver(mcp, &String::from_utf8_lossy(&body), related);
                Sent::Ok
            }
            Err(awc::error::PayloadError::Overflow) => Sent::Failed(format!(
                "its answer is larger than {max} bytes (max_response_bytes)"
            )),
            Err(e) => Sent::Failed(format!("reading the answer: {e}")),
        }
    }

    /// Opens the Streamable HTTP stream for server messages, if the server offers one: `GET`
    /// in a session, kept open (see [`resume::follow`]); statelessly, `subscriptions/listen`
    /// for the list changes and resource updates, or its request sent again when what it asks
    /// for changed.
    pub fn open_listen_stream(&self, mcp: &McpClient) {
        if self.legacy_endpoint.borrow().is_some() {
            return;
        }
        if self.mode == Mode::Stateless {
            let listen = &self.listen;
            super::listen::keep_open(mcp, listen, &self.client, &self.url, &self.closed);
            return;
        }
        let follow = resume::follow(mcp.clone(), self.stream_request(), self.closed.clone());
        actix_rt::spawn(follow);
    }

    /// How to open a stream of the session with `GET`.
    fn stream_request(&self) -> StreamRequest {
        StreamRequest {
            client: self.client.clone(),
            url: self.url.clone(),
            session_id: self.session_id.borrow().clone(),
            version: self.version.borrow().clone(),
        }
    }

    /// Opens the legacy SSE stream and waits for its `endpoint` event.
    async fn open_legacy(&self, mcp: &McpClient) -> Result<(), ConnectorError> {
        let unreachable = |reason: String| ConnectorError::Unreachable {
            connector: mcp.connector().to_string(),
            reason,
        };
        let mut response = self
            .client
            .get(&self.url)
            .insert_header(("accept", "text/event-stream"))
            .send()
            .await
            .map_err(|e| unreachable(format!("SSE stream: {e}")))?;
        self.answered.set(true);
        if response.status().is_redirection() {
            let redirect = crate::connector::redirected(&response);
            return Err(unreachable(format!("SSE stream: {redirect}")));
        }
        if !response.status().is_success() {
            return Err(unreachable(format!(
                "SSE stream: HTTP {}",
                response.status()
            )));
        }
        let (endpoint_tx, endpoint_rx) = oneshot::channel::<Result<String, String>>();
        let base = self.url.clone();
        let reader = mcp.clone();
        let generation = self.generation;
        actix_rt::spawn(async move {
            let mut parser = Parser::new(reader.max_message_bytes());
            let mut endpoint_tx = Some(endpoint_tx);
            while let Some(Ok(chunk)) = response.next().await {
                let events = match parser.push(&chunk) {
                    Ok(events) => events,
                    Err(too_large) => {
                        reader.connection_lost(
                            generation,
                            &format!("the SSE stream sent {too_large}"),
                        );
                        return;
                    }
                };
                for event in events {
                    if event.name == "endpoint" {
                        if let Some(tx) = endpoint_tx.take() {
                            let _ = tx.send(resolve(&base, &event.data));
                        }
                    } else {
                        deliver(&reader, &event.data, None);
                    }
                }
            }
            reader.connection_lost(generation, "the SSE stream ended");
        });
        let endpoint = actix_rt::time::timeout(self.timeout, endpoint_rx)
            .await
            .map_err(|_| unreachable("no endpoint event on the SSE stream".into()))?
            .map_err(|_| unreachable("the SSE stream ended before its endpoint event".into()))?
            .map_err(unreachable)?;
        *self.legacy_endpoint.borrow_mut() = Some(endpoint);
        Ok(())
    }

    async fn post_legacy(&self, endpoint: &str, message: &Value) -> Sent {
        let request = self
            .client
            .post(endpoint)
            .insert_header(("content-type", "application/json"));
        match request.send_body(message.to_string()).await {
            Ok(response) if response.status().is_success() => Sent::Ok,
            Ok(response) if response.status().as_u16() == 404 => Sent::SessionGone,
            Ok(response) => Sent::Failed(format!("HTTP {}", response.status())),
            Err(e) => Sent::Failed(format!("POST failed: {e}")),
        }
    }
}

/// Hands every JSON-RPC message in `data` (one, or a batch) to the client.
pub(super) fn deliver(mcp: &McpClient, data: &str, related: Option<u64>) {
    if data.trim().is_empty() {
        return;
    }
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Array(batch)) => batch.into_iter().for_each(|m| mcp.on_message(m, related)),
        Ok(message) => mcp.on_message(message, related),
        Err(_) => log::warn!(
            "connector `{}` sent an event that is not JSON",
            mcp.connector()
        ),
    }
}

/// `endpoint` resolved against the stream's URL.
/// The URL that the SSE stream at `base` names in its `endpoint` event, resolved against
/// `base`. It must be on the stream's origin (scheme, host and port): messages to it carry the
/// connector's headers and credentials, which must not go to a host the server picks.
fn resolve(base: &str, endpoint: &str) -> Result<String, String> {
    let base = url::Url::parse(base).map_err(|e| format!("the SSE URL is invalid: {e}"))?;
    let url = base
        .join(endpoint)
        .map_err(|e| format!("the SSE stream's endpoint `{endpoint}` is not a URL: {e}"))?;
    if url.origin() != base.origin() {
        return Err(format!(
            "the SSE stream's endpoint `{url}` is not on the stream's origin `{}`; \
             nothing is sent to it",
            base.origin().ascii_serialization()
        ));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn a_relative_endpoint_is_resolved_against_the_stream_url() {
        let url = resolve("http://127.0.0.1:9/sse", "/messages?session_id=1");
        assert_eq!(url.unwrap(), "http://127.0.0.1:9/messages?session_id=1");
        let same = resolve("http://127.0.0.1:9/sse", "http://127.0.0.1:9/m?s=1");
        assert_eq!(same.unwrap(), "http://127.0.0.1:9/m?s=1");
    }

    #[test]
    fn an_endpoint_on_another_origin_is_refused() {
        for endpoint in [
            "http://169.254.169.254/latest/meta-data",
            "https://127.0.0.1:9/messages",
            "http://127.0.0.1:10/messages",
            "//evil.example/messages",
        ] {
            let refused = resolve("http://127.0.0.1:9/sse", endpoint).unwrap_err();
            assert!(
                refused.contains("is not on the stream's origin `http://127.0.0.1:9`"),
                "{refused}"
            );
        }
    }
}
