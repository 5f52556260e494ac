//! What the trainer keeps across a restart on the same store: the day's LLM budget, the
//! signals of its window (live figures and triggers read them), the watch over a version
//! deployed before it (counting for a prompt's version only the ratings about it), a live experiment with what it counted, and the prompts' texts learnt
//! from their fetches, with when they changed.

use std::time::Duration;

use mcpgate::configuration::Settings;
use mcpgate::store::{experiments, feedback, prompt_templates};
use serde_json::json;

use super::experiments::{experiment, rate};
use super::prompt_serving::{fetch_and_rate_down, rate_in};
use super::prompts::summary;
use super::rollback::{
    fail_until_rolled_back, production_becomes, production_of_becomes, watching,
};
use super::runs::{five_failures, rewritten, thin_answer, thin_tools};
use super::{
    app, deploy_by_hand_to, description, description_changes, fake_llm, four_good_searches, tools,
};
use crate::fake_connector::{Behaviour, FakeConnector};
use crate::helpers::{connector, spawn_app_sharing, TestApp};

/// Waits until the store holds `count` feedback rows of `tool` (the recorder writes them in
/// batches).
async fn stored(app: &TestApp, tool: &str, count: i64) {
    stored_of(app, ("tool", tool), count).await
}

/// Waits until the store holds `count` feedback rows of the target (kind, name).
async fn stored_of(app: &TestApp, (kind, target): (&str, &str), count: i64) {
    let rows = || async {
        let mut conn = app.gateway.pool.get().unwrap();
        feedback::count_for(&mut conn, kind, target).unwrap()
    };
    let rows = TestApp::read_until(rows, |rows| *rows >= count).await;
    assert!(
        rows >= count,
        "the store held {rows} feedback rows, not {count}"
    );
}

/// A gateway on `app`'s store in front of `backend`, with settings changed by `tweak`.
async fn restarted(
    app: &TestApp,
    backend: &FakeConnector,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_sharing(app, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        tweak(s);
    })
    .await
}

#[actix_web::test]
async fn the_days_llm_budget_holds_within_a_gateway_and_across_a_restart() {
    let (llm, requests) = fake_llm("Search issues. Always use this tool.").await;
    let backend = FakeConnector::with_tools(tools()).await;
    let budget = move |s: &mut Settings| {
        s.trainer.llm.base_url = llm;
        s.trainer.llm.max_calls_per_day = 1;
    };
    let app = app(&backend, budget.clone()).await;
    let train = "/api/v1/prompts/tool:gh_search/train";

    let (_, first) = app.send_json("POST", train, &json!({})).await;
    let (_, second) = app.send_json("POST", train, &json!({})).await;
    let restarted = restarted(&app, &backend, budget).await;
    let (_, third) = restarted.send_json("POST", train, &json!({})).await;
    let (_, runs) = restarted.get_json("/api/v1/training-runs").await;

    assert_eq!(first["approach"], "meta-prompt", "{first}");
    assert_eq!(first["outcome"], "rejected", "{first}");
    let spent = "the meta-prompt is needed, but the LLM's daily call budget is spent";
    for later in [&second, &third] {
        assert_eq!(later["reason"], spent, "{later}");
    }
    assert_eq!(requests.lock().unwrap().len(), 1);
    let calls: Vec<_> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["llm_calls"].clone())
        .collect();
    assert_eq!(calls, [json!(0), json!(0), json!(1)], "{runs}");
}

/// A gateway in front of `backend` whose `gh_strict` failed four times, as the store holds.
async fn four_failures(backend: &FakeConnector) -> TestApp {
    let app = app(backend, |_| {}).await;
    let session = app.initialize().await;
    for query in ["a", "b", "c", "d"] {
        let call = json!({"name": "gh_strict", "arguments": {"query": query}});
        let failed = app.rpc(&session, "tools/call", call).await;
        assert_eq!(failed["result"]["isError"], true, "{failed}");
    }
    stored(&app, "gh_strict", 4).await;
    app
}

/// Settings under which four failures of four calls start a run.
fn triggered(s: &mut Settings) {
    s.trainer.enabled = true;
    s.trainer.min_volume = 4;
    s.trainer.error_rate_threshold = 0.5;
}

