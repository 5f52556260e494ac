//! What other processes on the same store changed, taken up by this one (several gateways
//! behind a load balancer share PostgreSQL): production versions, the connectors and virtual
//! servers registered through the ops API, and the connectors' refreshes asked for through
//! it. Every `database.sync_interval_ms`:
//! - the newest move of a label is read; when it is not the one seen last, the served versions
//!   are loaded again, so that a version another process deployed or rolled back is served
//!   here too;
//! - the stamps (name, last change) of the stored registrations are read; when they are not
//!   those seen last, this process's registrations are brought in line with the rows
//!   ([`plan`], applied by [`crate::api::follow_connectors`] and
//!   [`crate::api::follow_servers`]);
//! - the times the connectors' refreshes were asked for are read; a connector whose time
//!   changed since the last read, by another process's API, is refreshed here too.

pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web;

use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::registry::RefreshConnector;
use crate::store::{self, connectors, prompts, refreshes, servers, Pool};
use crate::trainer::served::ServedVersions;

/// Looks every `interval` on the current actix system, until it stops or the gateway is shut
/// down; `follower` holds what start-up already took from the store. Between looks it holds
/// the gateway only weakly, so that shutting down drops what the gateway holds (the recorders
/// finish when their senders are gone).
pub fn start(gateway: &web::Data<Gateway>, mut follower: Follower, interval: Duration) {
    let weak = Arc::downgrade(&gateway.clone().into_inner());
    actix_web::rt::spawn(async move {
        // No move has id -1: the first look loads the versions, as start-up did.
        let mut seen = -1;
        let mut ticks = actix_web::rt::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(gateway) = weak.upgrade() else {
                return;
            };
            let (pool, served) = (gateway.pool.clone(), gateway.served.clone());
            let looked = web::block(move || look(&pool, &served, seen)).await;
            match looked.map_err(|e| e.to_string()).and_then(|r| r) {
                Ok(newest) => seen = newest,
                Err(err) => log::warn!("versions deployed by other processes not read: {err}"),
            }
            follower.follow(&gateway).await;
        }
    });
}

/// Loads the served versions again if the newest label move is not `seen`; returns its id
/// (0 when no label ever moved).
fn look(pool: &Pool, served: &ServedVersions, seen: i64) -> Result<i64, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let newest = prompts::newest_move(&mut conn).map_err(|e| e.to_string())?;
    if newest != seen {
        served.reload(pool)?;
    }
    Ok(newest)
}

/// The stored registrations' names with their last change: connectors, then virtual servers.
type Stamps = (Vec<(String, i64)>, Vec<(String, i64)>);

/// The connectors' refreshes this process's API asked for, and when each was noted.
#[derive(Default)]
pub struct Asked(Mutex<HashMap<String, i64>>);

impl Asked {
    /// Notes that the refresh of `connector` was asked for here, noted `at`.
    pub fn note(&self, connector: &str, at: i64) {
        if let Ok(mut asked) = self.0.lock() {
            asked.insert(connector.to_string(), at);
        }
    }

    /// Whether the refresh of `connector` noted `at` was asked for here.
    fn here(&self, connector: &str, at: i64) -> bool {
        self.0
            .lock()
            .is_ok_and(|asked| asked.get(connector) == Some(&at))
    }
}

/// What this process took from the stored registrations.
#[derive(Default)]
pub struct Follower {
    /// The stamps the registrations were last brought in line with; none before the first time.
    stamps: Option<Stamps>,
    /// When each connector's refresh was last asked for, as last read; none before the first
    /// read (what was asked before this process started is not done again).
    refreshes: Option<HashMap<String, i64>>,
    /// Connector rows that could not be applied here.
    connectors: plan::Failed,
    /// Virtual server rows that could not be applied here.
    servers: plan::Failed,
}

impl Follower {
    /// Brings this process's connectors and virtual servers registered through the API in line
    /// with the store, unless its stamps are those seen last time.
    pub async fn follow(&mut self, gateway: &Gateway) {
        let read = store::blocking(&gateway.pool, |conn| {
            let stamps = (connectors::stamps(conn)?, servers::stamps(conn)?);
            Ok((stamps, refreshes::all(conn)?))
        })
        .await;
        let (stamps, asked) = match read {
            Ok(read) => read,
            Err(err) => {
                log::warn!("registrations changed by other processes not read: {err}");
                return;
            }
        };
        self.refresh(gateway, asked.into_iter().collect()).await;
        if self.stamps.as_ref() == Some(&stamps) {
            return;
        }
        // This process's API changes wait, and are waited for: the rows are read under the
        // lock, so a change stored and not yet applied here is never taken for another's.
        let _held = gateway.api_writes.lock().await;
        let followed = match crate::api::follow_connectors(gateway, &mut self.connectors).await {
            Ok(()) => crate::api::follow_servers(gateway, &mut self.servers).await,
            Err(err) => Err(err),
        };
        match followed {
            Ok(()) => self.stamps = Some(stamps),
            Err(err) => log::warn!("registrations changed by other processes not applied: {err}"),
        }
    }
}

impl Follower {
    /// Refreshes the connectors whose refresh another process's API asked for since the last
    /// read.
    async fn refresh(&mut self, gateway: &Gateway, asked: HashMap<String, i64>) {
        if let Some(seen) = &self.refreshes {
            for (name, at) in &asked {
                if seen.get(name) == Some(at) || gateway.refreshes_asked.here(name, *at) {
                    continue;
                }
                let request = RefreshConnector { name: name.clone() };
                match gateway.registry.send(request).await {
                    Ok(Ok(())) => {
                        log::info!("connector `{name}` refreshed, as another gateway was asked")
                    }
                    Ok(Err(_)) => {} // not a connector of this gateway
                    Err(err) => log::warn!("connector `{name}` not refreshed: {err}"),
                }
            }
        }
        self.refreshes = Some(asked);
    }
}

/// Says how a step of following the store went: in the log (naming the registration as
/// `noun`), in `mcpgate_registrations_applied_total` under `kind`, and, for stored settings that
/// failed, in `failed`.
pub fn report(
    step: plan::Step,
    outcome: Result<(), String>,
    (kind, noun): (&'static str, &'static str),
    metrics: &Metrics,
    failed: &mut plan::Failed,
) {
    let verb = step.verb();
    let counted = if outcome.is_ok() { verb } else { "failed" };
    let applied = &metrics.registrations_applied;
    applied.with_label_values(&[kind, counted]).inc();
    match (outcome, step) {
        (Ok(()), step) => log::info!("{noun} `{}` {verb} as stored", step.name()),
        (Err(err), plan::Step::Add(name, settings) | plan::Step::Replace(name, settings)) => {
            log::warn!("stored {noun} `{name}` not applied: {err}");
            failed.insert(name, settings);
        }
        (Err(err), plan::Step::Remove(name)) => {
            log::warn!("{noun} `{name}`, no longer stored, not removed: {err}")
        }
    }
}
