//! What a prompt version is served to, and what counts for it: a session joins an
//! experiment's arm only with a fetch its version fits; a trained version is served only while
//! its backend renders the text it was made from, and a new text ends the experiment and the
//! watch of versions made from the old one; a text that keeps changing is not trained; and a
//! rating that names no version counts for what its session was last served.

use serde_json::{json, Value};

use super::prompts::{badly_rated_by_llm, badly_rated_with, run_where, summary};
use super::rollback::{production_of_becomes, watching};
use super::{app, deploy_by_hand_to, fake_llm_by, listed_as};
use crate::fake_connector::FakeConnector;
use crate::helpers::TestApp;

/// The sessions given to each arm of `gh_summarize`'s live experiment, production first.
async fn arm_sessions(app: &TestApp) -> Vec<u64> {
    let (_, listed) = app.get_json("/api/v1/targets").await;
    let targets = listed["targets"].as_array().cloned().unwrap_or_default();
    let prompt = targets.iter().find(|t| t["target"] == "gh_summarize");
    let arms = prompt.and_then(|t| t["experiment"].as_array().cloned());
    let sessions = |a: &Value| a["sessions"].as_u64().unwrap_or_default();
    arms.unwrap_or_default().iter().map(sessions).collect()
}

#[actix_web::test]
async fn a_session_whose_fetch_a_tried_version_does_not_fit_does_not_join_its_arm() {
    let (_backend, app) = badly_rated_by_llm("Summarize {{topic}} in three bullet points.").await;
    run_where(&app, |r| r["outcome"] == "experiment").await;
    let before = arm_sessions(&app).await;

    // The tried versions have no place for a style: these sessions get the backend's text.
    let mut texts = Vec::new();
    for _ in 0..8 {
        let session = app.initialize().await;
        let arguments = json!({"topic": "go", "style": "short"});
        let get = json!({"name": "gh_summarize", "arguments": arguments});
        let got = app.rpc(&session, "prompts/get", get).await;
        texts.push(got["result"]["messages"][0]["content"]["text"].clone());
    }
    let after = arm_sessions(&app).await;

    assert_eq!(before, [0, 0, 0]);
    assert!(texts.iter().all(|t| t == "Summarize go."), "{texts:?}");
    // Those drawn production's arm (version 1, the backend's own text, fits) joined it; the
    // others joined none, and draw again at their next fetch.
    assert_eq!(after.len(), 3);
    assert!(after[0] <= 8, "{after:?}");
    assert_eq!(after[1..], [0, 0], "{after:?}");
}

#[actix_web::test]
async fn a_new_backend_text_ends_the_experiment_and_the_watch_of_versions_made_from_the_old() {
    let (llm, _) = fake_llm_by(|request| match request.contains("Write inputs") {
        true => "[]".into(),
        false => "Summarize {{topic}} in three bullet points.".into(),
    })
    .await;
    let backend = FakeConnector::start().await;
    // No cooldown: once nothing holds the prompt back, three bad ratings start a run.
    let app = badly_rated_with(&backend, Some(llm), |s| s.trainer.cooldown_ms = 0).await;
    let started = run_where(&app, |r| r["outcome"] == "experiment").await;
    let versions = "/api/v1/prompts/prompt:gh_summarize/versions";
    let (_, variant) = app
        .get_json(&format!("{versions}/{}", started["candidate_version"]))
        .await;
    let (_, original) = app.get_json(&format!("{versions}/1")).await;
    // The LLM's variant is deployed by hand beside the experiment: it is watched.
    let deploy = json!({"version": started["candidate_version"]});
    let path = "/api/v1/prompts/prompt:gh_summarize/deploy";
    let (deployed, _) = app.send_json("POST", path, &deploy).await;

    backend.set_prompt_lead("Summarize the news about");
    let session = app.initialize().await;
    let changed = summary(&app, &session, "go").await;
    let ended = run_where(&app, |r| r["trigger"] == "experiment").await;
    for _ in 0..3 {
        rate_in(&app, &session, "down").await;
    }
    let next = run_where(&app, |r| {
        r["trigger"] == "low_rating" && r["id"] != started["id"]
    })
    .await;

    assert_eq!(variant["based_on"], "Summarize {{topic}}.", "{variant}");
    assert_eq!(original["based_on"], Value::Null, "{original}");
    assert_eq!(deployed, 200);
    assert_eq!(changed, "Summarize the news about go.");
    assert_eq!(ended["outcome"], "kept", "{ended}");
    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the backend's text is no longer the one versions 2, 3 were made from"),
        "{reason}"
    );
    assert_ne!(next["outcome"], Value::Null, "{next}");
}