/// The training runs of `app` once `count` are listed, or after 1 s.
async fn runs_when(app: &TestApp, count: usize) -> Vec<serde_json::Value> {
    let mut runs = Vec::new();
    for _ in 0..50 {
        let (_, listed) = app.get_json("/api/v1/training-runs").await;
        runs = listed["runs"].as_array().cloned().unwrap_or_default();
        if runs.len() >= count {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    runs
}

#[actix_web::test]
async fn failures_seen_before_a_restart_count_in_live_figures_and_start_a_run_after_it() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = four_failures(&backend).await;

    let restarted = restarted(&app, &backend, triggered).await;
    let (_, listed) = restarted.get_json("/api/v1/targets").await;
    let runs = runs_when(&restarted, 1).await;

    let target = &listed["targets"][0];
    assert_eq!(
        (&target["uses"], &target["errors"]),
        (&json!(4), &json!(4)),
        "{listed}"
    );
    assert_eq!(
        runs.first().map(|r| &r["trigger"]),
        Some(&json!("error_rate")),
        "{runs:?}"
    );
}

#[actix_web::test]
async fn failures_a_run_has_learnt_from_before_a_restart_start_no_run_after_it() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = four_failures(&backend).await;
    let train = "/api/v1/prompts/tool:gh_strict/train";
    let (status, _) = app.send_json("POST", train, &json!({})).await;
    assert_eq!(status, 200);

    let restarted = restarted(&app, &backend, triggered).await;
    // Ten checks of the trainer (every 100 ms).
    let runs = runs_when(&restarted, 2).await;

    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["trigger"], "manual");
}

#[actix_web::test]
async fn a_version_deployed_before_a_restart_is_still_watched_and_rolled_back_after_it() {
    let backend = FakeConnector::with_tools(tools()).await;
    let app = app(&backend, watching).await;
    four_good_searches(&app).await;
    let (_, outcome) = app
        .send_json("POST", "/api/v1/prompts/tool:gh_search/train", &json!({}))
        .await;
    assert_eq!(outcome["outcome"], "deployed", "{outcome}");
    stored(&app, "gh_search", 4).await;

    let restarted = restarted(&app, &backend, watching).await;
    let session = restarted.initialize().await;
    let call = json!({"name": "gh_search", "arguments": {"repo": "a/b", "query": "q"}});
    let (production, runs) = fail_until_rolled_back(&restarted, &backend, &session, &call).await;

    assert_eq!(production, 1);
    assert_eq!(runs["runs"][0]["outcome"], "rolled_back", "{runs}");
    assert_eq!(runs["runs"][0]["trigger"], "live_results", "{runs}");
}

/// Waits until the store holds `count` sessions for the experiment of `gh_search` (the trainer
/// stores them at its checks).
async fn sessions_stored(app: &TestApp, count: u64) {
    let sessions = || async {
        let rows = experiments::all(&mut app.gateway.pool.get().unwrap()).unwrap();
        let arms: Vec<serde_json::Value> = rows
            .first()
            .and_then(|r| serde_json::from_str(&r.arms).ok())
            .unwrap_or_default();
        arms.iter()
            .filter_map(|a| a["sessions"].as_u64())
            .sum::<u64>()
    };
    let sessions = TestApp::read_until(sessions, |s| *s == count).await;
    assert_eq!(sessions, count, "sessions of the experiment in the store");
}

#[actix_web::test]
async fn a_live_experiment_goes_on_after_a_restart_with_what_it_counted_before() {
    let (backend, app, variant) = experiment(|_| {}).await;
    let session = app.initialize().await;
    description(&app, &session, "gh_search").await;
    rate(&app, variant, "up", 1).await;
    rate(&app, 1, "down", 1).await;
    stored(&app, "gh_search", 6).await;
    sessions_stored(&app, 1).await;

    let restarted = restarted(&app, &backend, |s| {
        s.trainer.min_volume = 4;
        s.trainer.canary_share = 1.0;
    })
    .await;
    let (_, listed) = restarted.get_json("/api/v1/targets").await;
    // Two more of each: counted afresh, 2 of 2 against 0 of 2 is not beyond the margin (the
    // lower bound of the difference is 0.0495); with the counts before the restart it is.
    rate(&restarted, variant, "up", 2).await;
    rate(&restarted, 1, "down", 2).await;
    let production = production_becomes(&restarted, &json!(variant)).await;
    let (_, runs) = restarted.get_json("/api/v1/training-runs").await;

    let arms = &listed["targets"][0]["experiment"];
    let counted: Vec<(i64, u64, u64)> = arms
        .as_array()
        .unwrap_or_else(|| panic!("no experiment after the restart: {listed}"))
        .iter()
        .map(|a| {
            let n = |field: &str| a[field].as_u64().unwrap();
            (
                a["version"].as_i64().unwrap(),
                n("successes"),
                n("failures"),
            )
        })
        .collect();
    assert_eq!(counted, [(1, 0, 1), (variant, 1, 0)], "{listed}");
    let sessions: u64 = arms
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sessions"].as_u64().unwrap())
        .sum();
    assert_eq!(sessions, 1, "{listed}");
    assert_eq!(production, variant, "{runs}");
    let concluded = &runs["runs"][0];
    assert_eq!(
        (&concluded["trigger"], &concluded["outcome"]),
        (&json!("experiment"), &json!("deployed")),
        "{runs}"
    );
}

