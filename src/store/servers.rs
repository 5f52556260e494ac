//! The `servers` table: virtual servers registered through the ops API, as settings JSON.

use diesel::prelude::*;

use super::schema::servers;
use super::AnyConnection;

/// A stored virtual server.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = servers)]
pub struct StoredServer {
    /// Its name.
    pub name: String,
    /// Its settings as JSON.
    pub settings: String,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was last changed.
    pub updated_at_ms: i64,
}

/// Every stored virtual server, in name order.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<StoredServer>> {
    servers::table
        .order(servers::name)
        .select(StoredServer::as_select())
        .load(conn)
}

/// Every stored name with when it last changed, in name order: what a gateway compares to see
/// whether another changed the table.
pub fn stamps(conn: &mut AnyConnection) -> QueryResult<Vec<(String, i64)>> {
    servers::table
        .order(servers::name)
        .select((servers::name, servers::updated_at_ms))
        .load(conn)
}

/// Stores a new one, or replaces the settings of an existing one.
pub fn upsert(conn: &mut AnyConnection, row: &StoredServer) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let updated = diesel::update(servers::table.find(&row.name))
            .set((
                servers::settings.eq(&row.settings),
                servers::updated_at_ms.eq(row.updated_at_ms),
            ))
            .execute(conn)?;
        match updated {
            0 => diesel::insert_into(servers::table)
                .values(row)
                .execute(conn),
            n => Ok(n),
        }
    })
}

/// Deletes one; returns how many rows went.
pub fn delete(conn: &mut AnyConnection, name: &str) -> QueryResult<usize> {
    diesel::delete(servers::table.find(name)).execute(conn)
}
