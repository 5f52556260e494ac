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
        }
    }

    /// Whether the client asked for something wrong, as opposed to the backend being unwell.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            ConnectorError::NotFound { .. } | ConnectorError::Rejected { .. }
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
            | ConnectorError::Stopped { connector } => connector,
        }
    }
}
