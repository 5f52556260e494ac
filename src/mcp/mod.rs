//! The MCP server side of the gateway: protocol versions, lifecycle, and one module per method
//! family (`tools/*`, `resources/*`, `prompts/*`), dispatched by [`dispatch`].
//!
//! Method handlers are plain async functions over a [`dispatch::Context`]; they read the
//! published catalog and send calls to connectors. Per-session state (negotiated version, log
//! level) belongs to [`crate::session::Session`]; transports belong to [`crate::transport`].

mod completion;
pub mod dispatch;
mod feedback_tool;
pub mod jsonrpc;
pub mod lifecycle;
pub mod modern;
mod paging;
mod prompts;
mod resources;
pub mod scope;
mod tools;

/// Protocol revisions this gateway speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The revision offered when the client asks for one we do not speak.
pub const LATEST_VERSION: &str = "2025-11-25";

/// Whether `version` is one we speak.
pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}
