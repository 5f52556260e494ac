//! Retention on both backends: call records, the gateway's signals and clients' ratings go
//! after their own keeps, oldest first and in bounded statements, a prune told to stop starts
//! no statement, and the gateway prunes by itself and counts what it deleted.

use std::sync::atomic::AtomicBool;

use mcpgate::retention;
use mcpgate::store::{self, feedback, tool_calls};

use crate::helpers::{spawn_app_with, StoreKind, TestApp, TestDatabase};
use crate::store::{migrated_pool, record, signal_at};

/// A client's rating of target `c_t` made at `at_ms`.
fn rating_at(at_ms: i64) -> feedback::NewFeedback {
    feedback::NewFeedback {
        signal: "rating".into(),
        rating: Some(1.0),
        source: "api".into(),
        ..signal_at(at_ms)
    }
}

#[test]
fn records_past_their_keep_are_deleted_and_the_others_kept_on_both_backends() {
    use retention::Records::{Calls, Ratings, Signals};
    let (now, day) = (1_800_000_000_000_i64, 86_400_000_i64);
    // More old call records than one delete takes, so that pruning has to go on.
    let old_calls = retention::ROWS_PER_DELETE + 3;
    let calls: Vec<_> = (0..old_calls)
        .map(|i| record(now - 8 * day - i))
        .chain([record(now - 6 * day), record(now)])
        .collect();
    // Signals and ratings interleaved in time, each with a keep of its own.
    let feedback_rows = [
        rating_at(now - 400 * day),
        signal_at(now - 366 * day),
        rating_at(now - 366 * day),
        signal_at(now - 31 * day),
        rating_at(now - 31 * day),
        signal_at(now - 30 * day - 1),
        signal_at(now - day),
        rating_at(now - day),
        signal_at(now),
    ];
    let keeps = [
        (Calls, 7 * day as u64),
        (Signals, 30 * day as u64),
        (Ratings, 365 * day as u64),
    ];
    let kept = |conn: &mut store::AnyConnection| -> (Vec<i64>, Vec<(i64, String)>) {
        let calls = tool_calls::recent(conn, 10).unwrap();
        let rows = feedback::since(conn, 0, 20).unwrap();
        (
            calls.iter().map(|c| c.started_at_ms).collect(),
            rows.into_iter()
                .map(|r| ((now - r.signal.created_at_ms) / day, r.signal.source))
                .collect(),
        )
    };
    for kind in [StoreKind::Postgres, StoreKind::Sqlite] {
        let db = TestDatabase::create(kind);
        let pool = migrated_pool(&db);
        let mut conn = pool.get().unwrap();
        tool_calls::insert(&mut conn, &calls).unwrap();
        feedback::insert(&mut conn, &feedback_rows).unwrap();
        drop(conn);

        let go_on = AtomicBool::new(false);
        let pruned = retention::prune(&pool, &keeps, now, &go_on).unwrap();

        let expected = vec![(Calls, old_calls as u64), (Signals, 3), (Ratings, 2)];
        assert_eq!(pruned, expected, "{kind:?}");
        let (calls_left, feedback_left) = kept(&mut pool.get().unwrap());
        assert_eq!(calls_left, [now, now - 6 * day], "{kind:?}");
        let feedback_left: Vec<_> = feedback_left
            .iter()
            .map(|(d, s)| (*d, s.as_str()))
            .collect();
        assert_eq!(
            feedback_left,
            [(31, "api"), (1, "auto"), (1, "api"), (0, "auto")],
            "{kind:?}"
        );
        // Records kept for ever are left alone, whatever their age.
        tool_calls::insert(&mut pool.get().unwrap(), &[record(now - 100 * day)]).unwrap();
        let for_ever = [(Calls, 0), (Signals, 0), (Ratings, (day / 2) as u64)];
        let pruned = retention::prune(&pool, &for_ever, now, &go_on);
        assert_eq!(pruned.unwrap(), [(Ratings, 2)], "{kind:?}");
        let (calls_left, feedback_left) = kept(&mut pool.get().unwrap());
        assert_eq!(calls_left.len(), 3, "{kind:?}");
        assert_eq!(feedback_left.len(), 2, "{kind:?}");
        // A prune told to stop starts no statement.
        let pruned = retention::prune(&pool, &keeps, now, &AtomicBool::new(true));
        assert_eq!(pruned.unwrap(), [(Calls, 0), (Signals, 0), (Ratings, 0)]);
        assert_eq!(kept(&mut pool.get().unwrap()).0.len(), 3, "{kind:?}");
    }
}

/// The gateway prunes by itself, at start-up and then at every interval, and counts what it
/// deleted.
#[actix_web::test]
async fn the_gateway_deletes_old_records_by_itself_and_counts_them() {
    let day = 86_400_000_i64;
    let app = spawn_app_with(StoreKind::Postgres, |s| s.recorder.prune_interval_ms = 50).await;
    let pool = migrated_pool(&app.db);
    let now = mcpgate::connector::now_ms();
    {
        let mut conn = pool.get().unwrap();
        let old = [record(now - 8 * day), record(now - 9 * day), record(now)];
        tool_calls::insert(&mut conn, &old).unwrap();
        let rows = [
            signal_at(now - 31 * day),
            signal_at(now),
            rating_at(now - 400 * day),
            rating_at(now - 31 * day),
        ];
        feedback::insert(&mut conn, &rows).unwrap();
    }

    let metrics = TestApp::read_until(
        || app.metrics_text(),
        |text: &String| text.contains("mcpgate_records_pruned_total{records=\"ratings\"} 1"),
    )
    .await;

    for expected in ["{records=\"calls\"} 2", "{records=\"signals\"} 1"] {
        let line = format!("mcpgate_records_pruned_total{expected}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    let mut conn = pool.get().unwrap();
    assert_eq!(tool_calls::count(&mut conn).unwrap(), 1);
    assert_eq!(feedback::count_for(&mut conn, "tool", "c_t").unwrap(), 2);
}
