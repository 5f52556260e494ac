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

/// Inserts `rows` in one transaction; all or nothing. (Row by row: diesel's multi-backend
/// connection has no multi-row insert; inside one transaction that costs little.)
pub fn insert(conn: &mut AnyConnection, rows: &[NewToolCall]) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let mut written = 0;
        for row in rows {
            written += diesel::insert_into(tool_calls::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(written)
    })
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
