//! The store on both backends (migrations, also through diesel_cli; rows written and read
//! back), and the recorder while the database is away.

use std::time::{Duration, Instant};

use mcpgate::recorder::CallRecorder;
use mcpgate::store::{self, experiments, feedback, prompt_templates, tool_calls, trainer_inputs};
use serde_json::json;

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_with, test_settings, StoreKind, TestApp, TestDatabase};

pub(crate) fn record(i: i64) -> tool_calls::NewToolCall {
    tool_calls::NewToolCall {
        connector: "c".into(),
        tool: format!("t{i}"),
        session_id: None,
        started_at_ms: i,
        duration_us: 10,
        outcome: "ok".into(),
        error_kind: None,
    }
}

pub(crate) fn migrated_pool(db: &TestDatabase) -> store::Pool {
    let settings = test_settings(db.url());
    let pool = store::pool(&settings.database);
    store::migrate(&pool).expect("migrations apply");
    pool
}

#[test]
fn migrations_apply_once_on_both_backends() {
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = store::pool(&test_settings(db.url()).database);

        let first = store::migrate(&pool).unwrap();
        let second = store::migrate(&pool).unwrap();

        assert_eq!((first, second), (21, 0), "{kind:?}");
    }
}

#[test]
fn gateways_migrating_one_new_database_together_take_turns() {
    let db = TestDatabase::create(StoreKind::Postgres);
    let settings = test_settings(db.url()).database;

    let runs: Vec<_> = (0..3)
        .map(|_| {
            let pool = store::pool(&settings);
            std::thread::spawn(move || store::migrate(&pool).map_err(|e| e.to_string()))
        })
        .collect();
    let mut applied: Vec<usize> = runs
        .into_iter()
        .map(|run| run.join().unwrap().expect("every gateway migrates"))
        .collect();
    applied.sort();

    assert_eq!(applied, [0, 0, 21]);
}

/// The tables of a database, the store's own and diesel's.
fn tables(db: &TestDatabase) -> Vec<String> {
    use diesel::sql_types::Text;
    use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
    #[derive(diesel::QueryableByName)]
    struct Table {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let mut names: Vec<String> = match db.url().strip_prefix("sqlite://") {
        Some(path) => diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence'",
        )
        .load::<Table>(&mut SqliteConnection::establish(path).unwrap()),
        None => {
            diesel::sql_query("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
                .load::<Table>(&mut PgConnection::establish(db.url()).unwrap())
        }
    }
    .unwrap()
    .into_iter()
    .map(|t| t.name)
    .collect();
    names.sort();
    names
}

/// Runs `diesel migration <args>` from the project's root, where `diesel.toml` is, on `db`.
fn diesel_cli(diesel: &str, db: &TestDatabase, args: &[&str]) {
    let mut command = std::process::Command::new(diesel);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("migration")
        .args(args);
    match db.url().strip_prefix("sqlite://") {
        Some(path) => command
            .args(["--migration-dir", "migrations/sqlite"])
            .args(["--database-url", path]),
        None => command.env("DATABASE_URL", db.url()),
    };
    let out = command.output().expect("diesel runs");
    assert!(
        out.status.success(),
        "diesel migration {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn diesel_cli_applies_and_reverts_the_migrations_the_gateway_embeds_on_both_backends() {
    let Some(diesel) = crate::interop::installed("MCPGATE_DIESEL") else {
        return;
    };
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = store::pool(&test_settings(db.url()).database);

        diesel_cli(&diesel, &db, &["run"]);
        let left_for_the_gateway = store::migrate(&pool).unwrap();
        let made = tables(&db);
        tool_calls::insert(&mut pool.get().unwrap(), &[record(1)]).unwrap();
        diesel_cli(&diesel, &db, &["revert", "--all"]);
        let after_revert = tables(&db);
        diesel_cli(&diesel, &db, &["run"]);

        assert_eq!(left_for_the_gateway, 0, "{kind:?}");
        assert!(
            made.len() > 8 && made.contains(&"tool_calls".to_string()),
            "{kind:?}: {made:?}"
        );
        assert_eq!(after_revert, ["__diesel_schema_migrations"], "{kind:?}");
        assert_eq!(tables(&db), made, "{kind:?}");
        assert_eq!(store::migrate(&pool).unwrap(), 0, "{kind:?}");
    }
}

#[test]
fn rows_round_trip_on_both_backends() {
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = migrated_pool(&db);
        let mut conn = pool.get().unwrap();

        let written = tool_calls::insert(&mut conn, &[record(1), record(2)]).unwrap();

        assert_eq!(written, 2);
        assert_eq!(tool_calls::count(&mut conn).unwrap(), 2);
        let newest = &tool_calls::recent(&mut conn, 1).unwrap()[0];
        assert_eq!(
            (newest.tool.as_str(), newest.started_at_ms),
            ("t2", 2),
            "{kind:?}"
        );
    }
}

