//! `initialize` and `logging/setLevel`: the methods that change a session's state. Pure
//! functions: the [`crate::session::Session`] applies what they return.

use serde_json::{json, Value};

use super::jsonrpc::RpcError;
use crate::configuration::McpSettings;

/// What `initialize` settled.
#[derive(Debug, Clone, PartialEq)]
pub struct Initialized {
    /// The negotiated protocol revision.
    pub version: &'static str,
    /// The client's declared capabilities.
    pub client_capabilities: Value,
    /// The `initialize` result to send.
    pub result: Value,
}

/// Negotiates the revision and states what the gateway offers.
pub fn initialize(params: Option<&Value>, settings: &McpSettings) -> Result<Initialized, RpcError> {
    let params = params
        .and_then(Value::as_object)
        .ok_or_else(|| RpcError::invalid_params("initialize needs params"))?;
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("initialize needs a string `protocolVersion`"))?;
    let version = super::SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(super::LATEST_VERSION);
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "resources": {"listChanged": true, "subscribe": true},
            "prompts": {"listChanged": true},
            "completions": {},
            "logging": {},
        },
        "serverInfo": {"name": settings.server_name, "version": env!("CARGO_PKG_VERSION")},
    });
    if let Some(instructions) = &settings.instructions {
        result["instructions"] = json!(instructions);
    }
    Ok(Initialized {
        version,
        client_capabilities: params.get("capabilities").cloned().unwrap_or(json!({})),
        result,
    })
}

/// Log levels of `logging/setLevel`, least severe first (RFC 5424 order).
pub const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Reads `logging/setLevel` params; returns the level's rank in [`LEVELS`].
pub fn set_level(params: Option<&Value>) -> Result<usize, RpcError> {
    let level = params
        .and_then(|p| p.get("level"))
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("logging/setLevel needs a string `level`"))?;
    LEVELS
        .iter()
        .position(|l| *l == level)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown log level `{level}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> McpSettings {
        McpSettings {
            server_name: "mcpgate".into(),
            instructions: None,
            page_size: 10,
            name_separator: "_".into(),
            request_timeout_ms: 1000,
            first_load_wait_ms: 1000,
            list_ttl_ms: 0,
        }
    }

    #[test]
    fn a_supported_version_is_echoed() {
        let params = json!({"protocolVersion": "2025-03-26", "capabilities": {"roots": {}}});
        let init = initialize(Some(&params), &settings()).unwrap();
        assert_eq!(init.version, "2025-03-26");
        assert_eq!(init.result["protocolVersion"], "2025-03-26");
        assert_eq!(init.client_capabilities, json!({"roots": {}}));
    }

    #[test]
    fn an_unknown_version_gets_the_latest() {
        let params = json!({"protocolVersion": "1999-01-01"});
        let init = initialize(Some(&params), &settings()).unwrap();
        assert_eq!(init.version, crate::mcp::LATEST_VERSION);
    }

    #[test]
    fn initialize_without_a_version_is_invalid_params() {
        let err = initialize(Some(&json!({})), &settings()).unwrap_err();
        assert_eq!(err.code, crate::mcp::jsonrpc::INVALID_PARAMS);
    }

    #[test]
    fn levels_are_ranked_and_unknown_ones_rejected() {
        assert_eq!(set_level(Some(&json!({"level": "warning"}))).unwrap(), 3);
        assert!(set_level(Some(&json!({"level": "loud"}))).is_err());
    }
}
