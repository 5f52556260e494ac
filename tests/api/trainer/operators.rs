//! An operator's version over a backend's release: it stays served whatever the backend's text
//! becomes (the operator chose it), and the ops API shows when a release has changed the text it
//! was written over, which clients no longer see.

use serde_json::{json, Value};

use super::prompts::summary;
use super::releases::release_renaming;
use super::{
    app, deploy_by_hand_to, description, description_becomes, listed_as, metric_becomes,
    production_served, seen, tools,
};
use crate::fake_connector::FakeConnector;
use crate::helpers::TestApp;

#[actix_web::test]
async fn an_operators_tool_version_stays_served_over_a_release_that_the_ops_api_shows() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, |_| {}).await;
    let session = app.initialize().await;
    let text = "Searches the issues of `repo` (owner/name) for `query`.";
    deploy_by_hand_to(&app, "tool:gh_search", text).await;
    let served = description_becomes(&app, &session, "gh_search", text).await;
    let changed_before = listed_as(&app, "gh_search", "backend_changed").await;

    // The backend renames `repo`: the operator's text, still served, names the old argument.
    release_renaming(&app, &backend, &session).await;
    let served_after = description(&app, &session, "gh_search").await;
    let changed_after = listed_as(&app, "gh_search", "backend_changed").await;
    let (_, written) = app
        .get_json("/api/v1/prompts/tool:gh_search/versions/2")
        .await;
    let hiding = r#"mcpgate_versions_hiding_release{kind="tool"}"#;
    let hiding = metric_becomes(&app, hiding, 1.0).await;

    assert_eq!((served.as_str(), served_after.as_str()), (text, text));
    assert_eq!((changed_before, changed_after), (json!(false), json!(true)));
    assert_eq!(production_served(&app, "gh_search").await, json!(true));
    assert_eq!(written["written_over"], "Search.", "{written}");
    assert_eq!(
        written["written_over_schema"]["required"],
        json!(["repo"]),
        "{written}"
    );
    assert_eq!(written["based_on"], Value::Null, "{written}");
    assert_eq!(hiding, Some(1.0));
}

#[actix_web::test]
async fn an_operators_prompt_version_stays_served_over_a_new_backend_text_that_the_ops_api_shows() {
    let backend = FakeConnector::start().await;
    let app = app(&backend, |_| {}).await;
    let session = app.initialize().await;
    // A fetch teaches the template the operator writes over: "Summarize {{topic}}.".
    summary(&app, &session, "rust").await;
    seen(&app, "gh_summarize", 1).await;
    let text = "Summarize what is known about {{topic}}.";
    deploy_by_hand_to(&app, "prompt:gh_summarize", text).await;
    let fetch = || summary(&app, &session, "rust");
    let served = TestApp::read_until(fetch, |s| s != "Summarize rust.").await;
    let changed_before = listed_as(&app, "gh_summarize", "backend_changed").await;

    backend.set_prompt_lead("Summarize the news about");
    let served_after = summary(&app, &session, "rust").await;
    let listed = || listed_as(&app, "gh_summarize", "backend_changed");
    let changed_after = TestApp::read_until(listed, |v| *v == json!(true)).await;
    let (_, written) = app
        .get_json("/api/v1/prompts/prompt:gh_summarize/versions/2")
        .await;
    let hiding = r#"mcpgate_versions_hiding_release{kind="prompt"}"#;
    let hiding = metric_becomes(&app, hiding, 1.0).await;
    // Rolled back, the operator's version hides nothing any more (from the trainer's next
    // check).
    let rollback = "/api/v1/prompts/prompt:gh_summarize/rollback";
    let (rolled_back, _) = app.send_json("POST", rollback, &json!({})).await;
    let after_rollback = r#"mcpgate_versions_hiding_release{kind="prompt"}"#;
    let after_rollback = metric_becomes(&app, after_rollback, 0.0).await;

    assert_eq!(served, "Summarize what is known about rust.");
    assert_eq!(served_after, served);
    assert_eq!((changed_before, changed_after), (json!(false), json!(true)));
    assert_eq!(production_served(&app, "gh_summarize").await, json!(true));
    assert_eq!(written["written_over"], "Summarize {{topic}}.", "{written}");
    assert_eq!(rolled_back, 200);
    assert_eq!((hiding, after_rollback), (Some(1.0), Some(0.0)));
}
