//! Connecting to an upstream server: one connection at a time, after a backoff that grows
//! with crashes in a row; the handshake of its revision (`initialize` for a session,
//! `server/discover` for the stateless revision, which `auto` falls back to when a server that
//! answered refused `initialize`); what the server declared; its stream of server messages.

use std::rc::Rc;
use std::time::Instant;

use futures_util::FutureExt;
use serde_json::{json, Value};

use super::{
    backoff, http, stateless, stdio, Connection, Failure, McpClient, Mode, Target, UpstreamEvent,
    UPSTREAM_VERSION,
};
use crate::connector::ConnectorError;

impl McpClient {
    /// Connects (once, even when asked by several requests at a time) and initializes.
    pub(super) async fn connect(&self) -> Result<Rc<Connection>, ConnectorError> {
        if let Some(connection) = self.inner.connection.borrow().clone() {
            return Ok(connection);
        }
        let shared = {
            let mut slot = self.inner.connecting.borrow_mut();
            match slot.as_ref() {
                Some(connecting) => connecting.clone(),
                None => {
                    let client = self.clone();
                    let connecting = async move { client.establish().await }
                        .boxed_local()
                        .shared();
                    *slot = Some(connecting.clone());
                    connecting
                }
            }
        };
        let result = shared.await;
        self.inner.connecting.borrow_mut().take();
        result?;
        self.inner
            .connection
            .borrow()
            .clone()
            .ok_or_else(|| self.unreachable("the connection closed while initializing"))
    }

    async fn establish(&self) -> Result<(), ConnectorError> {
        if let (Some(lost), crashes) = (self.inner.lost_at.get(), self.inner.crashes.get()) {
            let wait = backoff(crashes);
            if lost.elapsed() < wait {
                let left = wait - lost.elapsed();
                return Err(self.unreachable(&format!(
                    "restarting after {crashes} failures; next attempt in {} ms",
                    left.as_millis()
                )));
            }
        }
        let generation = self.inner.generation.get() + 1;
        self.inner.generation.set(generation);
        let connection = match &self.inner.target {
            Target::Stdio(spec) => Connection::Stdio(
                stdio::StdioConnection::spawn(self, spec, generation)
                    .map_err(|e| self.unreachable(&e))?,
            ),
            Target::Http { url, .. } => {
                let mode = self.http_mode();
                Connection::Http(self.open_http(generation, url, mode).await?)
            }
        };
        *self.inner.connection.borrow_mut() = Some(Rc::new(connection));
        if self.is_stateless() {
            return self.discover().await;
        }
        if let (Target::Http { url, .. }, Mode::Auto) = (&self.inner.target, self.http_mode()) {
            let connection = self.inner.connection.borrow().clone();
            let answered =
                || matches!(connection.as_deref(), Some(Connection::Http(c)) if c.answered());
            return match self.initialize().await {
                // Only a server that answered, and refused, may speak another revision; one
                // that is down is left to the backoff.
                Err(refused) if answered() => {
                    self.fall_back_to_stateless(generation, url, refused).await
                }
                done => done,
            };
        }
        self.initialize().await
    }

    /// The HTTP transport spoken: the connector's, or stateless once `auto` found the server
    /// answers nothing else.
    pub(super) fn http_mode(&self) -> Mode {
        match &self.inner.target {
            _ if self.inner.found_stateless.get() => Mode::Stateless,
            Target::Http { mode, .. } => *mode,
            Target::Stdio(_) => Mode::Auto,
        }
    }

    async fn open_http(
        &self,
        generation: u64,
        url: &str,
        mode: Mode,
    ) -> Result<http::HttpConnection, ConnectorError> {
        let (headers, timeout) = (&self.inner.headers, self.inner.timeout);
        http::HttpConnection::open(generation, self, url, mode, headers, timeout).await
    }

    /// `auto`: a server that refused `initialize` (with sessions and with legacy SSE) is asked
    /// `server/discover`; if it answers, it is spoken to statelessly from then on. If it does
    /// not, the error is `initialize`'s.
    async fn fall_back_to_stateless(
        &self,
        generation: u64,
        url: &str,
        refused: ConnectorError,
    ) -> Result<(), ConnectorError> {
        let Ok(connection) = self.open_http(generation, url, Mode::Stateless).await else {
            return Err(refused);
        };
        *self.inner.connection.borrow_mut() = Some(Rc::new(Connection::Http(connection)));
        self.inner.found_stateless.set(true);
        if self.discover().await.is_ok() {
            log::info!(
                "connector `{}`: the server refused initialize and answered server/discover; \
                 it is spoken to statelessly (revision 2026-07-28)",
                self.inner.connector
            );
            return Ok(());
        }
        self.inner.found_stateless.set(false);
        Err(refused)
    }

    /// The session handshake: `initialize`, then `notifications/initialized`.
    async fn initialize(&self) -> Result<(), ConnectorError> {
        let params = json!({
            "protocolVersion": UPSTREAM_VERSION,
            "capabilities": {"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}},
            "clientInfo": {"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")},
        });
        let result = self.handshake("initialize", params).await?;
        if let Some(Connection::Http(http)) = self.inner.connection.borrow().as_deref() {
            let version = result["protocolVersion"]
                .as_str()
                .unwrap_or(UPSTREAM_VERSION);
            http.set_protocol_version(version);
        }
        self.notify("notifications/initialized", None).await?;
        self.connected(&result, "session initialized");
        Ok(())
    }

    /// Learns a stateless server's capabilities from `server/discover`, and listens for its
    /// list changes.
    async fn discover(&self) -> Result<(), ConnectorError> {
        let params = stateless::with_meta(json!({}), None);
        let result = self.handshake("server/discover", params).await?;
        self.connected(&result, "server discovered (stateless)");
        Ok(())
    }

    /// The first request of a connection; when it fails, the connection is dropped.
    async fn handshake(&self, method: &str, params: Value) -> Result<Value, ConnectorError> {
        match self.request_once(method, params, None).await {
            Ok(result) => Ok(result),
            Err(failure) => {
                self.drop_connection(&format!("{method} failed"));
                Err(match failure {
                    Failure::Connector(err) => err,
                    other => self.unreachable(&format!(
                        "{method} failed: {}",
                        other.into_connector(&self.inner.connector)
                    )),
                })
            }
        }
    }

    /// Keeps what the server declared in `result`, opens its stream of server messages, and
    /// tells the connector of the new session ([`UpstreamEvent::Connected`]).
    fn connected(&self, result: &Value, what: &str) {
        *self.inner.capabilities.borrow_mut() = result["capabilities"].clone();
        if let Some(Connection::Http(http)) = self.inner.connection.borrow().as_deref() {
            http.open_listen_stream(self);
        }
        log::info!("connector `{}`: upstream MCP {what}", self.inner.connector);
        self.inner.connected_at.set(Some(Instant::now()));
        if !self.is_stateless() {
            self.upstream_event(UpstreamEvent::Connected);
        }
    }
}
