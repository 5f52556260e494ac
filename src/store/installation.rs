//! The `installation` table: values every gateway on the store shares, each made by the first
//! gateway that needs it.

use diesel::prelude::*;

use super::schema::installation;
use super::AnyConnection;

/// The value of `name`: the stored one, or `fresh`, stored now, when there is none (the
/// migrations make `client_key`, so a gateway writes only if the row was deleted). Gateways
/// starting together all get the one stored first.
pub fn value_or(conn: &mut AnyConnection, name: &str, fresh: &str) -> QueryResult<String> {
    // Read first: a write would wait for the write lock (SQLite) whatever else holds it.
    if let Some(value) = stored(conn, name)? {
        return Ok(value);
    }
    // diesel's DSL has no `ON CONFLICT` for a connection that may be either backend.
    diesel::sql_query(
        "INSERT INTO installation (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .bind::<diesel::sql_types::Text, _>(fresh)
    .execute(conn)?;
    stored(conn, name)?.ok_or(diesel::result::Error::NotFound)
}

fn stored(conn: &mut AnyConnection, name: &str) -> QueryResult<Option<String>> {
    installation::table
        .find(name)
        .select(installation::value)
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::SqliteConnection;

    use super::*;

    #[test]
    fn the_first_value_stored_is_the_one_everyone_gets() {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        let table =
            include_str!("../../migrations/sqlite/2026-11-28-000018_create_installation/up.sql");
        conn.batch_execute(table).unwrap();

        let made = value_or(&mut conn, "client_key", "fresh").unwrap();
        let first = value_or(&mut conn, "k", "one").unwrap();
        let second = value_or(&mut conn, "k", "two").unwrap();
        let other = value_or(&mut conn, "other", "three").unwrap();

        assert!(
            made.len() == 32 && made != "fresh",
            "made by the migration: {made}"
        );
        assert_eq!(
            (first, second, other),
            ("one".into(), "one".into(), "three".into())
        );
    }
}
