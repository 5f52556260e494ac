//! The `session_holders` table: which gateway process holds each client session (and each
//! stateless request waiting for its client's input), and the URL the other gateways forward
//! its requests to. Each is named by a keyed hash of its id or `requestState`, never by the
//! secret itself.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::session_holders;
use super::AnyConnection;

/// Notes that `holder`, reached at `url`, holds the session `key` (replacing any older row).
pub fn put(
    conn: &mut AnyConnection,
    key: &str,
    (holder, url): (&str, &str),
    now_ms: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO session_holders (session_key, holder, url, created_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (session_key) DO UPDATE \
         SET holder = excluded.holder, url = excluded.url, created_at_ms = excluded.created_at_ms",
    )
    .bind::<Text, _>(key)
    .bind::<Text, _>(holder)
    .bind::<Text, _>(url)
    .bind::<BigInt, _>(now_ms)
    .execute(conn)
}

/// The holder of the session `key` and its URL, if one is noted.
pub fn of(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<(String, String)>> {
    session_holders::table
        .filter(session_holders::session_key.eq(key))
        .select((session_holders::holder, session_holders::url))
        .first(conn)
        .optional()
}

/// Forgets the session `key` if `holder` holds it.
pub fn remove(conn: &mut AnyConnection, key: &str, holder: &str) -> QueryResult<usize> {
    diesel::delete(
        session_holders::table
            .filter(session_holders::session_key.eq(key))
            .filter(session_holders::holder.eq(holder)),
    )
    .execute(conn)
}

/// Forgets what holders without a live presence lease (`presence` followed by the holder, in
/// the `leases` table) hold, and those leases once run out, at `now_ms` of the store's clock;
/// gives how many notes went.
pub fn prune(conn: &mut AnyConnection, presence: &str, now_ms: i64) -> QueryResult<usize> {
    let pruned = diesel::sql_query(
        "DELETE FROM session_holders WHERE NOT EXISTS (SELECT 1 FROM leases          WHERE leases.name = $1 || session_holders.holder AND leases.until_ms >= $2)",
    )
    .bind::<Text, _>(presence)
    .bind::<BigInt, _>(now_ms)
    .execute(conn)?;
    diesel::sql_query("DELETE FROM leases WHERE name LIKE $1 || '%' AND until_ms < $2")
        .bind::<Text, _>(presence)
        .bind::<BigInt, _>(now_ms)
        .execute(conn)?;
    Ok(pruned)
}

/// Forgets every session `holder` holds; gives how many.
pub fn remove_all(conn: &mut AnyConnection, holder: &str) -> QueryResult<usize> {
    diesel::delete(session_holders::table.filter(session_holders::holder.eq(holder))).execute(conn)
}
