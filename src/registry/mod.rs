//! The `ConnectorRegistry` actor: the set of connectors and the aggregated catalog.
//!
//! Owns starting, replacing and retiring each [`Connector`] under a supervisor, merging what they
//! report into one [`Catalog`], publishing it as a [`Snapshot`] that request handlers read
//! without a mailbox round trip, and telling subscribed sessions when what they would list has
//! changed. A connector that becomes unavailable leaves the catalog (its names stay known, so
//! calls to them fail fast naming it) and comes back when it recovers. A connector whose actor
//! is gone without being retired (a panic in a handler ends it past its supervisor) is started
//! again from its settings within [`REVIVE_EVERY`] (`revive`). It does not run calls or persist anything:
//! the ops API stores registrations, then tells the registry.

mod messages;
mod revive;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arc_swap::ArcSwap;
use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::oneshot;

pub use messages::*;

use crate::catalog::{Catalog, ConnectorCatalog};
use crate::connector::{
    Connector, ConnectorKind, ConnectorSettings, ConnectorStatus, RefreshCatalog, Retire,
};
use crate::metrics::Metrics;

/// How often the registry looks for connectors whose actor is gone.
pub const REVIVE_EVERY: Duration = Duration::from_secs(1);

/// What request handlers read: the catalog and where each connector lives.
#[derive(Default)]
pub struct Snapshot {
    /// The aggregated catalog.
    pub catalog: Catalog,
    /// Each connector's address by name.
    pub connectors: HashMap<String, Addr<Connector>>,
    /// Why each unavailable connector is unavailable.
    pub unavailable: HashMap<String, String>,
    /// Whether every connector has reported its first check.
    pub loaded: bool,
    /// Connectors that may send messages related to a request (MCP backends).
    pub streaming: HashSet<String>,
}

impl Snapshot {
    /// Whether a request may get messages from its backend before its answer: true when its
    /// target is an MCP backend.
    pub fn streams(&self, method: &str, params: Option<&serde_json::Value>) -> bool {
        let field = |name: &str| params.and_then(|p| p.get(name)).and_then(|v| v.as_str());
        let connector = match method {
            "tools/call" => field("name")
                .and_then(|n| self.catalog.tool(n))
                .map(|e| e.connector.to_string()),
            "prompts/get" => field("name")
                .and_then(|n| self.catalog.prompt(n))
                .map(|e| e.connector.to_string()),
            "resources/read" => field("uri")
                .and_then(|u| u.split_once(':'))
                .map(|(c, _)| c.to_string()),
            "completion/complete" => return true,
            _ => None,
        };
        connector.is_some_and(|c| self.streaming.contains(&c))
    }
}

/// The published snapshot, swapped whole on every change.
pub type CatalogHandle = Arc<ArcSwap<Snapshot>>;

/// Where a connector's registration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `connectors.yaml`: changed only by editing the file.
    File,
    /// The ops API: stored in the database.
    Api,
}

/// What operators see of one connector.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorView {
    /// Its name.
    pub name: String,
    /// Where it was registered.
    pub source: Source,
    /// Its settings, without secrets.
    pub settings: serde_json::Value,
    /// Its health, replicas and breakers.
    pub status: ConnectorStatus,
    /// How many tools, resources and prompts it lists.
    pub tools: usize,
    /// Resources listed.
    pub resources: usize,
    /// Prompts listed.
    pub prompts: usize,
}

/// One connector as the registry keeps it.
struct Slot {
    /// Its actor.
    addr: Addr<Connector>,
    /// Its settings.
    settings: Arc<ConnectorSettings>,
    /// Its resolved headers, to start it again.
    headers: Arc<[(String, SecretString)]>,
    /// Where it was registered.
    source: Source,
    /// Its last good lists.
    lists: Option<Arc<ConnectorCatalog>>,
    /// Its last status; `None` until its first check.
    status: Option<ConnectorStatus>,
}

impl Slot {
    fn available(&self) -> bool {
        self.status.as_ref().is_none_or(|s| s.available)
    }
}

/// The registry actor.
pub struct ConnectorRegistry {
    /// Joins connector and tool names.
    separator: String,
    /// Connectors by name.
    connectors: BTreeMap<String, Slot>,
    /// Where the snapshot is published.
    published: CatalogHandle,
    /// Sessions to tell of changes, by session id.
    subscribers: HashMap<String, Recipient<CatalogChanged>>,
    /// Naming reports already logged.
    logged_reports: HashSet<String>,
    /// Callers waiting for every connector's first check.
    waiting: Vec<oneshot::Sender<()>>,
    /// Metrics handed to connectors and kept current.
    metrics: Arc<Metrics>,
    /// Tool names of the gateway's own (the feedback tool), kept from backends.
    reserved_tools: Vec<String>,
}

