//! Rollback: a deployed version whose backend does worse live is rolled back, and a deploy
//! through the API is checked at once like a candidate.

use serde_json::{json, Value};

use super::{
    app, deploy_by_hand, deploy_by_hand_to, description_becomes, description_changes,
    four_good_searches, metric_becomes, tools,
};
use crate::fake_connector::{Behaviour, FakeConnector};
use crate::helpers::TestApp;

/// Settings under which four calls make a watch's verdict, and a rise of 0.2 in the failure
/// rate a breach.
pub(super) fn watching(s: &mut mcpgate::configuration::Settings) {
    s.trainer.min_volume = 4;
    s.trainer.rollback_margin = 0.2;
}

/// Makes the backend fail, calls four times, and waits until production of `gh_search` is back
/// at version 1 (or gives up); returns production and the training runs.
pub(super) async fn fail_until_rolled_back(
    app: &TestApp,
    backend: &FakeConnector,
    session: &str,
    call: &Value,
) -> (Value, Value) {
    backend.set_behaviour(Behaviour::Fail);
    for _ in 0..4 {
        app.rpc(session, "tools/call", call.clone()).await;
    }
    let production = production_becomes(app, &Value::from(1)).await;
    let (_, runs) = app.get_json("/api/v1/training-runs").await;
    (production, runs)
}

#[actix_web::test]
async fn a_deployed_version_that_does_worse_live_is_rolled_back_by_the_trainer() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, watching).await;
    let (session, call) = four_good_searches(&app).await;
    let (_, outcome) = app
        .send_json("POST", "/api/v1/prompts/tool:gh_search/train", &json!({}))
        .await;
    assert_eq!(outcome["outcome"], "deployed", "{outcome}");

    let (production, runs) = fail_until_rolled_back(&app, &backend, &session, &call).await;
    // The metrics count the run that deployed, the rollback, and the feedback behind them.
    let approach = outcome["approach"].as_str().unwrap_or_default();
    let deployed = format!(
        r#"mcpgate_training_runs_total{{approach="{approach}",kind="tool",outcome="deployed"}}"#
    );
    let deployed = metric_becomes(&app, &deployed, 1.0).await;
    let rollback =
        r#"mcpgate_training_runs_total{approach="none",kind="tool",outcome="rolled_back"}"#;
    let rolled_back = metric_becomes(&app, rollback, 1.0).await;
    let successes = r#"mcpgate_feedback_total{kind="tool",signal="success"}"#;
    let successes = metric_becomes(&app, successes, 4.0).await;
    let failures = r#"mcpgate_feedback_total{kind="tool",signal="tool_error"}"#;
    let failures = metric_becomes(&app, failures, 4.0).await;

    assert_eq!(production, 1);
    assert_eq!(runs["runs"][0]["outcome"], "rolled_back");
    let served = description_becomes(&app, &session, "gh_search", "Search.").await;
    assert_eq!(served, "Search.");
    assert_eq!((deployed, rolled_back), (Some(1.0), Some(1.0)));
    assert_eq!((successes, failures), (Some(4.0), Some(4.0)));
}

#[actix_web::test]
async fn a_version_deployed_through_the_api_is_rolled_back_when_its_backend_does_worse() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, |s| {
        watching(s);
        s.trainer.check_interval_ms = 50;
    })
    .await;
    let (session, call) = four_good_searches(&app).await;
    deploy_by_hand(&app, "Search issues of a repository (owner/name) by text.").await;

    let (production, runs) = fail_until_rolled_back(&app, &backend, &session, &call).await;

    assert_eq!(production, 1);
    assert_eq!(runs["runs"][0]["outcome"], "rolled_back", "{runs}");
    let served = description_becomes(&app, &session, "gh_search", "Search.").await;
    assert_eq!(served, "Search.");
}

/// Waits until production of `gh_search` is `version` (or gives up); returns production.
pub(super) async fn production_becomes(app: &TestApp, version: &Value) -> Value {
    production_of_becomes(app, "tool:gh_search", version).await
}

/// Waits until production of target `id` (`kind:name`) is `version` (or gives up); returns
/// production.
pub(super) async fn production_of_becomes(app: &TestApp, id: &str, version: &Value) -> Value {
    let path = format!("/api/v1/prompts/{id}");
    // Up to 10 s: under load (a build beside the tests) a check and its rollback can take
    // seconds.
    let production = || async { app.get_json(&path).await.1["production"].clone() };
    TestApp::read_until(production, |p| p == version).await
}

