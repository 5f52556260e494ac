//! The `leases` table: what one gateway of those sharing the store holds for a while (the
//! trainer's lease), taken and renewed in one statement on either backend. Its times are the
//! store's clock's ([`now_ms`]), so gateways whose clocks disagree still agree on who holds it.

use diesel::sql_types::{BigInt, Text};
use diesel::RunQueryDsl;

use super::AnyConnection;

/// Takes or renews the lease `name` for `holder` until `until_ms`, unless another holder's is
/// still good at `now_ms`; says whether `holder` holds it now.
pub fn take(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> diesel::QueryResult<bool> {
    let written = diesel::sql_query(
        "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
         WHERE leases.holder = excluded.holder OR leases.until_ms < $4",
    )
    .bind::<Text, _>(name)
    .bind::<Text, _>(holder)
    .bind::<BigInt, _>(until_ms)
    .bind::<BigInt, _>(now_ms)
    .execute(conn)?;
    Ok(written == 1)
}

/// The store's clock, in milliseconds since the Unix epoch.
pub fn now_ms(conn: &mut AnyConnection) -> diesel::QueryResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct Now {
        #[diesel(sql_type = BigInt)]
        ms: i64,
    }
    let query = match conn {
        AnyConnection::Postgresql(_) => {
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS ms"
        }
        AnyConnection::Sqlite(_) => {
            "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS ms"
        }
    };
    Ok(diesel::sql_query(query).get_result::<Now>(conn)?.ms)
}

/// Gives up the lease `name` if `holder` holds it.
pub fn release(conn: &mut AnyConnection, name: &str, holder: &str) -> diesel::QueryResult<usize> {
    diesel::sql_query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind::<Text, _>(name)
        .bind::<Text, _>(holder)
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};

    use super::*;

    fn sqlite() -> AnyConnection {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        let table = include_str!("../../migrations/sqlite/2026-11-28-000017_create_leases/up.sql");
        conn.batch_execute(table).unwrap();
        conn
    }

    #[test]
    fn the_stores_clock_is_the_time_of_day() {
        let mut conn = sqlite();
        let before = crate::connector::now_ms();

        let now = now_ms(&mut conn).unwrap();

        let after = crate::connector::now_ms();
        // julianday keeps milliseconds; a few may be lost to rounding.
        assert!(
            before - 5 <= now && now <= after + 5,
            "{before} {now} {after}"
        );
    }

    #[test]
    fn a_lease_is_held_by_one_holder_until_it_runs_out_or_is_released() {
        let mut conn = sqlite();
        let mut taken =
            |holder: &str, now: i64| take(&mut conn, "trainer", holder, now, now + 100).unwrap();

        let first = taken("a", 0);
        let other_while_good = taken("b", 50);
        let renewed = taken("a", 60);
        let other_before_renewal_ends = taken("b", 150);
        let other_after = taken("b", 161);
        let first_after_losing_it = taken("a", 170);

        assert!(first && renewed, "taken, then renewed by its holder");
        assert!(!other_while_good && !other_before_renewal_ends);
        assert!(other_after, "taken by another once run out");
        assert!(!first_after_losing_it);
        assert_eq!(release(&mut conn, "trainer", "a").unwrap(), 0, "not a's");
        assert_eq!(release(&mut conn, "trainer", "b").unwrap(), 1);
        assert!(
            take(&mut conn, "trainer", "a", 180, 280).unwrap(),
            "free again"
        );
    }
}
