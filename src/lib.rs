//! mcpgate: an MCP gateway. MCP clients connect to it as to one MCP server; behind it sit many
//! backends ("connectors") whose tools, resources and prompts it aggregates under namespaces.
//!
//! # Layout
//!
//! - [`cli`], [`configuration`], [`secrets`]: the command line, layered settings, `${VAR}` secrets.
//! - [`startup`]: builds and runs the application; [`gateway`]: what handlers share.
//! - [`transport`]: legacy HTTP+SSE and Streamable HTTP for clients, behind a Host/Origin/token guard.
//! - [`session`]: the `Session` actor, one per client session.
//! - [`servers`]: virtual servers, named views of the catalog.
//! - [`mcp`]: JSON-RPC framing and the MCP methods.
//! - [`registry`]: the `ConnectorRegistry` actor and the published catalog snapshot.
//! - [`catalog`]: the aggregated catalog as plain data: naming, ordering, lookup.
//! - [`connector`]: the supervised `Connector` actor, one per backend, and its backend kinds.
//! - [`upstream`]: the MCP client of `mcp` and `stdio` backends (Streamable HTTP, SSE, processes).
//! - [`recorder`]: tool-call records written in batches off the request path; [`retention`]:
//!   deletes call records and feedback past their keep.
//! - [`metrics`]: Prometheus counters, histograms and gauges.
//! - [`store`]: diesel over PostgreSQL or SQLite, with embedded migrations.
//! - [`feedback`], [`trainer`]: feedback collection and the `Trainer` actor that learns from it.
//! - [`api`]: probes, `/metrics` and the `/api/v1` ops REST API.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod configuration;
pub mod connector;
pub mod feedback;
pub mod gateway;
pub mod lines;
pub mod mcp;
pub mod metrics;
pub mod recorder;
pub mod registry;
pub mod retention;
pub mod secrets;
pub mod servers;
pub mod session;
pub mod startup;
pub mod store;
pub mod sync;
pub mod trainer;
pub mod transport;
pub mod upstream;
