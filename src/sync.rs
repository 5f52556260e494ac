//! What other processes on the same store changed, taken up by this one (several gateways
//! behind a load balancer share PostgreSQL): production versions. Every
//! `database.sync_interval_ms` the newest move of a label is read; when it is not the one seen
//! last, the served versions are loaded again, so that a version another process deployed or
//! rolled back is served here too.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::store::{prompts, Pool};
use crate::trainer::served::ServedVersions;

/// Looks every `interval` on the current actix system, until it stops.
pub fn start(pool: Pool, served: Arc<ServedVersions>, interval: Duration) {
    actix_web::rt::spawn(async move {
        // No move has id -1: the first look loads the versions, as start-up did.
        let mut seen = -1;
        let mut ticks = actix_web::rt::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (pool, served) = (pool.clone(), served.clone());
            let looked = web::block(move || look(&pool, &served, seen)).await;
            match looked.map_err(|e| e.to_string()).and_then(|r| r) {
                Ok(newest) => seen = newest,
                Err(err) => log::warn!("versions deployed by other processes not read: {err}"),
            }
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