#[actix_web::test]
async fn a_deploy_through_the_api_that_fails_a_check_or_tests_worse_is_rolled_back_at_once() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, |s| s.trainer.min_volume = 4).await;
    let (session, _) = four_good_searches(&app).await;

    let documented = deploy_by_hand(&app, "Search `repo` (owner/name) for `query`.").await;
    deploy_by_hand(&app, "Strict lookup.").await;
    assert_eq!(production_becomes(&app, &documented).await, documented);
    deploy_by_hand(&app, "Search for a query.").await;
    assert_eq!(production_becomes(&app, &documented).await, documented);
    actix_rt::time::sleep(std::time::Duration::from_millis(200)).await;

    let (_, runs) = app.get_json("/api/v1/training-runs").await;
    let runs = runs["runs"].as_array().unwrap().clone();
    let rollbacks: Vec<&Value> = runs
        .iter()
        .filter(|r| r["trigger"] == "manual_deploy")
        .collect();
    assert_eq!(rollbacks.len(), 2, "{runs:?}");
    let reasons: Vec<&str> = rollbacks
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("of `gh_strict` better")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("tests better")),
        "{reasons:?}"
    );
    assert!(rollbacks.iter().all(|r| r["outcome"] == "rolled_back"));
    let documented = "Search `repo` (owner/name) for `query`.";
    let served = description_becomes(&app, &session, "gh_search", documented).await;
    assert_eq!(served, documented);
}

#[actix_web::test]
async fn a_deploy_through_the_api_that_tests_worse_is_rolled_back_however_large_the_margin() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, |s| {
        s.trainer.min_volume = 4;
        s.trainer.margin = 0.9;
    })
    .await;
    let (session, _) = four_good_searches(&app).await;

    let documented = deploy_by_hand(&app, "Search `repo` (owner/name) for `query`.").await;
    assert_eq!(production_becomes(&app, &documented).await, documented);
    let vague = deploy_by_hand(&app, "Search for a query.").await;
    let production = production_becomes(&app, &documented).await;

    assert_eq!(production, documented, "{vague} stayed");
    let (_, runs) = app.get_json("/api/v1/training-runs").await;
    assert_eq!(runs["runs"][0]["trigger"], "manual_deploy", "{runs}");
    // The store moves first; what sessions are served follows once it is reloaded.
    let served = description_changes(&app, &session, "gh_search", "Search for a query.").await;
    assert_eq!(served, "Search `repo` (owner/name) for `query`.");
}

#[actix_web::test]
async fn a_deploy_through_the_api_stays_when_the_check_is_off() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, |s| s.trainer.check_manual_deploys = false).await;
    four_good_searches(&app).await;

    let version = deploy_by_hand(&app, "Plays music on a speaker.").await;
    actix_rt::time::sleep(std::time::Duration::from_millis(300)).await;

    let (_, shown) = app.get_json("/api/v1/prompts/tool:gh_search").await;
    assert_eq!(shown["production"], version);
}

/// Version 1 is the backend's own text: deploying it again is not vetted as a new text, so a
/// tool whose backend gives no description can go back to it.
#[actix_web::test]
async fn deploying_the_backends_own_text_again_is_not_refused_for_being_empty() {
    let schema = json!({"type": "object", "properties": {"repo": {"type": "string"}}});
    let bare = json!({"name": "bare", "inputSchema": schema});
    let backend = FakeConnector::with_tools(vec![tools()[0].clone(), bare]).await;
    let app = app(&backend, |_| {}).await;
    let session = app.initialize().await;
    description_becomes(&app, &session, "gh_search", "Search.").await;
    let written = deploy_by_hand_to(&app, "tool:gh_bare", "Looks up `repo`.").await;
    assert_eq!(
        production_of_becomes(&app, "tool:gh_bare", &written).await,
        written
    );

    let back = json!({"version": 1});
    let (status, body) = app
        .send_json("POST", "/api/v1/prompts/tool:gh_bare/deploy", &back)
        .await;
    assert_eq!(status, 200, "{body}");
    // A check that refused it would roll production back to version 2 within moments.
    actix_rt::time::sleep(std::time::Duration::from_secs(2)).await;

    let (_, shown) = app.get_json("/api/v1/prompts/tool:gh_bare").await;
    assert_eq!(shown["production"], 1, "{shown}");
}
