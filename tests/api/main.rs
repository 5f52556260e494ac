//! The integration test binary: the real gateway on port 0 in front of real HTTP connectors.

mod cli;
mod failures;
mod fake_connector;
mod guard;
mod helpers;
mod interop;
mod legacy_sse;
mod methods;
mod store;
mod streamable;
