//! Which trainer starts runs when several gateways share a PostgreSQL store: the one whose
//! gateway holds the store's `trainer` lease (`trainer.lease_ms`; a SQLite store serves one
//! gateway, which takes none). It is taken at start-up, renewed every third of its length, and
//! given up when the gateway stops; a gateway that dies loses it when it runs out. The other
//! trainers learn from every gateway's feedback ([`super::others`]), serve what is deployed,
//! watch every deployed version and answer runs asked for through the API, but start no run by
//! themselves, so that two trainers never train one target from one trigger.

use std::future::Future;
use std::time::Duration;

use actix::prelude::*;

use super::Trainer;
use crate::store::{self, leases, Pool};

/// The lease's name in the store.
const NAME: &str = "trainer";

/// This gateway's claim on the lease.
#[derive(Clone)]
pub struct Lease {
    /// Who holds it: one id per process.
    holder: String,
    /// How long a taking or a renewal holds.
    length: Duration,
}

impl Lease {
    /// A claim for a new process; none when `length_ms` is 0 (every trainer starts runs).
    pub fn new(length_ms: u64) -> Option<Lease> {
        (length_ms > 0).then(|| Lease {
            holder: uuid::Uuid::new_v4().to_string(),
            length: Duration::from_millis(length_ms),
        })
    }

    /// Takes or renews the lease on a blocking thread; says whether this gateway holds it.
    pub fn take(&self, pool: &Pool) -> impl Future<Output = Result<bool, String>> + 'static {
        let (holder, length) = (self.holder.clone(), self.length);
        store::blocking(pool, move |conn| {
            let now = leases::now_ms(conn)?;
            let until = now.saturating_add(length.as_millis() as i64);
            leases::take(conn, NAME, &holder, now, until)
        })
    }
}

impl Trainer {
    /// This gateway's claim on the lease, to take it at start-up; none without a lease.
    pub fn claim(&self) -> Option<Lease> {
        self.lease.clone()
    }

    /// Records whether this gateway holds the lease, saying so when that changed.
    pub fn lead(&mut self, holds: bool) {
        if holds != self.leading && self.lease.is_some() {
            match holds {
                true => log::info!("this gateway's trainer starts runs (it holds the lease)"),
                false => log::info!(
                    "this gateway's trainer starts no runs by itself (it does not hold the lease)"
                ),
            }
        }
        self.leading = holds;
        let leading = &self.deps.metrics.trainer_leading;
        leading.set(i64::from(holds && self.settings.enabled));
    }

    /// Renews the lease every third of its length, from `ctx`'s start on.
    pub(super) fn keep_lease(&self, ctx: &mut Context<Self>) {
        let Some(lease) = &self.lease else {
            return;
        };
        // A period of 0 would spin; the setting may be as short as 1 ms.
        let every = (lease.length / 3).max(Duration::from_millis(1));
        ctx.run_interval(every, |act, ctx| {
            let Some(lease) = &act.lease else {
                return;
            };
            let taken = lease.take(&act.deps.pool);
            ctx.spawn(taken.into_actor(act).map(|taken, act, ctx| {
                if act.lease.is_none() {
                    return; // given up meanwhile
                }
                match taken {
                    Ok(true) if !act.leading => act.take_over(ctx),
                    Ok(holds) => act.lead(holds),
                    // Unrenewed, it runs out: stop before another may take it.
                    Err(err) => {
                        log::warn!("the trainer's lease was not renewed: {err}");
                        act.lead(false);
                    }
                }
            }));
        });
    }

    /// Starts leading once it has taken up when each target's last run started, by whichever
    /// gateway ran it: a trainer that takes the lease over waits out the cooldown of the runs
    /// the gateway that led before it started, rather than training those targets again on
    /// the same evidence.
    fn take_over(&mut self, ctx: &mut Context<Self>) {
        let window = self.window;
        let read = store::blocking(&self.deps.pool, move |conn| {
            super::restart::last_runs(conn, window)
        });
        ctx.spawn(read.into_actor(self).map(|read, act, _| {
            if act.lease.is_none() {
                return; // given up meanwhile
            }
            match read {
                Ok(runs) => {
                    for (key, at) in runs {
                        let last = act.last_run.entry(key).or_insert(at);
                        *last = (*last).max(at);
                    }
                }
                Err(err) => {
                    log::warn!("the runs of the gateway that led before were not read: {err}")
                }
            }
            act.lead(true);
        }));
    }

    /// Gives the lease up (the gateway stops), so that another gateway's trainer takes over at
    /// its next renewal rather than when the lease runs out. The renewals stop with it.
    pub(super) fn give_up_lease(&mut self) -> Option<impl std::future::Future<Output = ()>> {
        let held = self.leading;
        let holder = self.lease.take()?.holder;
        self.lead(false);
        if !held {
            return None;
        }
        let released = store::blocking(&self.deps.pool, move |conn| {
            leases::release(conn, NAME, &holder)
        });
        Some(async move {
            match released.await {
                Ok(_) => log::info!("the trainer's lease is given up"),
                Err(err) => log::warn!("the trainer's lease was not given up: {err}"),
            }
        })
    }
}
