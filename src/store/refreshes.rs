//! The `refreshes` table: when each connector's refresh was last asked for through the ops
//! API, by the store's clock, so that every gateway of the store refreshes it.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::refreshes;
use super::{leases, AnyConnection};

/// Notes that `connector`'s refresh is asked for now; gives the time noted.
pub fn ask(conn: &mut AnyConnection, connector: &str) -> QueryResult<i64> {
    let now = leases::now_ms(conn)?;
    diesel::sql_query(
        "INSERT INTO refreshes (connector, asked_at_ms) VALUES ($1, $2) \
         ON CONFLICT (connector) DO UPDATE SET asked_at_ms = excluded.asked_at_ms",
    )
    .bind::<Text, _>(connector)
    .bind::<BigInt, _>(now)
    .execute(conn)?;
    Ok(now)
}

/// Every connector whose refresh was asked for, with when it last was.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<(String, i64)>> {
    refreshes::table
        .select((refreshes::connector, refreshes::asked_at_ms))
        .order(refreshes::connector)
        .load(conn)
}
