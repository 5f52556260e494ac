//! What every request handler and session shares: the addresses of the long-lived actors, the
//! published catalog, the recorder, the session table and the settings they need. Built once by
//! [`crate::startup`]; owns nothing that changes, apart from what its members own.

use std::sync::Arc;

use actix::Addr;
use secrecy::SecretString;

use crate::configuration::{McpSettings, ServerSettings};
use crate::feedback::FeedbackSink;
use crate::metrics::Metrics;
use crate::recorder::CallRecorder;
use crate::registry::{CatalogHandle, ConnectorRegistry};
use crate::servers::VirtualServers;
use crate::session::Sessions;
use crate::store::Pool;
use crate::trainer::served::ServedVersions;
use crate::transport::clients::ClientKeys;
use crate::transport::forward::Holders;
use crate::transport::Parked;

/// Shared by all handlers and sessions.
pub struct Gateway {
    /// The registry actor.
    pub registry: Addr<ConnectorRegistry>,
    /// The catalog the registry publishes.
    pub catalog: CatalogHandle,
    /// Where tool calls are recorded.
    pub recorder: CallRecorder,
    /// Open client sessions by id.
    pub sessions: Sessions,
    /// MCP behaviour.
    pub mcp: McpSettings,
    /// The client-facing server's settings.
    pub server: ServerSettings,
    /// Accepted client bearer tokens; empty means no authentication.
    pub tokens: Vec<SecretString>,
    /// Accepted ops API bearer tokens; empty means no authentication.
    pub admin_tokens: Vec<SecretString>,
    /// The store.
    pub pool: Pool,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Virtual servers by name.
    pub servers: VirtualServers,
    /// Where feedback goes.
    pub feedback: FeedbackSink,
    /// The built-in feedback tool's name, if it is on.
    pub feedback_tool: Option<String>,
    /// Versions served in place of the backends' own texts.
    pub served: Arc<ServedVersions>,
    /// Stateless requests waiting for their client's input.
    pub parked: Parked,
    /// Held while connectors or virtual servers registered through the API change, by this
    /// process's API or from the store, so that neither sees the other's change half made.
    pub api_writes: tokio::sync::Mutex<()>,
    /// The keys that stand for clients, the same on every gateway of the store.
    pub client_keys: ClientKeys,
    /// This process as the holder of its sessions, when they are shared with the other
    /// gateways of the store (`server.advertise_url`).
    pub holders: Option<Holders>,
    /// The refreshes this process's API asked for, which the sync does not do again.
    pub refreshes_asked: crate::sync::Asked,
}
