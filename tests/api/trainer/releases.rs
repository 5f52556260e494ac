//! A backend's new release: versions made from its old description or for its old input schema
//! are no longer served nor watched, and the next run starts from what the backend gives now;
//! a release that changes only a parameter's prose keeps them. The ops API says which.

use serde_json::{json, Value};

use super::experiments::experiment;
use super::rollback::watching;
use super::{
    app, description, description_becomes, description_changes, listed_as, production_served,
    run_of, searches, seen, tools, FOUR_SEARCHES,
};
use crate::fake_connector::{Behaviour, FakeConnector};
use crate::helpers::TestApp;

/// A gateway whose trainer watches, with a few-shot version of `gh_search` deployed from four
/// searches by hand; the session and the run.
async fn few_shot_deployed(backend: &FakeConnector) -> (TestApp, String, Value) {
    let app = app(backend, |s| {
        watching(s);
        s.trainer.example_values = true;
    })
    .await;
    let session = app.initialize().await;
    searches(&app, &session, &FOUR_SEARCHES).await;
    let (_, trained) = app.send_json("POST", TRAIN, &json!({})).await;
    (app, session, trained)
}

const TRAIN: &str = "/api/v1/prompts/tool:gh_search/train";

/// Gives the backend a release that renames `gh_search`'s `repo` to `repository` and keeps
/// its description, and waits until `session` is listed the new schema (or gives up after 10 s).
pub(super) async fn release_renaming(app: &TestApp, backend: &FakeConnector, session: &str) {
    let schema = json!({"type": "object", "required": ["repository"],
        "properties": {"repository": {"type": "string"}, "query": {"type": "string"}}});
    release_schema(app, backend, session, schema).await;
}

/// Gives the backend a release whose `gh_search` has input `schema` and the same description,
/// and waits until `session` is listed it (or gives up after 10 s).
async fn release_schema(app: &TestApp, backend: &FakeConnector, session: &str, schema: Value) {
    let mut released = tools();
    released[0]["inputSchema"] = schema.clone();
    backend.set_tools(released);
    let listed = || async { app.listed_tool(session, "gh_search").await["inputSchema"].clone() };
    TestApp::read_until(listed, |s| *s == schema).await;
}

/// Makes the backend fail four calls of `gh_search` (with `arguments`), and gives the training
/// runs half a second later: a watch that saw them would have rolled back by then.
async fn runs_after_four_failures(
    app: &TestApp,
    backend: &FakeConnector,
    session: &str,
    arguments: Value,
) -> Value {
    backend.set_behaviour(Behaviour::Fail);
    let call = json!({"name": "gh_search", "arguments": arguments});
    for _ in 0..4 {
        app.rpc(session, "tools/call", call.clone()).await;
    }
    seen(app, "gh_search", 8).await;
    actix_rt::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, runs) = app.get_json("/api/v1/training-runs").await;
    backend.set_behaviour(Behaviour::Normal);
    runs
}