#[actix_web::test]
async fn a_look_reached_before_a_restart_but_not_yet_taken_is_taken_after_it() {
    let backend = FakeConnector::with_tools(tools()).await;
    // No check comes on the first gateway: the looks its failures reach are never taken there.
    let app = app(&backend, |s| {
        watching(s);
        s.trainer.check_interval_ms = 3_600_000;
    })
    .await;
    let (session, call) = four_good_searches(&app).await;
    let (_, outcome) = app
        .send_json("POST", "/api/v1/prompts/tool:gh_search/train", &json!({}))
        .await;
    assert_eq!(outcome["outcome"], "deployed", "{outcome}");
    backend.set_behaviour(Behaviour::Fail);
    // Four failures reach the looks at two and four uses (the circuit opens after five).
    for _ in 0..4 {
        app.rpc(&session, "tools/call", call.clone()).await;
    }
    stored(&app, "gh_search", 8).await;
    // The backend is well again: what rolls back is what came before the restart.
    backend.set_behaviour(Behaviour::Normal);

    let restarted = restarted(&app, &backend, watching).await;
    let production = production_becomes(&restarted, &json!(1)).await;
    let (_, runs) = restarted.get_json("/api/v1/training-runs").await;

    assert_eq!(production, 1, "{runs}");
    let rollback = &runs["runs"][0];
    assert_eq!(
        (&rollback["trigger"], &rollback["outcome"]),
        (&json!("live_results"), &json!("rolled_back")),
        "{runs}"
    );
    let reason = rollback["reason"].as_str().unwrap();
    assert!(reason.contains("live error rate of 1.00"), "{reason}");
}

#[actix_web::test]
async fn ratings_of_a_prompts_backend_text_before_a_restart_do_not_count_against_its_version_after_it(
) {
    let backend = FakeConnector::start().await;
    // No check comes on the first gateway.
    let app = app(&backend, |s| {
        watching(s);
        s.trainer.check_interval_ms = 3_600_000;
    })
    .await;
    let session = app.initialize().await;
    let fetch = json!({"name": "gh_summarize", "arguments": {"topic": "rust"}});
    for _ in 0..4 {
        app.rpc(&session, "prompts/get", fetch.clone()).await;
        rate_in(&app, &session, "up").await;
    }
    let id = "prompt:gh_summarize";
    deploy_by_hand_to(&app, id, "Summarize what is known about {{topic}}.").await;
    // Served the backend's text (version 2 has no place for a style), and rated down after.
    for _ in 0..4 {
        fetch_and_rate_down(&app, &session, true).await;
    }
    stored_of(&app, ("prompt", "gh_summarize"), 24).await;

    let restarted = restarted(&app, &backend, |s| {
        watching(s);
        s.trainer.check_interval_ms = 50;
    })
    .await;
    // A few checks of the resumed watch.
    actix_rt::time::sleep(Duration::from_millis(400)).await;
    let path = format!("/api/v1/prompts/{id}");
    let kept = restarted.get_json(&path).await.1["production"].clone();
    // The watch goes on: version 2's own fetches, rated down, roll it back.
    let session = restarted.initialize().await;
    for _ in 0..10 {
        fetch_and_rate_down(&restarted, &session, false).await;
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        if restarted.get_json(&path).await.1["production"] == 1 {
            break;
        }
    }
    let production = production_of_becomes(&restarted, id, &json!(1)).await;
    let (_, runs) = restarted.get_json("/api/v1/training-runs").await;

    assert_eq!(kept, 2, "{runs}");
    assert_eq!(production, 1, "{runs}");
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1), "{runs}");
}

const TRAIN_SUMMARY: &str = "/api/v1/prompts/prompt:gh_summarize/train";

/// Waits until the prompts' texts the store holds pass `done` (or gives up after 10 s); returns
/// them.
async fn learnt_when(
    app: &TestApp,
    done: impl Fn(&[prompt_templates::Template]) -> bool,
) -> Vec<prompt_templates::Template> {
    let learnt = || async { prompt_templates::all(&mut app.gateway.pool.get().unwrap()).unwrap() };
    TestApp::read_until(learnt, |l| done(l)).await
}

#[actix_web::test]
async fn a_prompt_whose_text_changes_from_fetch_to_fetch_is_not_trained_after_a_restart_either() {
    let backend = FakeConnector::start().await;
    let app = app(&backend, |_| {}).await;
    let session = app.initialize().await;
    for lead in ["Summarize", "At 10:00, summarize", "At 10:01, summarize"] {
        backend.set_prompt_lead(lead);
        summary(&app, &session, "rust").await;
    }
    let twice =
        |learnt: &[prompt_templates::Template]| learnt.iter().any(|t| t.changes().len() == 2);
    let learnt = learnt_when(&app, twice).await;

    let restarted = restarted(&app, &backend, |_| {}).await;
    let (status, answer) = restarted.send_json("POST", TRAIN_SUMMARY, &json!({})).await;

    assert!(twice(&learnt), "{learnt:?}");
    assert_eq!(status, 409, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the text of prompt `gh_summarize` changed 2 times"),
        "{error}"
    );
}

