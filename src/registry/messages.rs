//! The messages the [`ConnectorRegistry`](super::ConnectorRegistry) handles, and the facts it
//! sends to sessions.

use std::sync::Arc;

use actix::prelude::*;
use secrecy::SecretString;

use super::{ConnectorView, Source};
use crate::catalog::{Changes, ConnectorCatalog};
use crate::connector::{ConnectorSettings, ConnectorStatus};

/// Why the registry refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No connector has this name.
    #[error("no connector is named `{0}`")]
    NotFound(String),
    /// A connector already has this name.
    #[error("a connector named `{0}` already exists")]
    Exists(String),
    /// The connector comes from `connectors.yaml` and changes only there.
    #[error("connector `{0}` comes from connectors.yaml; change it there")]
    FromFile(String),
}

/// Starts a connector; its entries join the catalog once it has loaded.
#[derive(Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RegisterConnector {
    /// Its settings.
    pub settings: Arc<ConnectorSettings>,
    /// Its headers with secrets resolved.
    pub headers: Arc<[(String, SecretString)]>,
    /// Where it was registered.
    pub source: Source,
}

/// Replaces an API-registered connector with new settings, live.
#[derive(Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct ReplaceConnector {
    /// Its new settings (the name picks the connector).
    pub settings: Arc<ConnectorSettings>,
    /// Its headers with secrets resolved.
    pub headers: Arc<[(String, SecretString)]>,
}

/// Retires an API-registered connector; its entries leave the catalog.
#[derive(Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RemoveConnector {
    /// Its name.
    pub name: String,
}

/// Drops a connector's cached lists and checks it now.
#[derive(Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RefreshConnector {
    /// Its name.
    pub name: String,
}

/// Every connector as operators see it, in name order.
#[derive(Message)]
#[rtype(result = "Vec<ConnectorView>")]
pub struct ListConnectors;

/// Every connector's full settings (secrets as `${VAR}` templates) with where they come from,
/// in name order.
#[derive(Message)]
#[rtype(result = "Vec<(Arc<ConnectorSettings>, Source)>")]
pub struct ListSettings;

/// Resolves once every connector has reported its first check.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AwaitLoaded;

/// A connector's status after a check or a breaker change, with its lists when they changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectorReport {
    /// The connector's name.
    pub connector: String,
    /// Its status.
    pub status: ConnectorStatus,
    /// Its lists, when they changed.
    pub lists: Option<Arc<ConnectorCatalog>>,
}

/// Tells `recipient` of every catalog change until unsubscribed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// The session's id (or the trainer's key).
    pub session: String,
    /// Where changes go.
    pub recipient: Recipient<CatalogChanged>,
}

/// Stops telling a session of catalog changes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    /// The session's id.
    pub session: String,
}

/// The catalog changed in the parts named.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct CatalogChanged(pub Changes);
