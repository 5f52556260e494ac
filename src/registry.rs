//! The `ConnectorRegistry` actor: the set of connectors and the aggregated catalog.
//!
//! Owns starting each [`Connector`] under a supervisor, merging what they report into one
//! [`Catalog`], publishing it as a [`Snapshot`] that request handlers read without a mailbox round
//! trip, and telling subscribed sessions when what they would list has changed. It does not run
//! calls: a session routes a call to the connector that the snapshot names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;
use secrecy::SecretString;

use crate::catalog::{Catalog, Changes, ConnectorCatalog};
use crate::connector::{Connector, ConnectorError, ConnectorSettings};

/// What request handlers read: the catalog and where each connector lives.
#[derive(Default)]
pub struct Snapshot {
    /// The aggregated catalog.
    pub catalog: Catalog,
    /// Each connector's address by name.
    pub connectors: HashMap<String, Addr<Connector>>,
    /// Whether every connector has reported its first load (success or failure).
    pub loaded: bool,
}

/// The published snapshot, swapped whole on every change.
pub type CatalogHandle = Arc<ArcSwap<Snapshot>>;

/// Starts a connector and adds it to the catalog once it has loaded.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterConnector {
    /// Its settings.
    pub settings: Arc<ConnectorSettings>,
    /// Its headers with secrets resolved.
    pub headers: Arc<[(String, SecretString)]>,
}

/// A connector loaded its lists, or failed to.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatalogLoaded {
    /// The connector's name.
    pub connector: String,
    /// Its lists, or why they could not be loaded.
    pub result: Result<Arc<ConnectorCatalog>, ConnectorError>,
}

/// Tells `recipient` of every catalog change until unsubscribed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// The session's id.
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

/// One connector as the registry keeps it.
struct Slot {
    /// Its actor.
    addr: Addr<Connector>,
    /// Its last good lists.
    lists: Option<Arc<ConnectorCatalog>>,
    /// Whether it has reported at least once.
    reported: bool,
    /// Whether its last load failed (to log a failure once, not on every retry).
    failing: bool,
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
}

impl ConnectorRegistry {
    /// A registry publishing into `published`.
    pub fn new(separator: String, published: CatalogHandle) -> Self {
        ConnectorRegistry {
            separator,
            connectors: BTreeMap::new(),
            published,
            subscribers: HashMap::new(),
            logged_reports: HashSet::new(),
        }
    }

    fn publish(&mut self) {
        let lists: BTreeMap<String, Arc<ConnectorCatalog>> = self
            .connectors
            .iter()
            .filter_map(|(name, slot)| Some((name.clone(), slot.lists.clone()?)))
            .collect();
        let catalog = Catalog::build(&lists, &self.separator);
        for report in &catalog.reports {
            if self.logged_reports.insert(report.clone()) {
                log::warn!("{report}");
            }
        }
        let changes = self.published.load().catalog.changes_to(&catalog);
        self.published.store(Arc::new(Snapshot {
            catalog,
            connectors: self
                .connectors
                .iter()
                .map(|(name, slot)| (name.clone(), slot.addr.clone()))
                .collect(),
            loaded: self.connectors.values().all(|slot| slot.reported),
        }));
        if changes.any() {
            for recipient in self.subscribers.values() {
                recipient.do_send(CatalogChanged(changes));
            }
        }
    }
}

impl Actor for ConnectorRegistry {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.publish();
    }
}

impl Handler<RegisterConnector> for ConnectorRegistry {
    type Result = ();

    fn handle(&mut self, msg: RegisterConnector, ctx: &mut Self::Context) {
        let name = msg.settings.name.clone();
        let registry = ctx.address().recipient();
        let addr = Supervisor::start(move |_| {
            Connector::new(msg.settings.clone(), msg.headers.clone(), registry)
        });
        let slot = Slot {
            addr,
            lists: None,
            reported: false,
            failing: false,
        };
        self.connectors.insert(name, slot);
        self.publish();
    }
}

impl Handler<CatalogLoaded> for ConnectorRegistry {
    type Result = ();

    fn handle(&mut self, msg: CatalogLoaded, _ctx: &mut Self::Context) {
        let Some(slot) = self.connectors.get_mut(&msg.connector) else {
            return;
        };
        let first = !slot.reported;
        slot.reported = true;
        match msg.result {
            Ok(lists) => {
                if slot.failing {
                    log::info!("connector `{}` loads its lists again", msg.connector);
                }
                slot.failing = false;
                if !first && slot.lists.as_deref() == Some(&*lists) {
                    return;
                }
                slot.lists = Some(lists);
            }
            Err(err) => {
                if !slot.failing {
                    log::warn!("{err}; its lists will be retried");
                }
                slot.failing = true;
                if !first {
                    return;
                }
            }
        }
        self.publish();
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