#[actix_web::test]
async fn a_prompt_whose_text_changes_from_fetch_to_fetch_is_not_trained() {
    let backend = FakeConnector::start().await;
    let app = app(&backend, |_| {}).await;
    let session = app.initialize().await;
    let train = "/api/v1/prompts/prompt:gh_summarize/train";
    // A new release changes the text once: the prompt is still trained.
    for lead in ["Summarize", "At 10:00, summarize"] {
        backend.set_prompt_lead(lead);
        summary(&app, &session, "rust").await;
    }
    let (once, _) = app.send_json("POST", train, &json!({})).await;
    // A text that holds the time changes again.
    backend.set_prompt_lead("At 10:01, summarize");
    summary(&app, &session, "rust").await;
    let (twice, answer) = app.send_json("POST", train, &json!({})).await;

    assert_eq!(once, 200);
    assert_eq!(twice, 409, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the text of prompt `gh_summarize` changed 2 times in the last 3600 s"),
        "{error}"
    );
}

#[actix_web::test]
async fn a_trigger_on_a_prompt_that_cannot_be_trained_records_why() {
    let backend = FakeConnector::start().await;
    let app = app(&backend, |s| {
        s.trainer.enabled = true;
        s.trainer.min_ratings = 3;
    })
    .await;
    let session = app.initialize().await;
    for lead in ["Summarize", "At 10:00, summarize", "At 10:01, summarize"] {
        backend.set_prompt_lead(lead);
        summary(&app, &session, "rust").await;
    }
    for _ in 0..3 {
        rate_in(&app, &session, "down").await;
    }

    let run = run_where(&app, |r| r["outcome"] == "skipped").await;

    assert_eq!(run["trigger"], "low_rating", "{run}");
    let reason = run["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the text of prompt `gh_summarize` changed 2 times"),
        "{reason}"
    );
}

/// Fetches `gh_summarize` about rust in `session` (with a `style` too when `styled`) and rates
/// it down three times in the session, naming no version.
pub(super) async fn fetch_and_rate_down(app: &TestApp, session: &str, styled: bool) {
    let mut arguments = json!({"topic": "rust"});
    if styled {
        arguments["style"] = json!("short");
    }
    let get = json!({"name": "gh_summarize", "arguments": arguments});
    let got = app.rpc(session, "prompts/get", get).await;
    assert!(got["result"]["messages"].is_array(), "{got}");
    for _ in 0..3 {
        rate_in(app, session, "down").await;
    }
}

#[actix_web::test]
async fn a_deployed_prompt_is_rolled_back_on_its_own_ratings_not_on_those_of_the_backends_text() {
    let backend = FakeConnector::start().await;
    let app = app(&backend, |s| {
        watching(s);
        s.trainer.check_interval_ms = 50;
    })
    .await;
    let session = app.initialize().await;
    for _ in 0..4 {
        assert_eq!(summary(&app, &session, "rust").await, "Summarize rust.");
        rate_in(&app, &session, "up").await;
    }
    let id = "prompt:gh_summarize";
    let version = deploy_by_hand_to(&app, id, "Summarize what is known about {{topic}}.").await;

    // Fetches that give a style, which version 2 has no place for, are served the backend's
    // text; the session's ratings after them rate that text.
    for _ in 0..4 {
        fetch_and_rate_down(&app, &session, true).await;
    }
    let ratings = || listed_as(&app, "gh_summarize", "ratings");
    TestApp::read_until(ratings, |r| *r == 16).await;
    // A few checks of the watch.
    actix_rt::time::sleep(std::time::Duration::from_millis(400)).await;
    let path = format!("/api/v1/prompts/{id}");
    let kept = app.get_json(&path).await.1["production"].clone();
    let (_, runs) = app.get_json("/api/v1/training-runs").await;
    let runs_then = runs["runs"].as_array().map_or(0, Vec::len);

    // Fetches that version 2 fits, rated down, are its own.
    for _ in 0..10 {
        fetch_and_rate_down(&app, &session, false).await;
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
        if app.get_json(&path).await.1["production"] == 1 {
            break;
        }
    }
    let production = production_of_becomes(&app, id, &Value::from(1)).await;
    let (_, runs) = app.get_json("/api/v1/training-runs").await;

    assert_eq!(version, 2);
    assert_eq!(kept, 2, "not rolled back on the backend's text: {runs}");
    assert_eq!(runs_then, 0);
    assert_eq!(production, 1, "rolled back on its own ratings");
    let run = &runs["runs"][0];
    assert_eq!(run["outcome"], "rolled_back", "{runs}");
    let reason = run["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("in its ratings"), "{reason}");
}

/// Rates `gh_summarize` through the ops API as `session`, naming no version.
pub(super) async fn rate_in(app: &TestApp, session: &str, rating: &str) {
    let body = json!({"target_kind": "prompt", "target": "gh_summarize",
        "rating": rating, "session_id": session});
    let (status, answer) = app.send_json("POST", "/api/v1/feedback", &body).await;
    assert_eq!(status, 202, "{answer}");
}
