//! The store: one diesel code path over PostgreSQL (production) and SQLite (the embedded default).
//!
//! Owns the connection type ([`AnyConnection`]), the pool, and the embedded migrations of both
//! backends. Queries live in one module per table and return `QueryResult`; callers run them on a
//! blocking thread, never on an actor's or an HTTP worker's thread.

pub mod connectors;
pub mod experiments;
pub mod feedback;
pub mod installation;
pub mod leases;
pub mod prompt_templates;
pub mod prompts;
pub mod refreshes;
pub mod schema;
pub mod servers;
pub mod session_holders;
pub mod tool_calls;
pub mod trainer_inputs;
pub mod training_runs;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::configuration::DatabaseSettings;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// The connection pool.
pub type Pool = r2d2::Pool<Manager>;

/// Which backend a `database.url` names.
#[derive(Clone)]
pub enum Target {
    /// A PostgreSQL URL.
    Postgres(String),
    /// A SQLite file path.
    Sqlite(String),
}

impl Target {
    /// Reads `database.url`: `postgres://…`, `sqlite://PATH` or a bare path.
    pub fn from_url(url: &str) -> Target {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Target::Postgres(url.to_string())
        } else {
            Target::Sqlite(url.strip_prefix("sqlite://").unwrap_or(url).to_string())
        }
    }
}

/// Opens connections of the backend that the URL names, and only that one.
pub struct Manager {
    target: Target,
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match &self.target {
            Target::Postgres(url) => PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError),
            Target::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// A store failure outside request handling.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had.
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] r2d2::PoolError),
    /// A migration failed.
    #[error("migrations failed: {0}")]
    Migrate(String),
}

/// Builds the pool without waiting for a first connection; [`migrate`] or the first query
/// finds out whether the database is there.
pub fn pool(settings: &DatabaseSettings) -> Pool {
    let target = Target::from_url(&settings.url);
    r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .min_idle(Some(0))
        .connection_timeout(settings.connect_timeout())
        .test_on_check_out(true)
        .build_unchecked(Manager { target })
}

/// Applies the pending embedded migrations of the pool's backend; returns how many ran.
pub fn migrate(pool: &Pool) -> Result<usize, StoreError> {
    let mut conn = pool.get()?;
    let count = |done: diesel::migration::Result<Vec<_>>| done.map(|applied| applied.len());
    let applied = match &mut *conn {
        AnyConnection::Postgresql(c) => {
            // Gateways started together on one database take turns: the first applies the
            // migrations, the others then find none pending. Without the lock two of them ran
            // the same CREATE TABLE and all but one exited.
            use diesel::RunQueryDsl;
            let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
            diesel::sql_query(lock)
                .execute(c)
                .map_err(|e| StoreError::Migrate(format!("taking the migration lock: {e}")))?;
            let applied = count(c.run_pending_migrations(POSTGRES_MIGRATIONS));
            let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
            let _ = diesel::sql_query(unlock).execute(c);
            applied
        }
        AnyConnection::Sqlite(c) => count(c.run_pending_migrations(SQLITE_MIGRATIONS)),
    };
    applied.map_err(|e| StoreError::Migrate(e.to_string()))
}

/// The PostgreSQL advisory lock key held while migrating (any fixed number; "mcpgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_6370_6761_7465;

/// The PostgreSQL advisory lock key held by each [`write`] transaction ("mcpgw" in ASCII).
const WRITE_LOCK: i64 = 0x006d_6370_6777;

/// Runs `work` on a pooled connection on a blocking thread (never on the caller's actor or
/// HTTP worker thread); a pool, query or thread error comes back as its text.
pub fn blocking<T: Send + 'static>(
    pool: &Pool,
    work: impl FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, String>> + 'static {
    let pool = pool.clone();
    async move {
        let done = actix_web::web::block(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            work(&mut conn).map_err(|e| e.to_string())
        })
        .await;
        done.map_err(|e| e.to_string())?
    }
}

/// Whether a connection can be had and answers.
pub fn ping(pool: &Pool) -> bool {
    pool.get()
        .map(|mut conn| conn.ping().is_ok())
        .unwrap_or(false)
}

/// Runs `f` in a transaction that reads and then writes, one such at a time. On PostgreSQL it
/// takes an advisory lock first. On SQLite it takes the write lock up front (`BEGIN
/// IMMEDIATE`): a deferred transaction that read first fails with "database is locked" when
/// another connection wrote in between, whatever the busy timeout. Inside a
/// transaction already under way (a `transaction` or another `write`) it is a nested one (a
/// savepoint), so a failed inner one leaves the outer one going.
pub fn write<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> diesel::QueryResult<T>,
) -> diesel::QueryResult<T> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <AnyConnection as Connection>::TransactionManager;
    let AnyConnection::Sqlite(sqlite) = &mut *conn else {
        // READ COMMITTED lets two writes read the same latest version or label and both write
        // after it (a duplicate key, or a move lost); the lock, held to the transaction's end
        // and taken again harmlessly when nested, has them run one after the other on every
        // gateway of the store, as SQLite's write lock does.
        return conn.transaction(|conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"))
                .execute(conn)?;
            f(conn)
        });
    };
    let nested = AnsiTransactionManager::transaction_manager_status_mut(sqlite)
        .transaction_depth()
        .is_ok_and(|depth| depth.is_some());
    if nested {
        return conn.transaction(f);
    }
    // Begun through diesel's own transaction manager, so that a `transaction` or a `write`
    // inside `f` knows it is nested and takes a savepoint instead of failing to begin.
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(value) => Manager::commit_transaction(conn).map(|()| value),
        Err(err) => {
            let _ = Manager::rollback_transaction(conn);
            Err(err)
        }
    }
}

