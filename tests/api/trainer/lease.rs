//! Several gateways on one store: only the one holding the trainer lease starts runs by itself,
//! and another takes over when it stops.

use std::time::Duration;

use mcpgate::configuration::Settings;
use serde_json::json;

use super::{app, tools};
use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_sharing, TestApp};

/// Four failures of four calls start a run; the lease is short, and renewed every 100 ms.
fn leased(s: &mut Settings) {
    s.trainer.enabled = true;
    s.trainer.min_volume = 4;
    s.trainer.error_rate_threshold = 0.5;
    s.trainer.lease_ms = 300;
}

/// Two gateways on one store with short leases; the first holds the lease.
async fn two_leased(backend: &FakeConnector) -> (TestApp, TestApp) {
    let first = app(backend, leased).await;
    let second = spawn_app_sharing(&first, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        leased(s);
    })
    .await;
    (first, second)
}

async fn leading(app: &TestApp) -> bool {
    app.metrics_text()
        .await
        .lines()
        .any(|line| line == "mcpgate_trainer_leading 1")
}

/// Four calls of `gh_strict` in `session` that fail (`repo` is missing).
async fn fail_four(app: &TestApp, session: &str) {
    for query in ["a", "b", "c", "d"] {
        let call = json!({"name": "gh_strict", "arguments": {"query": query}});
        let failed = app.rpc(session, "tools/call", call).await;
        assert_eq!(failed["result"]["isError"], true, "{failed}");
    }
}

async fn runs(app: &TestApp) -> Vec<serde_json::Value> {
    let (_, listed) = app.get_json("/api/v1/training-runs").await;
    listed["runs"].as_array().cloned().unwrap_or_default()
}

#[actix_web::test]
async fn only_the_gateway_holding_the_trainer_lease_starts_runs_and_another_takes_over_when_it_stops(
) {
    let backend = FakeConnector::with_tools(tools()).await;
    let (first, second) = two_leased(&backend).await;
    let session = second.initialize().await;

    fail_four(&second, &session).await;
    // Several checks (every 100 ms) and renewals, in which the second may not start a run.
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    let (first_led, second_led, runs_while_following) = (
        leading(&first).await,
        leading(&second).await,
        runs(&second).await,
    );
    first.stop().await;
    let took_over = TestApp::read_until(|| leading(&second), |led| *led).await;
    let after = TestApp::read_until(|| runs(&second), |runs| !runs.is_empty()).await;

    assert!(
        first_led && !second_led,
        "the first gateway holds the lease"
    );
    assert_eq!(runs_while_following, Vec::<serde_json::Value>::new());
    assert!(took_over, "the second takes the lease the first gave up");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (&after[0]["target"], &after[0]["trigger"]),
        (&json!("gh_strict"), &json!("error_rate")),
        "the failures it saw while following start its run"
    );
}

/// How many leases the store of `app` holds.
async fn leases(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count = mcpgate::store::blocking(&app.gateway.pool, |conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query("SELECT count(*) AS n FROM leases").get_result::<Count>(conn)
    });
    count.await.expect("the store answers").n
}

#[actix_web::test]
async fn a_gateway_that_stops_gives_the_trainer_lease_up_at_once() {
    let backend = FakeConnector::with_tools(tools()).await;
    // Held a minute: only giving it up frees it before then.
    let app = app(&backend, |s| {
        s.trainer.enabled = true;
        s.trainer.lease_ms = 60_000;
    })
    .await;

    let held = (leading(&app).await, leases(&app).await);
    app.stop().await;

    assert_eq!(held, (true, 1));
    assert_eq!(leases(&app).await, 0);
}

#[actix_web::test]
async fn a_gateway_whose_triggers_are_off_leaves_the_lease_to_one_whose_are_on() {
    let backend = FakeConnector::with_tools(tools()).await;
    let off = app(&backend, |s| {
        leased(s);
        s.trainer.enabled = false;
    })
    .await;
    let on = spawn_app_sharing(&off, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        leased(s);
    })
    .await;

    assert_eq!((leading(&off).await, leading(&on).await), (false, true));
    assert_eq!(leases(&on).await, 1);
}

#[actix_web::test]
async fn a_gateway_that_takes_the_lease_over_does_not_train_again_what_the_last_holder_trained() {
    let backend = FakeConnector::with_tools(tools()).await;
    let (first, second) = two_leased(&backend).await;
    // Both gateways see the failures; the first, which leads, trains on its own.
    let (on_first, on_second) = (first.initialize().await, second.initialize().await);
    fail_four(&first, &on_first).await;
    fail_four(&second, &on_second).await;
    let trained = TestApp::read_until(|| runs(&first), |runs| !runs.is_empty()).await;

    first.stop().await;
    let took_over = TestApp::read_until(|| leading(&second), |led| *led).await;
    // Several checks (every 100 ms) in which the second may not train the same target again.
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    let after = runs(&second).await;

    assert_eq!(trained.len(), 1, "{trained:?}");
    assert!(took_over);
    assert_eq!(after, trained, "no second run within the cooldown");
}
