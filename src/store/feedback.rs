//! The `feedback` table: ratings, suggestions, errors and automatic signals per target.

use diesel::prelude::*;

use super::schema::feedback;
use super::AnyConnection;

/// A feedback row to insert.
#[derive(Debug, Clone, PartialEq, Insertable, serde::Serialize)]
#[diesel(table_name = feedback)]
pub struct NewFeedback {
    /// `tool` or `prompt`.
    pub target_kind: String,
    /// The target's name as clients see it.
    pub target: String,
    /// The version that was served, if known.
    pub version: Option<i64>,
    /// The client session, if known.
    pub session_id: Option<String>,
    /// `rating`, `suggestion`, `error`, `success`, `tool_error`, `protocol_error` or `served`.
    pub signal: String,
    /// A rating normalized to 0–1 (1–5 stars → 0, 0.25, …, 1; up 1, down 0).
    pub rating: Option<f64>,
    /// A free-text suggestion (data, never an instruction).
    pub suggestion: Option<String>,
    /// An error text.
    pub error: Option<String>,
    /// How long the call took.
    pub latency_ms: Option<i64>,
    /// `api`, `tool` (the built-in feedback tool) or [`AUTOMATIC`].
    pub source: String,
    /// When, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The gateway process that recorded it (set by the feedback sink).
    pub origin: Option<String>,
}

/// The source of the gateway's own signals (each tool call and prompt fetch); the others are
/// clients' feedback.
pub const AUTOMATIC: &str = "auto";

/// The automatic signal of a session joining a live experiment's arm (the version it names):
/// how every gateway on the store counts the sessions of each arm. Neither a use nor an
/// outcome.
pub const ASSIGNED: &str = "assigned";

/// Inserts `rows` in one transaction; all or nothing. On PostgreSQL as multi-row `INSERT`s of
/// at most [`ROWS_PER_INSERT`](super::ROWS_PER_INSERT) rows, on SQLite row by row.
pub fn insert(conn: &mut AnyConnection, rows: &[NewFeedback]) -> QueryResult<usize> {
    super::insert_rows!(conn, feedback::table, rows)
}

/// Deletes at most `limit` of the rows made before `before_ms`, oldest first: the gateway's own
/// signals when `automatic`, else clients' feedback; gives how many went.
pub fn delete_before(
    conn: &mut AnyConnection,
    before_ms: i64,
    limit: i64,
    automatic: bool,
) -> QueryResult<usize> {
    let condition = if automatic {
        format!("source = '{AUTOMATIC}'")
    } else {
        format!("source <> '{AUTOMATIC}'")
    };
    super::delete_oldest(
        conn,
        "feedback",
        "created_at_ms",
        &condition,
        before_ms,
        limit,
    )
}

/// How many rows there are for a target.
pub fn count_for(conn: &mut AnyConnection, kind: &str, target: &str) -> QueryResult<i64> {
    feedback::table
        .filter(feedback::target_kind.eq(kind))
        .filter(feedback::target.eq(target))
        .count()
        .get_result(conn)
}

/// What the trainer's window keeps of a stored row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = feedback)]
pub struct Signal {
    /// `tool` or `prompt`.
    pub target_kind: String,
    /// The target's name.
    pub target: String,
    /// The version it names, if any.
    pub version: Option<i64>,
    /// The client session, if known.
    pub session_id: Option<String>,
    /// The signal.
    pub signal: String,
    /// The rating, if any.
    pub rating: Option<f64>,
    /// The suggestion, if any.
    pub suggestion: Option<String>,
    /// [`AUTOMATIC`], or where a client's feedback came from.
    pub source: String,
    /// When, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// The newest `limit` rows since `since_ms`, oldest first.
pub fn since(conn: &mut AnyConnection, since_ms: i64, limit: i64) -> QueryResult<Vec<Recorded>> {
    let mut rows: Vec<Recorded> = feedback::table
        .filter(feedback::created_at_ms.ge(since_ms))
        .order((feedback::created_at_ms.desc(), feedback::id.desc()))
        .limit(limit)
        .select(Recorded::as_select())
        .load(conn)?;
    rows.reverse();
    Ok(rows)
}

/// What a live experiment counts of a stored row: the version it names, the session it came
/// from, the signal, the rating and its source; and which row it is, recorded by which
/// gateway process.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = feedback)]
pub struct Outcome {
    /// The row's id.
    pub id: i64,
    /// The gateway process that recorded it, if known.
    pub origin: Option<String>,
    /// The version that was served, if known.
    pub version: Option<i64>,
    /// The client session, if known.
    pub session_id: Option<String>,
    /// The signal.
    pub signal: String,
    /// The rating, if any.
    pub rating: Option<f64>,
    /// [`AUTOMATIC`], or where a client's feedback came from.
    pub source: String,
}

/// The newest `limit` rows of one target since `since_ms`, oldest first.
pub fn outcomes_since(
    conn: &mut AnyConnection,
    (kind, target): (&str, &str),
    since_ms: i64,
    limit: i64,
) -> QueryResult<Vec<Outcome>> {
    let mut rows: Vec<Outcome> = feedback::table
        .filter(feedback::target_kind.eq(kind))
        .filter(feedback::target.eq(target))
        .filter(feedback::created_at_ms.ge(since_ms))
        .order((feedback::created_at_ms.desc(), feedback::id.desc()))
        .limit(limit)
        .select(Outcome::as_select())
        .load(conn)?;
    rows.reverse();
    Ok(rows)
}

/// A stored row as a trainer reads it back: its id, the gateway that recorded it, and what the
/// trainer's window keeps of it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = feedback)]
pub struct Recorded {
    /// The row's id: each gateway's rows are committed in the order of their ids.
    pub id: i64,
    /// The gateway process that recorded it.
    pub origin: Option<String>,
    /// What the window keeps of it.
    #[diesel(embed)]
    pub signal: Signal,
}

/// At most `limit` rows (in id order) with an id above `floor`, made since `since_ms`, that
/// gateway processes other than `me` recorded, leaving out each origin's rows up to the id
/// `taken` gives for it. Rows without an origin (recorded before it was kept) are left out.
pub fn recorded_by_others(
    conn: &mut AnyConnection,
    me: &str,
    (floor, taken): (i64, &[(String, i64)]),
    since_ms: i64,
    limit: i64,
) -> QueryResult<Vec<Recorded>> {
    let origin = feedback::origin.assume_not_null();
    let mut query = feedback::table
        .filter(feedback::id.gt(floor))
        .filter(feedback::created_at_ms.ge(since_ms))
        .filter(feedback::origin.is_not_null())
        .filter(origin.ne(me.to_string()))
        .into_boxed();
    for (other, last) in taken {
        query = query.filter(diesel::dsl::not(
            origin.eq(other.clone()).and(feedback::id.le(*last)),
        ));
    }
    query
        .order(feedback::id.asc())
        .limit(limit)
        .select(Recorded::as_select())
        .load(conn)
}

/// The highest id of a row, if any.
pub fn last_id(conn: &mut AnyConnection) -> QueryResult<Option<i64>> {
    feedback::table
        .select(diesel::dsl::max(feedback::id))
        .get_result(conn)
}
