//! Retention: deletes the call records and feedback rows older than the operator keeps them
//! (`recorder.keep_calls_ms`, `recorder.keep_feedback_ms`), at start-up and then every
//! `recorder.prune_interval_ms`, so that the two tables that grow with every call stop growing.
//!
//! The deletes run on a blocking thread, oldest rows first, in statements of at most
//! [`ROWS_PER_DELETE`] rows, so that no statement holds a table (on SQLite, the database) for
//! long while the recorders write.

use std::sync::Arc;

use actix_web::web;

use crate::configuration::RecorderSettings;
use crate::metrics::Metrics;
use crate::store::{feedback, tool_calls, AnyConnection, Pool};

/// Rows deleted by one statement at most.
pub const ROWS_PER_DELETE: i64 = 10_000;

/// A table whose rows are kept for a while only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `tool_calls`, by when a call started.
    ToolCalls,
    /// `feedback`, by when a row was made.
    Feedback,
}

impl Table {
    /// Its name, as in the store and the `table` label of `mcpgate_records_pruned_total`.
    pub fn name(self) -> &'static str {
        match self {
            Table::ToolCalls => "tool_calls",
            Table::Feedback => "feedback",
        }
    }

    fn delete_before(self, conn: &mut AnyConnection, before_ms: i64) -> diesel::QueryResult<usize> {
        match self {
            Table::ToolCalls => tool_calls::delete_before(conn, before_ms, ROWS_PER_DELETE),
            Table::Feedback => feedback::delete_before(conn, before_ms, ROWS_PER_DELETE),
        }
    }
}

/// How long each table's rows are kept, in milliseconds; 0 keeps them for ever.
fn keeps(settings: &RecorderSettings) -> [(Table, u64); 2] {
    [
        (Table::ToolCalls, settings.keep_calls_ms),
        (Table::Feedback, settings.keep_feedback_ms),
    ]
}

/// Deletes, table by table, the rows older than `now_ms` less their keep; gives how many went
/// from each table that has a keep.
pub fn prune(
    pool: &Pool,
    keeps: [(Table, u64); 2],
    now_ms: i64,
) -> Result<Vec<(Table, u64)>, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let mut pruned = Vec::new();
    for (table, keep) in keeps.into_iter().filter(|(_, keep)| *keep > 0) {
        let before = now_ms.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
        let mut deleted = 0;
        loop {
            let n = table
                .delete_before(&mut conn, before)
                .map_err(|e| format!("deleting old {} rows: {e}", table.name()))?;
            deleted += n as u64;
            if (n as i64) < ROWS_PER_DELETE {
                break;
            }
        }
        pruned.push((table, deleted));
    }
    Ok(pruned)
}

/// Prunes at once and then every `recorder.prune_interval_ms` on the current actix system, until
/// it stops; nothing when every table is kept for ever. A store that is away is tried again at
/// the next interval.
pub fn start(pool: Pool, settings: &RecorderSettings, metrics: Arc<Metrics>) {
    let keeps = keeps(settings);
    if keeps.iter().all(|(_, keep)| *keep == 0) {
        return;
    }
    let interval = settings.prune_interval();
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(interval);
        // A prune that outlasts the interval is followed by one interval of rest, not a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let pool = pool.clone();
            let now = crate::connector::now_ms();
            let pruned = web::block(move || prune(&pool, keeps, now)).await;
            match pruned.map_err(|e| e.to_string()).and_then(|r| r) {
                Ok(pruned) => {
                    for (table, n) in pruned.into_iter().filter(|(_, n)| *n > 0) {
                        let counter = metrics.records_pruned.with_label_values(&[table.name()]);
                        counter.inc_by(n);
                        log::info!("deleted {n} {} rows past their keep", table.name());
                    }
                }
                Err(err) => log::warn!("old records not deleted: {err}"),
            }
        }
    });
}
