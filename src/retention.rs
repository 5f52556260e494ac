//! Retention: deletes the call records and feedback rows older than the operator keeps them
//! (`recorder.keep_calls_ms`; `recorder.keep_signals_ms` for the gateway's own signals,
//! `recorder.keep_ratings_ms` for clients' ratings, suggestions and reported errors), at
//! start-up and then every `recorder.prune_interval_ms`, so that the two tables that grow with
//! every call stop growing.
//!
//! The deletes run on a blocking thread, oldest rows first, in statements of at most
//! [`ROWS_PER_DELETE`] rows, so that no statement holds a table (on SQLite, the database) for
//! long while the recorders write. A gateway that stops ends a prune under way after its current
//! statement: a first prune of a large backlog takes minutes, and would otherwise hold the
//! process that long after a stop or a failed start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::web;

use crate::configuration::RecorderSettings;
use crate::metrics::Metrics;
use crate::store::{feedback, tool_calls, AnyConnection, Pool};

/// Rows deleted by one statement at most.
pub const ROWS_PER_DELETE: i64 = 10_000;

/// Records that are kept for a while only, each with a keep of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    /// `tool_calls`, by when a call started.
    Calls,
    /// The gateway's own signals in `feedback` (one per tool call and prompt fetch), by when
    /// they were made.
    Signals,
    /// Clients' rows in `feedback` (ratings, suggestions, reported errors), by when they were
    /// made.
    Ratings,
}

impl Records {
    /// Its name, as in the `records` label of `mcpgate_records_pruned_total`.
    pub fn name(self) -> &'static str {
        match self {
            Records::Calls => "calls",
            Records::Signals => "signals",
            Records::Ratings => "ratings",
        }
    }

    fn delete_before(self, conn: &mut AnyConnection, before_ms: i64) -> diesel::QueryResult<usize> {
        match self {
            Records::Calls => tool_calls::delete_before(conn, before_ms, ROWS_PER_DELETE),
            Records::Signals => feedback::delete_before(conn, before_ms, ROWS_PER_DELETE, true),
            Records::Ratings => feedback::delete_before(conn, before_ms, ROWS_PER_DELETE, false),
        }
    }
}

/// How long each kind of records is kept, in milliseconds; 0 keeps them for ever. Signals come
/// before ratings: once old signals are gone, the old rows left in `feedback` are ratings, which
/// the ratings' delete then finds without stepping over signals.
fn keeps(settings: &RecorderSettings) -> [(Records, u64); 3] {
    [
        (Records::Calls, settings.keep_calls_ms),
        (Records::Signals, settings.keep_signals_ms),
        (Records::Ratings, settings.keep_ratings_ms),
    ]
}

/// Deletes, kind by kind, the records older than `now_ms` less their keep; gives how many went
/// of each kind that has a keep. Once `stop` is set no further statement starts, and what went
/// until then is given.
pub fn prune(
    pool: &Pool,
    keeps: &[(Records, u64)],
    now_ms: i64,
    stop: &AtomicBool,
) -> Result<Vec<(Records, u64)>, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let mut pruned = Vec::new();
    for &(records, keep) in keeps.iter().filter(|(_, keep)| *keep > 0) {
        let before = now_ms.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
        let mut deleted = 0;
        while !stop.load(Ordering::Relaxed) {
            let n = records
                .delete_before(&mut conn, before)
                .map_err(|e| format!("deleting old {}: {e}", records.name()))?;
            deleted += n as u64;
            if (n as i64) < ROWS_PER_DELETE {
                break;
            }
        }
        pruned.push((records, deleted));
    }
    Ok(pruned)
}

/// Sets its flag when dropped: the prune task owns it, so the flag is set when the task ends
/// with the runtime, which then waits only for the statement under way.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Prunes at once and then every `recorder.prune_interval_ms` on the current actix system, until
/// it stops; nothing when every kind is kept for ever. A store that is away is tried again at
/// the next interval.
pub fn start(pool: Pool, settings: &RecorderSettings, metrics: Arc<Metrics>) {
    let keeps = keeps(settings);
    if keeps.iter().all(|(_, keep)| *keep == 0) {
        return;
    }
    let interval = settings.prune_interval();
    actix_web::rt::spawn(async move {
        let stop = StopOnDrop(Arc::default());
        let mut ticks = actix_web::rt::time::interval(interval);
        // A prune that outlasts the interval is followed by one interval of rest, not a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let pool = pool.clone();
            let now = crate::connector::now_ms();
            let stopping = stop.0.clone();
            let pruned = web::block(move || prune(&pool, &keeps, now, &stopping)).await;
            match pruned.map_err(|e| e.to_string()).and_then(|r| r) {
                Ok(pruned) => {
                    for (records, n) in pruned.into_iter().filter(|(_, n)| *n > 0) {
                        let counter = metrics.records_pruned.with_label_values(&[records.name()]);
                        counter.inc_by(n);
                        log::info!("deleted {n} {} past their keep", records.name());
                    }
                }
                Err(err) => log::warn!("old records not deleted: {err}"),
            }
        }
    });
}