#[test]
fn batches_longer_than_one_insert_statement_are_written_whole_and_in_order_on_both_backends() {
    let rows = 2 * store::ROWS_PER_INSERT + 1;
    let signal = |i: usize| feedback::NewFeedback {
        version: i.is_multiple_of(2).then_some(i as i64),
        session_id: i.is_multiple_of(3).then(|| format!("s{i}")),
        rating: i.is_multiple_of(5).then_some(0.25),
        error: i.is_multiple_of(7).then(|| format!("e{i}")),
        latency_ms: Some(i as i64),
        origin: i.is_multiple_of(11).then(|| format!("g{i}")),
        ..signal_at(i as i64)
    };
    let calls: Vec<_> = (0..rows as i64).map(record).collect();
    let signals: Vec<_> = (0..rows).map(signal).collect();
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = migrated_pool(&db);
        let mut conn = pool.get().unwrap();

        let written = (
            tool_calls::insert(&mut conn, &calls).unwrap(),
            feedback::insert(&mut conn, &signals).unwrap(),
        );

        assert_eq!(written, (rows, rows), "{kind:?}");
        let mut stored = tool_calls::recent(&mut conn, rows as i64 + 1).unwrap();
        stored.reverse();
        let order: Vec<i64> = stored.iter().map(|c| c.started_at_ms).collect();
        assert_eq!(order, (0..rows as i64).collect::<Vec<_>>(), "{kind:?}");
        let read = feedback::since(&mut conn, 0, rows as i64 + 1).unwrap();
        assert_eq!(read.len(), rows, "{kind:?}");
        for (got, sent) in read.iter().zip(&signals) {
            let (origin, got) = (&got.origin, &got.signal);
            let got = (got.version, &got.session_id, got.rating, got.created_at_ms);
            let got = (got, origin);
            let sent = (
                (
                    sent.version,
                    &sent.session_id,
                    sent.rating,
                    sent.created_at_ms,
                ),
                &sent.origin,
            );
            assert_eq!(got, sent, "{kind:?}");
        }
    }
}

/// A feedback row of target `c_t` made at `at_ms`.
pub(crate) fn signal_at(at_ms: i64) -> feedback::NewFeedback {
    feedback::NewFeedback {
        target_kind: "tool".into(),
        target: "c_t".into(),
        version: None,
        session_id: None,
        signal: "success".into(),
        rating: None,
        suggestion: None,
        error: None,
        latency_ms: None,
        source: feedback::AUTOMATIC.into(),
        created_at_ms: at_ms,
        origin: None,
    }
}

