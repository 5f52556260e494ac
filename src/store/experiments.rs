//! The `experiments` table: the live experiments that run, one row per target, with the
//! versions served side by side (production first) and the sessions each was given, written
//! when an experiment starts, updated as sessions join it and removed when it ends.

use diesel::prelude::*;

use super::schema::experiments;
use super::AnyConnection;

/// A running experiment as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = experiments)]
pub struct Stored {
    /// `tool` or `prompt`.
    pub target_kind: String,
    /// The target's name.
    pub target: String,
    /// The arms, a JSON array of `{"version", "sessions"}`, production first.
    pub arms: String,
    /// Share of new sessions that join the draw.
    pub canary: f64,
    /// When it started, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
}

/// Keeps `experiment` in place of what its target had.
pub fn put(conn: &mut AnyConnection, experiment: &Stored) -> QueryResult<()> {
    super::write(conn, |conn| {
        remove(conn, &experiment.target_kind, &experiment.target)?;
        diesel::insert_into(experiments::table)
            .values((
                experiments::target_kind.eq(&experiment.target_kind),
                experiments::target.eq(&experiment.target),
                experiments::arms.eq(&experiment.arms),
                experiments::canary.eq(experiment.canary),
                experiments::started_at_ms.eq(experiment.started_at_ms),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Replaces the arms of the experiment of a target that started at `started_at_ms`, if it is
/// still stored (an experiment that ended, or was replaced, is left as it is).
pub fn set_arms(
    conn: &mut AnyConnection,
    (kind, target, started_at_ms): (&str, &str, i64),
    arms: &str,
) -> QueryResult<()> {
    diesel::update(
        experiments::table
            .filter(experiments::target_kind.eq(kind))
            .filter(experiments::target.eq(target))
            .filter(experiments::started_at_ms.eq(started_at_ms)),
    )
    .set(experiments::arms.eq(arms))
    .execute(conn)?;
    Ok(())
}

/// Forgets the experiment of a target.
pub fn remove(conn: &mut AnyConnection, kind: &str, target: &str) -> QueryResult<()> {
    diesel::delete(
        experiments::table
            .filter(experiments::target_kind.eq(kind))
            .filter(experiments::target.eq(target)),
    )
    .execute(conn)?;
    Ok(())
}

/// Forgets the experiment of a target that started at `started_at_ms`; gives how many rows
/// went (0 when another gateway ended it first).
pub fn remove_started(
    conn: &mut AnyConnection,
    (kind, target, started_at_ms): (&str, &str, i64),
) -> QueryResult<usize> {
    diesel::delete(
        experiments::table
            .filter(experiments::target_kind.eq(kind))
            .filter(experiments::target.eq(target))
            .filter(experiments::started_at_ms.eq(started_at_ms)),
    )
    .execute(conn)
}

/// Every running experiment.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<Stored>> {
    experiments::table.select(Stored::as_select()).load(conn)
}