impl ConnectorRegistry {
    /// A registry publishing into `published`.
    pub fn new(separator: String, published: CatalogHandle, metrics: Arc<Metrics>) -> Self {
        ConnectorRegistry {
            separator,
            connectors: BTreeMap::new(),
            published,
            subscribers: HashMap::new(),
            logged_reports: HashSet::new(),
            waiting: Vec::new(),
            metrics,
            reserved_tools: Vec::new(),
        }
    }

    /// Keeps the tool names `names` (the gateway's own tools) from backends: a backend's tool
    /// exposed as one of them gets a suffix ([`Catalog::build_reserving`]).
    pub fn reserving_tools(mut self, names: Vec<String>) -> Self {
        self.reserved_tools = names;
        self
    }

    fn start_connector(
        &mut self,
        settings: Arc<ConnectorSettings>,
        headers: Arc<[(String, SecretString)]>,
        source: Source,
        ctx: &mut Context<Self>,
    ) {
        let slot = Slot {
            addr: self.spawn(&settings, &headers, ctx),
            settings: settings.clone(),
            headers,
            source,
            lists: None,
            status: None,
        };
        self.connectors.insert(settings.name.clone(), slot);
        self.publish();
    }

    /// A connector's actor, under a supervisor.
    fn spawn(
        &self,
        settings: &Arc<ConnectorSettings>,
        headers: &Arc<[(String, SecretString)]>,
        ctx: &mut Context<Self>,
    ) -> Addr<Connector> {
        let registry = ctx.address().recipient();
        let metrics = self.metrics.clone();
        let (settings, headers) = (settings.clone(), headers.clone());
        Supervisor::start(move |_| Connector::new(settings, headers, registry, metrics))
    }

    fn retire(&mut self, name: &str) -> Option<Slot> {
        let slot = self.connectors.remove(name)?;
        slot.addr.do_send(Retire);
        let replicas = slot.status.iter().flat_map(|s| &s.replicas);
        self.metrics
            .forget_connector(name, replicas.map(|r| r.url.as_str()));
        Some(slot)
    }

    fn publish(&mut self) {
        let lists: BTreeMap<String, Arc<ConnectorCatalog>> = self
            .connectors
            .iter()
            .filter_map(|(name, slot)| Some((name.clone(), slot.lists.clone()?)))
            .collect();
        let unavailable: HashMap<String, String> = self
            .connectors
            .iter()
            .filter(|(_, slot)| !slot.available())
            .map(|(name, slot)| {
                let reason = slot.status.as_ref().and_then(|s| s.reason.clone());
                (
                    name.clone(),
                    reason.unwrap_or_else(|| "circuit open".into()),
                )
            })
            .collect();
        let names: HashSet<String> = unavailable.keys().cloned().collect();
        let catalog =
            Catalog::build_reserving(&lists, &names, &self.separator, &self.reserved_tools);
        for report in &catalog.reports {
            if self.logged_reports.insert(report.clone()) {
                log::warn!("{report}");
            }
        }
        let changes = self.published.load().catalog.changes_to(&catalog);
        let loaded = self.connectors.values().all(|slot| slot.status.is_some());
        self.published.store(Arc::new(Snapshot {
            catalog,
            connectors: self
                .connectors
                .iter()
                .map(|(name, slot)| (name.clone(), slot.addr.clone()))
                .collect(),
            unavailable,
            loaded,
            streaming: self
                .connectors
                .iter()
                .filter(|(_, slot)| slot.settings.kind != ConnectorKind::Http)
                .map(|(name, _)| name.clone())
                .collect(),
        }));
        if loaded {
            for waiter in self.waiting.drain(..) {
                let _ = waiter.send(());
            }
        }
        if changes.any() {
            for recipient in self.subscribers.values() {
                recipient.do_send(CatalogChanged(changes));
            }
        }
    }

    fn view(name: &str, slot: &Slot) -> ConnectorView {
        let count = |f: fn(&ConnectorCatalog) -> usize| slot.lists.as_deref().map_or(0, f);
        ConnectorView {
            name: name.to_string(),
            source: slot.source,
            settings: slot.settings.redacted(),
            status: slot
                .status
                .clone()
                .unwrap_or_else(|| ConnectorStatus::unknown(Vec::new())),
            tools: count(|c| c.tools.len()),
            resources: count(|c| c.resources.len()),
            prompts: count(|c| c.prompts.len()),
        }
    }
}

