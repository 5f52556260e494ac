//! The `training_runs` table: each run's trigger, approach, reason, evaluation and outcome.

use diesel::prelude::*;

use super::schema::training_runs;
use super::AnyConnection;

/// A run to store.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = training_runs)]
pub struct NewRun {
    /// `tool` or `prompt`.
    pub target_kind: String,
    /// The target's name.
    pub target: String,
    /// What started it (`error_rate`, `low_rating`, `manual`).
    pub trigger: String,
    /// `few-shot`, `adversarial`, `meta-prompt`, or `none`.
    pub approach: String,
    /// Why that approach, or why nothing was done.
    pub reason: String,
    /// `deployed`, `rejected`, `skipped`, `rolled_back`.
    pub outcome: String,
    /// The version it produced, if any.
    pub candidate_version: Option<i64>,
    /// The evaluation as JSON, if one ran.
    pub evaluation: Option<String>,
    /// When it started, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// The LLM calls it made.
    pub llm_calls: i32,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = training_runs)]
pub struct Run {
    /// Row id.
    pub id: i64,
    /// `tool` or `prompt`.
    pub target_kind: String,
    /// The target's name.
    pub target: String,
    /// What started it.
    pub trigger: String,
    /// The approach.
    pub approach: String,
    /// Why.
    pub reason: String,
    /// How it ended.
    pub outcome: String,
    /// The version it produced.
    pub candidate_version: Option<i64>,
    /// The evaluation as JSON text.
    pub evaluation: Option<String>,
    /// When it started.
    pub started_at_ms: i64,
    /// The LLM calls it made.
    pub llm_calls: i32,
}

/// Stores a run.
pub fn insert(conn: &mut AnyConnection, run: &NewRun) -> QueryResult<usize> {
    diesel::insert_into(training_runs::table)
        .values(run)
        .execute(conn)
}

/// The newest `limit` runs, newest first.
pub fn recent(conn: &mut AnyConnection, limit: i64) -> QueryResult<Vec<Run>> {
    training_runs::table
        .order(training_runs::id.desc())
        .limit(limit)
        .select(Run::as_select())
        .load(conn)
}

/// The runs that name `version` of a target as their candidate (the run that made it, a live
/// experiment's conclusion, a check of a deploy by hand), oldest first.
pub fn naming(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
    version: i64,
) -> QueryResult<Vec<Run>> {
    training_runs::table
        .filter(training_runs::target_kind.eq(kind))
        .filter(training_runs::target.eq(target))
        .filter(training_runs::candidate_version.eq(version))
        .order(training_runs::id.asc())
        .select(Run::as_select())
        .load(conn)
}

/// When each run that made LLM calls since `since_ms` started, and how many it made, oldest
/// first.
pub fn llm_calls_since(conn: &mut AnyConnection, since_ms: i64) -> QueryResult<Vec<(i64, i32)>> {
    training_runs::table
        .filter(training_runs::started_at_ms.ge(since_ms))
        .filter(training_runs::llm_calls.gt(0))
        .order(training_runs::started_at_ms.asc())
        .select((training_runs::started_at_ms, training_runs::llm_calls))
        .load(conn)
}

/// A target's kind and name, a trigger, and when the target's last run of that trigger started.
pub type LastStarted = (String, String, String, Option<i64>);

/// When each target's last run of each trigger since `since_ms` started.
pub fn last_started_by_trigger(
    conn: &mut AnyConnection,
    since_ms: i64,
) -> QueryResult<Vec<LastStarted>> {
    training_runs::table
        .filter(training_runs::started_at_ms.ge(since_ms))
        .group_by((
            training_runs::target_kind,
            training_runs::target,
            training_runs::trigger,
        ))
        .select((
            training_runs::target_kind,
            training_runs::target,
            training_runs::trigger,
            diesel::dsl::max(training_runs::started_at_ms),
        ))
        .load(conn)
}