#[actix_web::test]
async fn a_backends_new_description_is_served_over_versions_made_from_its_old_one() {
    let backend = FakeConnector::with_tools(tools()).await;
    let (app, session, trained) = few_shot_deployed(&backend).await;
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
    let arguments = json!({"repo": "a/b", "query": "q"});
    let runs = runs_after_four_failures(&app, &backend, &session, arguments).await;
    description_becomes(&app, &session, "gh_search", new).await;
    // Version 1 holds the old description: rolled back to, the backend's new one is served.
    let rollback = "/api/v1/prompts/tool:gh_search/rollback";
    let (rolled_back, _) = app.send_json("POST", rollback, &json!({})).await;
    let after_rollback = description(&app, &session, "gh_search").await;
    // The next run starts from the backend's new description.
    let (_, retrained) = app.send_json("POST", TRAIN, &json!({})).await;
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

#[actix_web::test]
async fn a_backends_new_input_schema_is_served_without_versions_made_for_its_old_one() {
    let backend = FakeConnector::with_tools(tools()).await;
    let (app, session, trained) = few_shot_deployed(&backend).await;
    let deployed = description_changes(&app, &session, "gh_search", "Search.").await;
    let served_before = production_served(&app, "gh_search").await;
    let changed_before = listed_as(&app, "gh_search", "backend_changed").await;

    // A new release of the backend renames an argument, and keeps the description: the
    // deployed version's examples name the old argument.
    release_renaming(&app, &backend, &session).await;
    let served = description_becomes(&app, &session, "gh_search", "Search.").await;
    let served_after = production_served(&app, "gh_search").await;
    let changed_after = listed_as(&app, "gh_search", "backend_changed").await;
    let arguments = json!({"repository": "a/b", "query": "q"});
    let runs = runs_after_four_failures(&app, &backend, &session, arguments).await;
    let uses_by_version = listed_as(&app, "gh_search", "uses_by_version").await;
    // The failures hid the tool a moment; it is back once it is listed again.
    description_becomes(&app, &session, "gh_search", "Search.").await;
    let (_, retrained) = app.send_json("POST", TRAIN, &json!({})).await;
    let versions = "/api/v1/prompts/tool:gh_search/versions";
    let (_, second) = app.get_json(&format!("{versions}/2")).await;
    let (_, third) = app.get_json(&format!("{versions}/3")).await;

    assert_eq!(trained["outcome"], "deployed", "{trained}");
    assert!(deployed.contains("repo"), "{deployed}");
    // The four searches before the first version count in `uses` only; the four after the
    // release were served the backend's text.
    assert_eq!(uses_by_version, json!({"1": 4}));
    assert_eq!(
        second["based_on_schema"]["required"],
        json!(["repo"]),
        "{second}"
    );
    assert_eq!(served, "Search.");
    assert_eq!((served_before, served_after), (json!(true), json!(false)));
    assert_eq!((changed_before, changed_after), (json!(false), json!(true)));
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1), "{runs}");
    // The next run starts from the backend's description, not from examples of the old schema.
    let text = third["text"].as_str().unwrap_or_default();
    assert!(!text.contains(r#""repo":"#), "{third}");
    assert_eq!(third["based_on"], "Search.", "{retrained}");
    assert_eq!(
        third["based_on_schema"]["required"],
        json!(["repository"]),
        "{third}"
    );
}

#[actix_web::test]
async fn after_a_backends_release_only_calls_made_for_its_new_schema_are_few_shot_examples() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, |s| s.trainer.example_values = true).await;
    let session = app.initialize().await;
    searches(&app, &session, &FOUR_SEARCHES[..2]).await;
    release_renaming(&app, &backend, &session).await;
    for (repository, query) in &FOUR_SEARCHES[2..] {
        let arguments = json!({"repository": repository, "query": query});
        let call = json!({"name": "gh_search", "arguments": arguments});
        app.rpc(&session, "tools/call", call).await;
    }
    seen(&app, "gh_search", 4).await;
    let (_, trained) = app.send_json("POST", TRAIN, &json!({})).await;
    let deployed = description_changes(&app, &session, "gh_search", "Search.").await;

    assert_eq!(trained["approach"], "few-shot", "{trained}");
    assert!(deployed.contains(r#""repository":"g/h""#), "{deployed}");
    assert!(!deployed.contains(r#""repo":"#), "{deployed}");
}

#[actix_web::test]
async fn a_backends_release_ends_an_experiment_of_versions_made_for_its_old_schema_at_once() {
    // No check comes within the test: only the catalog's change can end the experiment.
    let (backend, app, _) = experiment(|s| s.trainer.check_interval_ms = 600_000).await;
    let released = json!({"name": "search", "description": "Search `repo` for `query`.",
        "inputSchema": {"type": "object", "properties": {"repository": {"type": "string"}}}});
    backend.set_tools(vec![released]);

    let ended = run_of(&app, ("tool", "gh_search"), |r| r["outcome"] == "kept").await;

    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the backend's description or input schema is no longer the one"),
        "{ended}"
    );
}

#[actix_web::test]
async fn a_release_that_only_rewords_a_parameters_description_keeps_the_trained_version() {
    let backend = FakeConnector::with_tools(tools()).await;
    let (app, session, trained) = few_shot_deployed(&backend).await;
    let deployed = description_changes(&app, &session, "gh_search", "Search.").await;

    let mut schema = tools()[0]["inputSchema"].clone();
    schema["properties"]["repo"]["description"] = json!("The repository, as owner/name.");
    release_schema(&app, &backend, &session, schema.clone()).await;
    let listed = app.listed_tool(&session, "gh_search").await;

    assert_eq!(trained["outcome"], "deployed", "{trained}");
    assert_eq!(listed["inputSchema"], schema);
    assert_eq!(listed["description"], json!(deployed));
    assert_eq!(production_served(&app, "gh_search").await, json!(true));
    let changed = listed_as(&app, "gh_search", "backend_changed").await;
    assert_eq!(changed, json!(false));
}