#[test]
fn a_targets_llm_inputs_are_replaced_not_added_on_both_backends() {
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = migrated_pool(&db);
        let mut conn = pool.get().unwrap();
        let key = ("tool", "gh_search");

        trainer_inputs::put(&mut conn, key, "{}", r#"[{"repo": 1}]"#, 1).unwrap();
        trainer_inputs::put(&mut conn, key, r#"{"a"}"#, "[]", 2).unwrap();
        trainer_inputs::put(&mut conn, ("prompt", "gh_search"), "[]", "[]", 3).unwrap();

        let mut rows = trainer_inputs::all(&mut conn).unwrap();
        rows.sort_by_key(|r| r.written_at_ms);
        let kept: Vec<(&str, &str, &str, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.target_kind.as_str(),
                    r.basis.as_str(),
                    r.inputs.as_str(),
                    r.written_at_ms,
                )
            })
            .collect();
        assert_eq!(
            kept,
            [("tool", r#"{"a"}"#, "[]", 2), ("prompt", "[]", "[]", 3)],
            "{kind:?}"
        );
    }
}

#[test]
fn an_experiments_sessions_are_updated_only_while_it_is_the_one_stored_on_both_backends() {
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = migrated_pool(&db);
        let mut conn = pool.get().unwrap();
        let stored = |target: &str, arms: &str, started_at_ms| experiments::Stored {
            target_kind: "tool".into(),
            target: target.into(),
            arms: arms.into(),
            canary: 0.5,
            started_at_ms,
        };

        experiments::put(&mut conn, &stored("a", "[1]", 10)).unwrap();
        experiments::put(&mut conn, &stored("a", "[2]", 20)).unwrap();
        experiments::put(&mut conn, &stored("b", "[3]", 30)).unwrap();
        experiments::set_arms(&mut conn, ("tool", "a", 10), "[4]").unwrap();
        experiments::set_arms(&mut conn, ("tool", "b", 30), "[5]").unwrap();
        experiments::put(&mut conn, &stored("c", "[6]", 40)).unwrap();
        experiments::remove(&mut conn, "tool", "c").unwrap();
        experiments::set_arms(&mut conn, ("tool", "c", 40), "[7]").unwrap();

        let mut rows = experiments::all(&mut conn).unwrap();
        rows.sort_by_key(|r| r.started_at_ms);
        assert_eq!(
            rows,
            [stored("a", "[2]", 20), stored("b", "[5]", 30)],
            "{kind:?}"
        );
    }
}

#[test]
fn a_prompts_learnt_text_is_replaced_only_by_one_learnt_later_on_both_backends() {
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = migrated_pool(&db);
        let mut conn = pool.get().unwrap();

        prompt_templates::put(&mut conn, "p", "first", &[], 10).unwrap();
        prompt_templates::put(&mut conn, "p", "third", &[20, 30], 30).unwrap();
        prompt_templates::put(&mut conn, "p", "second, landing last", &[20], 20).unwrap();
        prompt_templates::put(&mut conn, "q", "other", &[], 5).unwrap();

        let mut rows = prompt_templates::all(&mut conn).unwrap();
        rows.sort_by_key(|r| r.learnt_at_ms);
        let kept: Vec<(&str, &str, i64, Vec<i64>)> = rows
            .iter()
            .map(|r| {
                (
                    r.target.as_str(),
                    r.template.as_str(),
                    r.learnt_at_ms,
                    r.changes(),
                )
            })
            .collect();
        let expected = [("q", "other", 5, vec![]), ("p", "third", 30, vec![20, 30])];
        assert_eq!(kept, expected, "{kind:?}");
    }
}

#[actix_web::test]
async fn tool_calls_are_recorded_on_sqlite_too() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Sqlite, |s| {
        s.connectors = vec![connector("c", &url)]
    })
    .await;
    let session = app.initialize().await;

    app.rpc(
        &session,
        "tools/call",
        json!({"name": "c_echo", "arguments": {"text": "a"}}),
    )
    .await;

    app.wait_until(|app| app.stored_calls() == 1).await;
}

#[actix_web::test]
async fn records_wait_while_the_database_is_away_and_are_all_written_after() {
    let db = TestDatabase::create(StoreKind::Postgres);
    let pool = migrated_pool(&db);
    let mut settings = test_settings(db.url()).recorder;
    settings.batch_size = 10;
    let (recorder, task) = CallRecorder::start(pool.clone(), &settings);

    db.take_offline();
    let started = Instant::now();
    for i in 0..50 {
        recorder.record(record(i));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "record() must not wait for the store"
    );
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recorder.written(), 0);

    db.bring_online();
    TestApp::read_until(|| async { recorder.written() }, |w| *w == 50).await;

    assert_eq!(recorder.written(), 50);
    assert_eq!(recorder.dropped(), 0);
    assert_eq!(tool_calls::count(&mut pool.get().unwrap()).unwrap(), 50);
    drop(recorder);
    task.finish(Duration::from_secs(5)).await;
}

