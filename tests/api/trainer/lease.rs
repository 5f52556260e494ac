//! Several gateways on one store: only the one holding the trainer lease starts runs by itself,
//! on what every gateway saw, and another takes over when it stops.

use std::time::Duration;

use mcpgate::configuration::Settings;
use serde_json::json;

use super::rollback::{fail_until_rolled_back, watching};
use super::{app, four_good_searches, tools};
use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_sharing, TestApp};

/// Four failures of four calls start a run; the lease is short, and renewed every 100 ms; the
/// other gateways' feedback is read every 100 ms.
fn leased(s: &mut Settings) {
    s.trainer.enabled = true;
    s.trainer.min_volume = 4;
    s.trainer.error_rate_threshold = 0.5;
    s.trainer.lease_ms = 300;
    s.database.sync_interval_ms = 100;
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

/// The sum of the samples of counter `name` on `app`.
async fn total(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics_text().await;
    let samples = text.lines().filter(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    });
    samples
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn only_the_gateway_holding_the_trainer_lease_starts_runs_and_it_learns_from_what_every_gateway_saw(
) {
    let backend = FakeConnector::with_tools(tools()).await;
    let (first, second) = two_leased(&backend).await;
    let session = second.initialize().await;

    // The failures are seen by the gateway that does not lead.
    fail_four(&second, &session).await;
    let after = TestApp::read_until(|| runs(&first), |runs| !runs.is_empty()).await;
    // Several more checks (every 100 ms) and looks, in which no second run may start.
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    let (first_led, second_led) = (leading(&first).await, leading(&second).await);
    let ran = (
        total(&first, "mcpgate_training_runs_total").await,
        total(&second, "mcpgate_training_runs_total").await,
    );
    let taken = (
        total(&first, "mcpgate_feedback_from_others_total").await,
        total(&second, "mcpgate_feedback_from_others_total").await,
    );

    assert!(
        first_led && !second_led,
        "the first gateway holds the lease"
    );
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (&after[0]["target"], &after[0]["trigger"]),
        (&json!("gh_strict"), &json!("error_rate")),
        "the failures the other gateway saw start the leader's run"
    );
    assert_eq!(runs(&first).await.len(), 1, "one run, by one gateway");
    assert!(
        ran.0 >= 1.0 && ran.1 == 0.0,
        "runs recorded per gateway: {ran:?}"
    );
    assert!(
        taken.0 >= 4.0 && taken.1 == 0.0,
        "rows taken from the other: {taken:?}"
    );
}

#[actix_web::test]
async fn a_gateway_that_starts_beside_others_takes_in_what_they_record_once() {
    let backend = FakeConnector::with_tools(tools()).await;
    let (first, second) = two_leased(&backend).await;
    let session = first.initialize().await;
    fail_four(&first, &session).await;
    // The second reads them back (at start-up or by looking); a third starts after they are
    // stored, and reads them back at start-up only.
    let third = spawn_app_sharing(&first, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        leased(s);
    });
    let (second_uses, third) = (
        TestApp::read_until(|| strict_uses(&second), |uses| *uses >= 4).await,
        third.await,
    );
    // Several looks (every 100 ms), which may not take the rows again.
    actix_rt::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(second_uses, 4);
    assert_eq!(strict_uses(&second).await, 4);
    assert_eq!(strict_uses(&third).await, 4);
}

/// The uses of `gh_strict` in the live figures of `app`'s trainer.
async fn strict_uses(app: &TestApp) -> u64 {
    let (_, listed) = app.get_json("/api/v1/targets").await;
    let targets = listed["targets"].as_array().cloned().unwrap_or_default();
    let strict = targets.iter().find(|t| t["target"] == "gh_strict");
    strict.and_then(|t| t["uses"].as_u64()).unwrap_or(0)
}

/// How many leases the store of `app` holds.
async fn leases(app: &TestApp) -> i64 {
    app.rows("leases").await
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

/// Short leases and looks (every 100 ms), triggers off, and watches whose verdict four calls
/// make.
fn leased_watching(s: &mut Settings) {
    s.trainer.lease_ms = 300;
    s.database.sync_interval_ms = 100;
    watching(s);
}

#[actix_web::test]
async fn a_version_one_gateway_deployed_is_watched_by_the_others_and_rolled_back_once_it_stopped() {
    let backend = FakeConnector::with_tools(tools()).await;
    let first = app(&backend, leased_watching).await;
    let second = spawn_app_sharing(&first, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        leased_watching(s);
    })
    .await;
    let (_, call) = four_good_searches(&first).await;
    let train = "/api/v1/prompts/tool:gh_search/train";
    let (_, outcome) = first.send_json("POST", train, &json!({})).await;
    assert_eq!(outcome["outcome"], "deployed", "{outcome}");
    let watched = |app| async move { total(app, "mcpgate_versions_watched").await };
    let watching_on_second = TestApp::read_until(|| watched(&second), |n| *n == 1.0).await;

    first.stop().await;
    let session = second.initialize().await;
    let (production, runs) = fail_until_rolled_back(&second, &backend, &session, &call).await;
    let rollbacks: Vec<_> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "live_results")
        .collect();

    assert_eq!(watching_on_second, 1.0, "the second watches the version");
    assert_eq!(production, 1, "{runs}");
    assert_eq!(rollbacks.len(), 1, "{runs}");
    assert_eq!(rollbacks[0]["outcome"], "rolled_back", "{runs}");
}
