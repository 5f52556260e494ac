//! What can go wrong between the gateway and one backend.
//!
//! Kept apart: the backend being unavailable (timeout, refused, garbage: not the client's fault)
//! and the backend rejecting what the client asked for (unknown name, bad arguments). Messages
//! name the connector and never carry headers, credentials or bodies beyond the backend's own
//! short error text.

/// A failed request to a backend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    /// The backend did not answer within the connector's timeout.
    #[error("connector `{connector}` did not answer within {timeout_ms} ms")]
    Timeout {
        /// The connector's name.
        connector: String,
        /// The deadline that passed.
        timeout_ms: u64,
    },
    /// The backend could not be reached.
    #[error("connector `{connector}` is unreachable: {reason}")]
    Unreachable {
        /// The connector's name.
        connector: String,
        /// What the network said.
        reason: String,
    },
    /// The backend answered, but not with what the contract says.
    #[error("connector `{connector}` answered with an invalid response: {reason}")]
    BadResponse {
        /// The connector's name.
        connector: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The backend failed with an HTTP status that is not about the request.
    #[error("connector `{connector}` failed with HTTP {status}: {message}")]
    Failed {
        /// The connector's name.
        connector: String,
        /// The HTTP status it answered.
        status: u16,
        /// Its short error text.
        message: String,
    },
    /// The backend does not know the tool, prompt or resource.
    #[error("connector `{connector}` does not know {what}")]
    NotFound {
        /// The connector's name.
        connector: String,
        /// What it does not know, such as "resource `file://x`".
        what: String,
    },
    /// The backend refused the request as invalid (bad or missing arguments).
    #[error("connector `{connector}` rejected the request: {message}")]
    Rejected {
        /// The connector's name.
        connector: String,
        /// Its error text.
        message: String,
    },
    /// The connector's actor is gone (being restarted or removed).
    #[error("connector `{connector}` is not running")]
    Stopped {
        /// The connector's name.
        connector: String,
    },
    /// An MCP backend answered with a JSON-RPC error; it reaches the client as it is.
    #[error("{}", error.message)]
    Remote {
        /// The connector's name.
        connector: String,
        /// The backend's error.
        error: crate::mcp::jsonrpc::RpcError,
    },
    /// The connector is out of the catalog until it recovers.
    #[error("connector `{connector}` is unavailable: {reason}")]
    Unavailable {
        /// The connector's name.
        connector: String,
        /// Why, as its last health check said.
        reason: String,
    },
    /// Every replica's circuit is open: the backend failed too often lately.
    #[error("connector `{connector}` is unavailable (circuit open); retry in {retry_after_ms} ms")]
    CircuitOpen {
        /// The connector's name.
        connector: String,
        /// When a probe will be let through.
        retry_after_ms: u64,
    },
    /// The connector's rate limit refused the call.
    #[error("connector `{connector}` is over its rate limit; retry in {retry_after_ms} ms")]
    RateLimited {
        /// The connector's name.
        connector: String,
        /// When a call will be allowed again.
        retry_after_ms: u64,
    },
}

impl ConnectorError {
    /// A short stable label for records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorError::Timeout { .. } => "timeout",
            ConnectorError::Unreachable { .. } => "unreachable",
            ConnectorError::BadResponse { .. } => "bad_response",
            ConnectorError::Failed { .. } => "backend_error",
            ConnectorError::NotFound { .. } => "not_found",
            ConnectorError::Rejected { .. } => "rejected",
            ConnectorError::Stopped { .. } => "stopped",
            ConnectorError::Remote { .. } => "remote_error",
            ConnectorError::Unavailable { .. } => "unavailable",
            ConnectorError::CircuitOpen { .. } => "circuit_open",
            ConnectorError::RateLimited { .. } => "rate_limited",
        }
    }

    /// Whether the backend's health is in question (counts against its breaker, may be retried).
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            ConnectorError::Timeout { .. }
                | ConnectorError::Unreachable { .. }
                | ConnectorError::BadResponse { .. }
                | ConnectorError::Failed { .. }
        )
    }

    /// When the client may try again, for errors that say so.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            ConnectorError::CircuitOpen { retry_after_ms, .. }
            | ConnectorError::RateLimited { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        }
    }

    /// Whether the client asked for something wrong, as opposed to the backend being unwell.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            ConnectorError::NotFound { .. }
                | ConnectorError::Rejected { .. }
                | ConnectorError::Remote { .. }
        )
    }

    /// The connector it is about.
    pub fn connector(&self) -> &str {
        match self {
            ConnectorError::Timeout { connector, .. }
            | ConnectorError::Unreachable { connector, .. }
            | ConnectorError::BadResponse { connector, .. }
            | ConnectorError::Failed { connector, .. }
            | ConnectorError::NotFound { connector, .. }
            | ConnectorError::Rejected { connector, .. }
            | ConnectorError::Stopped { connector }
            | ConnectorError::Remote { connector, .. }
            | ConnectorError::Unavailable { connector, .. }
            | ConnectorError::CircuitOpen { connector, .. }
            | ConnectorError::RateLimited { connector, .. } => connector,
        }
    }
}