#[actix_web::test]
async fn a_record_the_store_refuses_is_dropped_alone_and_nul_is_written_as_a_replacement() {
    use diesel::RunQueryDsl;
    let db = TestDatabase::create(StoreKind::Postgres);
    let pool = migrated_pool(&db);
    // A refusal the store makes of one row's content, as a constraint would.
    let check = "ALTER TABLE feedback ADD CONSTRAINT no_poison CHECK (suggestion <> 'poison')";
    diesel::sql_query(check)
        .execute(&mut pool.get().unwrap())
        .unwrap();
    let mut settings = test_settings(db.url()).recorder;
    settings.batch_size = 10;
    let (recorder, task) = mcpgate::recorder::Recorder::start(pool.clone(), &settings);
    let with = |at: i64, suggestion: &str| feedback::NewFeedback {
        suggestion: Some(suggestion.to_string()),
        error: Some("a\0b".to_string()),
        ..signal_at(at)
    };

    recorder.record(with(1, "fine"));
    recorder.record(with(2, "poison"));
    recorder.record(with(3, "nul \0 inside"));
    TestApp::read_until(|| async { recorder.written() }, |w| *w == 2).await;
    recorder.record(with(4, "later"));
    TestApp::read_until(|| async { recorder.written() }, |w| *w == 3).await;

    assert_eq!(recorder.dropped(), 1);
    let mut conn = pool.get().unwrap();
    let rows = feedback::since(&mut conn, 0, 10).unwrap();
    let kept: Vec<_> = rows
        .iter()
        .filter_map(|r| r.signal.suggestion.clone())
        .collect();
    assert_eq!(kept, ["fine", "nul \u{FFFD} inside", "later"]);
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let errors = "SELECT count(*) AS n FROM feedback WHERE error = 'a' || chr(65533) || 'b'";
    let errors = diesel::sql_query(errors).get_result::<Count>(&mut conn);
    assert_eq!(errors.unwrap().n, 3);
    drop(recorder);
    task.finish(Duration::from_secs(5)).await;
}

#[actix_web::test]
async fn a_full_buffer_drops_and_counts_new_records() {
    let db = TestDatabase::create(StoreKind::Postgres);
    let pool = migrated_pool(&db);
    let mut settings = test_settings(db.url()).recorder;
    settings.buffer_size = 5;
    settings.batch_size = 5;
    let (recorder, _task) = CallRecorder::start(pool, &settings);

    db.take_offline();
    for i in 0..30 {
        recorder.record(record(i));
    }

    // At most one batch in the writer's hands and a full buffer are kept.
    assert!(recorder.dropped() >= 20, "dropped {}", recorder.dropped());
    db.bring_online();
}

#[actix_web::test]
async fn tool_calls_stay_fast_while_the_database_is_away() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let app = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![connector("c", &url)]
    })
    .await;
    let session = app.initialize().await;

    app.db.take_offline();
    let started = Instant::now();
    for _ in 0..5 {
        let answer = app
            .rpc(
                &session,
                "tools/call",
                json!({"name": "c_echo", "arguments": {"text": "a"}}),
            )
            .await;
        assert_eq!(answer["result"]["content"][0]["text"], "a");
    }
    let elapsed = started.elapsed();
    app.db.bring_online();

    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    app.wait_until(|app| app.stored_calls() == 5).await;
}

#[test]
fn the_stores_clock_is_read_on_both_backends() {
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = migrated_pool(&db);
        let mut conn = pool.get().unwrap();
        let before = mcpgate::connector::now_ms();

        let now = mcpgate::store::leases::now_ms(&mut conn).unwrap();

        let after = mcpgate::connector::now_ms();
        assert!(
            before - 5 <= now && now <= after + 5,
            "{kind:?}: {before} {now} {after}"
        );
    }
}
