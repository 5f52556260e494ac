//! The integration test binary: the real gateway on port 0 in front of real HTTP connectors.

mod backends;
mod bench;
mod cli;
mod conformance;
mod failures;
mod fake_connector;
mod feedback;
mod guard;
mod gym;
mod helpers;
mod hostile_backends;
mod hub;
mod interop;
mod legacy_sse;
mod methods;
mod ops_api;
mod outage;
mod prompts;
mod retention;
mod servers;
mod stateless;
mod store;
mod streamable;
mod trainer;