impl Actor for ConnectorRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.publish();
        ctx.run_interval(REVIVE_EVERY, |act, ctx| act.revive(ctx));
    }
}

impl Handler<RegisterConnector> for ConnectorRegistry {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, msg: RegisterConnector, ctx: &mut Self::Context) -> Self::Result {
        if self.connectors.contains_key(&msg.settings.name) {
            return Err(RegistryError::Exists(msg.settings.name.clone()));
        }
        self.start_connector(msg.settings, msg.headers, msg.source, ctx);
        Ok(())
    }
}

impl Handler<ReplaceConnector> for ConnectorRegistry {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, msg: ReplaceConnector, ctx: &mut Self::Context) -> Self::Result {
        let name = msg.settings.name.clone();
        match self.connectors.get(&name) {
            None => return Err(RegistryError::NotFound(name)),
            Some(slot) if slot.source == Source::File => return Err(RegistryError::FromFile(name)),
            Some(_) => {}
        }
        self.retire(&name);
        self.start_connector(msg.settings, msg.headers, Source::Api, ctx);
        Ok(())
    }
}

impl Handler<RemoveConnector> for ConnectorRegistry {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, msg: RemoveConnector, _ctx: &mut Self::Context) -> Self::Result {
        match self.connectors.get(&msg.name) {
            None => return Err(RegistryError::NotFound(msg.name)),
            Some(slot) if slot.source == Source::File => {
                return Err(RegistryError::FromFile(msg.name))
            }
            Some(_) => {}
        }
        self.retire(&msg.name);
        log::info!("connector `{}` removed", msg.name);
        self.publish();
        Ok(())
    }
}

impl Handler<RefreshConnector> for ConnectorRegistry {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, msg: RefreshConnector, _ctx: &mut Self::Context) -> Self::Result {
        let slot = self
            .connectors
            .get(&msg.name)
            .ok_or(RegistryError::NotFound(msg.name))?;
        slot.addr.do_send(RefreshCatalog);
        Ok(())
    }
}

impl Handler<ListConnectors> for ConnectorRegistry {
    type Result = MessageResult<ListConnectors>;

    fn handle(&mut self, _msg: ListConnectors, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.connectors
                .iter()
                .map(|(name, slot)| Self::view(name, slot))
                .collect(),
        )
    }
}

impl Handler<ListSettings> for ConnectorRegistry {
    type Result = MessageResult<ListSettings>;

    fn handle(&mut self, _msg: ListSettings, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.connectors
                .values()
                .map(|slot| (slot.settings.clone(), slot.source))
                .collect(),
        )
    }
}

impl Handler<AwaitLoaded> for ConnectorRegistry {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: AwaitLoaded, _ctx: &mut Self::Context) -> Self::Result {
        let (sender, receiver) = oneshot::channel();
        if self.published.load().loaded {
            let _ = sender.send(());
        } else {
            self.waiting.push(sender);
        }
        Box::pin(async move {
            let _ = receiver.await;
        })
    }
}

impl Handler<ConnectorReport> for ConnectorRegistry {
    type Result = ();

    fn handle(&mut self, msg: ConnectorReport, _ctx: &mut Self::Context) {
        let Some(slot) = self.connectors.get_mut(&msg.connector) else {
            return;
        };
        let first = slot.status.is_none();
        let was_available = slot.available();
        let is_available = msg.status.available;
        self.metrics
            .connector_up
            .with_label_values(&[&msg.connector])
            .set(i64::from(is_available));
        for replica in &msg.status.replicas {
            self.metrics
                .breaker_state
                .with_label_values(&[&msg.connector, &replica.url])
                .set(replica.breaker.as_number());
        }
        if was_available != is_available {
            let count = slot.lists.as_ref().map_or(0, |l| l.tools.len());
            if is_available {
                log::info!(
                    "connector `{}` is available again; its {count} tools are back",
                    msg.connector
                );
            } else {
                let reason = msg.status.reason.as_deref().unwrap_or("circuit open");
                log::warn!(
                    "connector `{}` is unavailable ({reason}); its {count} tools leave the catalog",
                    msg.connector
                );
            }
        }
        slot.status = Some(msg.status);
        let lists_changed = msg.lists.is_some();
        if let Some(lists) = msg.lists {
            slot.lists = Some(lists);
        }
        if first || lists_changed || was_available != is_available {
            self.publish();
        }
    }
}

impl Handler<Subscribe> for ConnectorRegistry {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Self::Context) {
        self.subscribers.insert(msg.session, msg.recipient);
    }
}

impl Handler<Unsubscribe> for ConnectorRegistry {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Self::Context) {
        self.subscribers.remove(&msg.session);
    }
}
