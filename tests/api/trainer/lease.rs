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

async fn leading(app: &TestApp) -> bool {
    app.metrics_text()
        .await
        .lines()
        .any(|line| line == "mcpgate_trainer_leading 1")
}

async fn runs(app: &TestApp) -> Vec<serde_json::Value> {
    let (_, listed) = app.get_json("/api/v1/training-runs").await;
    listed["runs"].as_array().cloned().unwrap_or_default()
}

#[actix_web::test]
async fn only_the_gateway_holding_the_trainer_lease_starts_runs_and_another_takes_over_when_it_stops(
) {
    let backend = FakeConnector::with_tools(tools()).await;
    let first = app(&backend, leased).await;
    let second = spawn_app_sharing(&first, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        leased(s);
    })
    .await;
    let session = second.initialize().await;

    for query in ["a", "b", "c", "d"] {
        let call = json!({"name": "gh_strict", "arguments": {"query": query}});
        let failed = second.rpc(&session, "tools/call", call).await;
        assert_eq!(failed["result"]["isError"], true, "{failed}");
    }
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
