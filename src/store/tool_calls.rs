//! The `tool_calls` table: one row per tools/call routed to a connector.

use diesel::prelude::*;

use super::schema::tool_calls;
use super::AnyConnection;

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The tool ran and succeeded.
    Ok,
    /// The tool ran and reported a failure (`isError: true`).
    ToolError,
    /// The call did not get a tool result (backend unavailable, bad response, …).
    Error,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Error => "error",
        }
    }
}

/// A row to insert.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = tool_calls)]
pub struct NewToolCall {
    /// The connector that served it.
    pub connector: String,
    /// The backend's own tool name.
    pub tool: String,
    /// The client session, if any.
    pub session_id: Option<String>,
    /// When it started, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// How long it took, microseconds.
    pub duration_us: i64,
    /// `ok`, `tool_error` or `error`.
    pub outcome: String,
    /// For `error`: `timeout`, `unreachable`, `bad_response`, …
    pub error_kind: Option<String>,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tool_calls)]
pub struct ToolCall {
    /// Row id.
    pub id: i64,
    /// The connector that served it.
    pub connector: String,
    /// The backend's own tool name.
    pub tool: String,
    /// The client session, if any.
    pub session_id: Option<String>,
    /// When it started, milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// How long it took, microseconds.
    pub duration_us: i64,
    /// `ok`, `tool_error` or `error`.
    pub outcome: String,
    /// For `error`: what kind.
    pub error_kind: Option<String>,
}

/// Inserts `rows` in one transaction; all or nothing. On PostgreSQL as multi-row `INSERT`s of
/// at most [`ROWS_PER_INSERT`](super::ROWS_PER_INSERT) rows, on SQLite row by row.
pub fn insert(conn: &mut AnyConnection, rows: &[NewToolCall]) -> QueryResult<usize> {
    super::insert_rows!(conn, tool_calls::table, rows)
}

/// Deletes at most `limit` of the rows that started before `before_ms`, oldest first; gives how
/// many went.
pub fn delete_before(conn: &mut AnyConnection, before_ms: i64, limit: i64) -> QueryResult<usize> {
    super::delete_oldest(
        conn,
        "tool_calls",
        "started_at_ms",
        "TRUE",
        before_ms,
        limit,
    )
}

/// The newest `limit` rows, newest first.
pub fn recent(conn: &mut AnyConnection, limit: i64) -> QueryResult<Vec<ToolCall>> {
    tool_calls::table
        .order(tool_calls::id.desc())
        .limit(limit)
        .select(ToolCall::as_select())
        .load(conn)
}

/// How many rows there are.
pub fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
    tool_calls::table.count().get_result(conn)
}

/// Error rate and latency percentiles of one connector's calls in a window.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WindowStats {
    /// Calls started in the window.
    pub calls: i64,
    /// Calls that did not end `ok`.
    pub errors: i64,
    /// `errors / calls` (0 without calls).
    pub error_rate: f64,
    /// Median latency, milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
}

/// Stats of `connector`'s calls started at or after `since_ms`. Percentiles are nearest-rank,
/// each found by the database with one ordered, offset query, so no rows are shipped.
pub fn window_stats(
    conn: &mut AnyConnection,
    connector: &str,
    since_ms: i64,
) -> QueryResult<WindowStats> {
    let in_window = || {
        tool_calls::table
            .filter(tool_calls::connector.eq(connector.to_string()))
            .filter(tool_calls::started_at_ms.ge(since_ms))
    };
    let calls: i64 = in_window().count().get_result(conn)?;
    let errors: i64 = in_window()
        .filter(tool_calls::outcome.ne("ok"))
        .count()
        .get_result(conn)?;
    let mut percentile = |p: f64| -> QueryResult<Option<f64>> {
        if calls == 0 {
            return Ok(None);
        }
        let rank = ((p * calls as f64).ceil() as i64).clamp(1, calls);
        let micros: i64 = in_window()
            .order(tool_calls::duration_us.asc())
            .select(tool_calls::duration_us)
            .offset(rank - 1)
            .limit(1)
            .get_result(conn)?;
        Ok(Some(micros as f64 / 1000.0))
    };
    let (p50_ms, p95_ms, p99_ms) = (percentile(0.50)?, percentile(0.95)?, percentile(0.99)?);
    Ok(WindowStats {
        calls,
        errors,
        error_rate: if calls == 0 {
            0.0
        } else {
            errors as f64 / calls as f64
        },
        p50_ms,
        p95_ms,
        p99_ms,
    })
}