#[actix_web::test]
async fn a_prompts_text_learnt_before_a_restart_lets_it_be_trained_after_it_before_a_fetch() {
    let backend = FakeConnector::start().await;
    let app = app(&backend, |_| {}).await;
    let session = app.initialize().await;
    let fetch = json!({"name": "gh_summarize", "arguments": {"topic": "rust"}});
    let got = app.rpc(&session, "prompts/get", fetch).await;
    assert_eq!(
        got["result"]["messages"][0]["content"]["text"],
        "Summarize rust."
    );
    let learnt = learnt_when(&app, |learnt| !learnt.is_empty()).await;

    let restarted = restarted(&app, &backend, |_| {}).await;
    let (status, outcome) = restarted.send_json("POST", TRAIN_SUMMARY, &json!({})).await;

    let learnt: Vec<(&str, &str)> = learnt
        .iter()
        .map(|t| (t.target.as_str(), t.template.as_str()))
        .collect();
    assert_eq!(learnt, [("gh_summarize", "Summarize {{topic}}.")]);
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["outcome"], "experiment", "{outcome}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(reason.contains("so they are fenced as data"), "{reason}");
}

#[actix_web::test]
async fn a_thin_description_the_watch_put_back_before_a_restart_is_rewritten_after_it_at_once() {
    let (llm, prompts) = fake_llm(&thin_answer().to_string()).await;
    let backend = FakeConnector::with_tools(thin_tools()).await;
    let settings = move |cooldown_ms: u64| {
        let llm = llm.clone();
        move |s: &mut Settings| {
            s.trainer.enabled = true;
            s.trainer.check_interval_ms = 50;
            s.trainer.llm.base_url = llm;
            // Looks at 5, 10 and 20 uses; ten new uses would be needed for a run on evidence.
            s.trainer.min_volume = 10;
            s.trainer.rollback_margin = 0.2;
            s.trainer.cooldown_ms = cooldown_ms;
        }
    };
    // The first gateway's cooldown keeps it from rewriting the tools again.
    let app = app(&backend, settings(3_600_000)).await;
    let session = app.initialize().await;
    description_changes(&app, &session, "gh_search", "Search.").await;
    five_failures(&app, &session).await;
    production_becomes(&app, &json!(1)).await;
    let before = runs_when(&app, 4).await;
    let rollbacks = before.iter().filter(|r| r["trigger"] == "live_results");
    assert_eq!(rollbacks.count(), 2, "both rolled back: {before:?}");

    let restarted = restarted(&app, &backend, settings(0)).await;
    let runs = rewritten(&restarted, 4).await;

    let rewrites = runs.iter().filter(|r| r["approach"] == "meta-prompt");
    assert_eq!(rewrites.count(), 4, "both rewritten twice: {runs:?}");
    assert_eq!(prompts.lock().unwrap().len(), 2, "one LLM call each time");
}

#[actix_web::test]
async fn what_the_trainer_stores_at_its_checks_is_stored_when_the_gateway_stops() {
    // No check comes: what stores the session and the prompt's text is the shutdown.
    let slow = |s: &mut Settings| s.trainer.check_interval_ms = 3_600_000;
    let (backend, app, _) = experiment(slow).await;
    let session = app.initialize().await;
    description(&app, &session, "gh_search").await;
    let fetch = json!({"name": "gh_summarize", "arguments": {"topic": "rust"}});
    app.rpc(&session, "prompts/get", fetch).await;

    app.stop().await;
    sessions_stored(&app, 1).await;
    let mut conn = app.gateway.pool.get().unwrap();
    let learnt = prompt_templates::all(&mut conn).unwrap();
    drop(conn);
    let restarted = restarted(&app, &backend, slow).await;
    let (_, listed) = restarted.get_json("/api/v1/targets").await;

    let targets = listed["targets"].as_array().unwrap();
    let search = targets.iter().find(|t| t["target"] == "gh_search");
    let arms = search.and_then(|t| t["experiment"].as_array());
    let arms = arms.unwrap_or_else(|| panic!("no experiment after the restart: {listed}"));
    let sessions: u64 = arms.iter().filter_map(|a| a["sessions"].as_u64()).sum();
    assert_eq!(sessions, 1, "{listed}");
    let learnt: Vec<&str> = learnt.iter().map(|t| t.template.as_str()).collect();
    assert_eq!(learnt, ["Summarize {{topic}}."]);
}
