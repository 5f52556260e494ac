//! The `connectors` table: connectors registered through the ops API, as their settings JSON.

use diesel::prelude::*;

use super::schema::connectors;
use super::AnyConnection;

/// A stored registration.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = connectors)]
pub struct StoredConnector {
    /// The connector's name.
    pub name: String,
    /// Its settings as JSON (header values as written, `${VAR}` unresolved).
    pub settings: String,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was last changed.
    pub updated_at_ms: i64,
}

/// Every stored registration, in name order.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<StoredConnector>> {
    connectors::table
        .order(connectors::name)
        .select(StoredConnector::as_select())
        .load(conn)
}

/// Every stored name with when it last changed, in name order: what a gateway compares to see
/// whether another changed the table.
pub fn stamps(conn: &mut AnyConnection) -> QueryResult<Vec<(String, i64)>> {
    connectors::table
        .order(connectors::name)
        .select((connectors::name, connectors::updated_at_ms))
        .load(conn)
}

/// Stores a new registration; a name already stored is a unique violation.
pub fn insert(conn: &mut AnyConnection, row: &StoredConnector) -> QueryResult<usize> {
    diesel::insert_into(connectors::table)
        .values(row)
        .execute(conn)
}

/// Replaces the settings of `name`; returns how many rows changed (0 when unknown).
pub fn update(
    conn: &mut AnyConnection,
    name: &str,
    settings: &str,
    now_ms: i64,
) -> QueryResult<usize> {
    diesel::update(connectors::table.find(name))
        .set((
            connectors::settings.eq(settings),
            connectors::updated_at_ms.eq(now_ms),
        ))
        .execute(conn)
}

/// Deletes `name`; returns how many rows went.
pub fn delete(conn: &mut AnyConnection, name: &str) -> QueryResult<usize> {
    diesel::delete(connectors::table.find(name)).execute(conn)
}
