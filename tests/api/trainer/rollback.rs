//! Rollback: a deployed version whose backend does worse live is rolled back, and a deploy
//! through the API is checked at once like a candidate.

use serde_json::{json, Value};

use super::{
    app, deploy_by_hand, description, description_becomes, description_changes, four_good_searches,
    searches, seen, tools,
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

    assert_eq!(production, 1);
    assert_eq!(runs["runs"][0]["outcome"], "rolled_back");
    let served = description_becomes(&app, &session, "gh_search", "Search.").await;
    assert_eq!(served, "Search.");
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
    let mut production = Value::Null;
    let path = format!("/api/v1/prompts/{id}");
    // Up to 10 s: under load (a build beside the tests) a check and its rollback can take
    // seconds.
    for _ in 0..500 {
        let (_, shown) = app.get_json(&path).await;
        production = shown["production"].clone();
        if production == *version {
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    production
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

#[actix_web::test]
async fn a_backends_new_description_is_served_over_versions_made_from_its_old_one() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, |s| {
        watching(s);
        s.trainer.example_values = true;
    })
    .await;
    let session = app.initialize().await;
    let calls = [
        ("a/b", "bug"),
        ("c/d", "crash"),
        ("e/f", "leak"),
        ("g/h", "slow"),
    ];
    searches(&app, &session, &calls).await;
    let train = "/api/v1/prompts/tool:gh_search/train";
    let (_, trained) = app.send_json("POST", train, &json!({})).await;
    let versions = "/api/v1/prompts/tool:gh_search/versions";
    let (_, first) = app.get_json(&format!("{versions}/1")).await;
    let (_, second) = app.get_json(&format!("{versions}/2")).await;

    // A new release of the backend describes the tool otherwise.
    let new = "Search the issues of a repository (owner/name) by text.";
    let mut released = tools();
    released[0]["description"] = json!(new);
    backend.set_tools(released);
    let served = description_becomes(&app, &session, "gh_search", new).await;
    // The deployed version is not served, so its watch has ended: failures of the backend
    // now are not its doing, and do not roll it back.
    backend.set_behaviour(Behaviour::Fail);
    let call = json!({"name": "gh_search", "arguments": {"repo": "a/b", "query": "q"}});
    for _ in 0..4 {
        app.rpc(&session, "tools/call", call.clone()).await;
    }
    seen(&app, "gh_search", 8).await;
    actix_rt::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, runs) = app.get_json("/api/v1/training-runs").await;
    backend.set_behaviour(Behaviour::Normal);
    description_becomes(&app, &session, "gh_search", new).await;
    // Version 1 holds the old description: rolled back to, the backend's new one is served.
    let rollback = "/api/v1/prompts/tool:gh_search/rollback";
    let (rolled_back, _) = app.send_json("POST", rollback, &json!({})).await;
    let after_rollback = description(&app, &session, "gh_search").await;
    // The next run starts from the backend's new description.
    let (_, retrained) = app.send_json("POST", train, &json!({})).await;
    let (_, third) = app.get_json(&format!("{versions}/3")).await;

    assert_eq!(trained["outcome"], "deployed", "{trained}");
    assert_eq!(first["based_on"], "Search.", "{first}");
    assert_eq!(second["based_on"], "Search.", "{second}");
    assert_eq!(served, new);
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1), "{runs}");
    assert_eq!(rolled_back, 200);
    assert_eq!(after_rollback, new);
    assert!(
        third["text"].as_str().unwrap_or_default().starts_with(new),
        "{retrained}"
    );
    assert_eq!(third["based_on"], new, "{third}");
}