/// Deletes at most `limit` rows of `table` whose `time_column` is before `before_ms` and that
/// meet `condition` (SQL, or `TRUE`), oldest first; gives how many went. Names and condition come
/// from the code, never from input. One statement on both backends (diesel's DSL takes no
/// subquery of the table it deletes from).
fn delete_oldest(
    conn: &mut AnyConnection,
    table: &'static str,
    time_column: &'static str,
    condition: &str,
    before_ms: i64,
    limit: i64,
) -> diesel::QueryResult<usize> {
    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;
    diesel::sql_query(format!(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
         WHERE {condition} AND {time_column} < $1 ORDER BY {time_column} LIMIT $2)"
    ))
    .bind::<BigInt, _>(before_ms)
    .bind::<BigInt, _>(limit)
    .execute(conn)
}

/// Rows written by one multi-row `INSERT` on PostgreSQL: 500 rows of the widest table bind
/// 5,500 values, well under its limit of 65,535.
pub const ROWS_PER_INSERT: usize = 500;

/// Inserts the rows of slice `$rows` into `$table` in one transaction, giving how many were
/// written: on PostgreSQL as multi-row `INSERT`s (one round trip per
/// [`ROWS_PER_INSERT`](crate::store::ROWS_PER_INSERT) rows instead of one per row), on SQLite row
/// by row, where the one-row statement, prepared once and cached, costs less than a multi-row
/// one prepared anew for every batch.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        use diesel::{Connection, RunQueryDsl};
        $conn.transaction(|conn| {
            let mut written = 0;
            match conn {
                $crate::store::AnyConnection::Postgresql(conn) => {
                    for rows in $rows.chunks($crate::store::ROWS_PER_INSERT) {
                        written += diesel::insert_into($table).values(rows).execute(conn)?;
                    }
                }
                $crate::store::AnyConnection::Sqlite(conn) => {
                    for row in $rows {
                        written += diesel::insert_into($table).values(row).execute(conn)?;
                    }
                }
            }
            Ok(written)
        })
    }};
}
pub(crate) use insert_rows;

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite() -> AnyConnection {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        conn.batch_execute("CREATE TABLE t (x INTEGER)").unwrap();
        conn
    }

    fn count(conn: &mut AnyConnection) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result::<Count>(conn)
            .unwrap()
            .n
    }

    #[test]
    fn a_write_commits_and_a_failed_one_leaves_nothing() {
        let mut conn = sqlite();
        write(&mut conn, |c| c.batch_execute("INSERT INTO t VALUES (1)")).unwrap();
        let failed = write(&mut conn, |c| {
            c.batch_execute("INSERT INTO t VALUES (2)")?;
            c.batch_execute("INSERT INTO nowhere VALUES (3)")
        });
        assert!(failed.is_err());
        assert_eq!(count(&mut conn), 1);
    }

    #[test]
    fn a_write_inside_a_write_is_a_nested_one_and_fails_alone() {
        let mut conn = sqlite();
        let outcome = write(&mut conn, |c| {
            write(c, |c| c.batch_execute("INSERT INTO t VALUES (1)"))?;
            let inner = write(c, |c| {
                c.batch_execute("INSERT INTO t VALUES (2)")?;
                c.batch_execute("INSERT INTO nowhere VALUES (3)")
            });
            assert!(inner.is_err());
            c.batch_execute("INSERT INTO t VALUES (4)")
        });
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(count(&mut conn), 2);
    }

    #[test]
    fn a_failed_write_rolls_back_what_its_nested_writes_did() {
        let mut conn = sqlite();
        let outcome = write(&mut conn, |c| {
            write(c, |c| c.batch_execute("INSERT INTO t VALUES (1)"))?;
            c.batch_execute("INSERT INTO nowhere VALUES (2)")
        });
        assert!(outcome.is_err());
        assert_eq!(count(&mut conn), 0);
        write(&mut conn, |c| c.batch_execute("INSERT INTO t VALUES (3)")).unwrap();
        assert_eq!(count(&mut conn), 1);
    }

    #[test]
    fn a_write_inside_a_transaction_is_a_nested_one() {
        let mut conn = sqlite();
        let outcome = conn.transaction(|c| {
            write(c, |c| c.batch_execute("INSERT INTO t VALUES (1)"))?;
            write(c, |c| c.batch_execute("INSERT INTO t VALUES (2)"))
        });
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(count(&mut conn), 2);
    }
}
