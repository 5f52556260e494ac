//! Live experiments of tool descriptions: a candidate inconclusive offline is served beside
//! production (and beside what the rules make, when an LLM wrote it), and the live results or a
//! deploy by hand decide what stays.

use serde_json::{json, Value};

use super::rollback::production_becomes;
use super::{
    app, deploy_by_hand, description, description_when, fake_llm, metric_becomes, searches,
};
use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_sharing, TestApp};
use crate::stateless::{messages, post, request};

/// A gateway whose one tool, `gh_search`, is documented, with four successful calls seen.
async fn documented(
    tweak: impl FnOnce(&mut mcpgate::configuration::Settings),
) -> (FakeConnector, TestApp) {
    let documented = json!({"name": "search", "description": "Search `repo` for `query`.",
        "inputSchema": {"type": "object", "properties": {"repo": {"type": "string"}, "query": {"type": "string"}}}});
    let backend = FakeConnector::with_tools(vec![documented]).await;
    let app = app(&backend, |s| {
        s.trainer.min_volume = 4;
        s.trainer.canary_share = 1.0;
        tweak(s);
    })
    .await;
    let session = app.initialize().await;
    let calls = [("a/b", "x"), ("c/d", "y"), ("e/f", "z"), ("g/h", "w")];
    searches(&app, &session, &calls).await;
    (backend, app)
}

/// [`documented`], running a live experiment of a variant with examples (its version given
/// back) against version 1 on every session.
pub(super) async fn experiment(
    tweak: impl FnOnce(&mut mcpgate::configuration::Settings),
) -> (FakeConnector, TestApp, i64) {
    let (backend, app) = documented(tweak).await;
    let (_, outcome) = app
        .send_json("POST", "/api/v1/prompts/tool:gh_search/train", &json!({}))
        .await;
    assert_eq!(outcome["approach"], "reinforcement", "{outcome}");
    assert_eq!(outcome["outcome"], "experiment");
    (backend, app, outcome["version"].as_i64().unwrap())
}

/// Rates `version` of `gh_search` through the API `times` times.
pub(super) async fn rate(app: &TestApp, version: i64, rating: &str, times: usize) {
    for _ in 0..times {
        let (status, _) = app
            .send_json(
                "POST",
                "/api/v1/feedback",
                &json!({"target_kind": "tool", "target": "gh_search",
                "version": version, "rating": rating}),
            )
            .await;
        assert_eq!(status, 202);
    }
}

#[actix_web::test]
async fn an_inconclusive_candidate_is_tried_live_and_the_winner_becomes_production() {
    let (_backend, app, variant) = experiment(|_| {}).await;
    rate(&app, variant, "up", 3).await;
    rate(&app, 1, "down", 3).await;
    let production = production_becomes(&app, &Value::from(variant)).await;
    let (_, runs) = app.get_json("/api/v1/training-runs").await;
    // The metrics count the run that started the experiment and the one that ended it.
    let series = |outcome: &str| {
        format!(
            r#"mcpgate_training_runs_total{{approach="reinforcement",kind="tool",outcome="{outcome}"}}"#
        )
    };
    let started = metric_becomes(&app, &series("experiment"), 1.0).await;
    let won = metric_becomes(&app, &series("deployed"), 1.0).await;

    assert_eq!(production, variant);
    assert_eq!(runs["runs"][0]["approach"], "reinforcement");
    assert_eq!(runs["runs"][0]["outcome"], "deployed");
    assert_eq!((started, won), (Some(1.0), Some(1.0)));
    let session = app.initialize().await;
    let served = description_when(&app, &session, "gh_search", |s| s.contains("Examples")).await;
    assert!(served.contains("Examples"), "{served}");
}

#[actix_web::test]
async fn an_llm_text_inconclusive_offline_is_tried_live_beside_what_the_rules_make() {
    let (llm, _) = fake_llm("Search `repo` for `query` among its issues.").await;
    let (_backend, app) = documented(|s| s.trainer.llm.base_url = llm).await;

    let (_, outcome) = app
        .send_json("POST", "/api/v1/prompts/tool:gh_search/train", &json!({}))
        .await;
    let (_, listed) = app.get_json("/api/v1/targets").await;

    assert_eq!(outcome["outcome"], "experiment", "{outcome}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the description says little beyond the tool's name, and an LLM"),
        "{reason}"
    );
    assert!(
        reason.contains("versions 1, 2, 3 are served side by side, the last made by few-shot"),
        "{reason}"
    );
    let target = &listed["targets"][0];
    let arms: Vec<&Value> = target["experiment"].as_array().unwrap().iter().collect();
    assert_eq!(arms.len(), 3, "{target}");
    assert_eq!(
        target["labels"],
        json!({"production": 1, "candidate": 2, "variant": 2, "alternative": 3})
    );
    let (_, third) = app
        .get_json("/api/v1/prompts/tool:gh_search/versions/3")
        .await;
    let text = third["text"].as_str().unwrap();
    assert!(
        text.starts_with("Search `repo` for `query`.\n\nExamples of arguments that worked:"),
        "{text}"
    );
}

#[actix_web::test]
async fn an_experiment_that_ends_after_a_deploy_by_hand_leaves_that_deploy_in_production() {
    let (_backend, app, variant) = experiment(|s| s.trainer.check_manual_deploys = false).await;
    let rate = |version: i64, rating: &'static str| json!({"target_kind": "tool", "target": "gh_search", "version": version, "rating": rating});
    let send = |rating: Value| {
        let app = &app;
        async move {
            let (status, _) = app.send_json("POST", "/api/v1/feedback", &rating).await;
            assert_eq!(status, 202);
        }
    };
    for _ in 0..3 {
        send(rate(1, "down")).await;
    }
    let by_hand = deploy_by_hand(&app, "Search `repo` (owner/name) for `query` in code.").await;
    for _ in 0..3 {
        send(rate(variant, "up")).await;
    }
    let newest = || async { app.get_json("/api/v1/training-runs").await.1["runs"][0].clone() };
    let concluded = TestApp::read_until(newest, |r| r["trigger"] == "experiment").await;
    let (_, shown) = app.get_json("/api/v1/prompts/tool:gh_search").await;
    let kept =
        r#"mcpgate_training_runs_total{approach="reinforcement",kind="tool",outcome="kept"}"#;
    let kept = metric_becomes(&app, kept, 1.0).await;

    assert_eq!(kept, Some(1.0));
    assert_eq!(concluded["trigger"], "experiment", "{concluded}");
    assert_eq!(concluded["outcome"], "kept", "{concluded}");
    let reason = concluded["reason"].as_str().unwrap();
    assert!(reason.contains("production changed"), "{reason}");
    assert_eq!(shown["production"], by_hand);
}

/// The description of `gh_search` in a stateless `tools/list`, sent with `authorization`.
async fn listed_statelessly(app: &TestApp, authorization: Option<&str>) -> String {
    let body = request(1, "tools/list", json!({}), json!({}));
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    let (_, replies) = messages(post(app, &body, &headers).await).await;
    let tools = replies[0]["result"]["tools"].as_array().unwrap().clone();
    let tool = tools.iter().find(|t| t["name"] == "gh_search").unwrap();
    tool["description"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn stateless_requests_keep_their_principals_version_and_anonymous_ones_join_no_experiment() {
    let (_backend, app, _) = experiment(|_| {}).await;
    let (_, production) = app
        .get_json("/api/v1/prompts/tool:gh_search/versions/1")
        .await;
    let production = production["text"].as_str().unwrap().to_string();

    let mut principals = Vec::new();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        let token = format!("Bearer {name}");
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(listed_statelessly(&app, Some(&token)).await);
        }
        principals.push((name, seen));
    }
    let mut anonymous = Vec::new();
    for _ in 0..10 {
        anonymous.push(listed_statelessly(&app, None).await);
    }

    for (name, seen) in &principals {
        assert!(
            seen.iter().all(|d| d == &seen[0]),
            "{name} was served: {seen:?}"
        );
    }
    assert!(
        anonymous.iter().all(|d| d.starts_with(&production)),
        "a request naming no principal gets production ({production:?}): {anonymous:?}"
    );
}

/// The sessions the arms of `app`'s experiment of `gh_search` count, in all.
fn arm_sessions(app: &TestApp) -> u64 {
    let arms = app.gateway.served.experiments.arms("tool", "gh_search");
    arms.unwrap_or_default().iter().map(|a| a.sessions).sum()
}

#[actix_web::test]
async fn every_gateway_serves_a_live_experiment_and_one_concludes_it_on_all_their_feedback() {
    // Each gateway looks at what the others record every 100 ms.
    let shared = |s: &mut mcpgate::configuration::Settings| {
        s.trainer.lease_ms = 300;
        s.database.sync_interval_ms = 100;
    };
    let (backend, first) = documented(shared).await;
    let second = spawn_app_sharing(&first, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        s.trainer.min_volume = 4;
        s.trainer.canary_share = 1.0;
        shared(s);
    })
    .await;
    let (_, outcome) = first
        .send_json("POST", "/api/v1/prompts/tool:gh_search/train", &json!({}))
        .await;
    let variant = outcome["version"].as_i64().expect("a variant");
    let served_on_second = || async {
        let experiments = &second.gateway.served.experiments;
        experiments.arms("tool", "gh_search").map(|arms| arms.len())
    };
    let followed = TestApp::read_until(served_on_second, Option::is_some).await;

    // Four sessions join arms on the second; the first counts them.
    let mut served = Vec::new();
    for _ in 0..4 {
        let session = second.initialize().await;
        served.push(description(&second, &session, "gh_search").await);
    }
    let counted = TestApp::read_until(|| async { arm_sessions(&first) }, |n| *n == 4).await;
    // Ratings given on the second decide it.
    rate(&second, variant, "up", 3).await;
    rate(&second, 1, "down", 3).await;
    let on_first = production_becomes(&first, &Value::from(variant)).await;
    let on_second = production_becomes(&second, &Value::from(variant)).await;
    let ended = TestApp::read_until(served_on_second, Option::is_none).await;
    // Several more checks (every 100 ms), in which no other conclusion may be recorded.
    actix_rt::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, runs) = first.get_json("/api/v1/training-runs").await;
    let concluded: Vec<&Value> = runs["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter(|run| run["trigger"] == "experiment")
        .collect();

    assert_eq!(outcome["outcome"], "experiment", "{outcome}");
    assert_eq!(
        followed,
        Some(2),
        "the second serves the first's experiment"
    );
    let texts: std::collections::HashSet<&String> = served.iter().collect();
    assert!(!texts.is_empty() && texts.len() <= 2, "{served:?}");
    assert_eq!(
        counted, 4,
        "the first counts the sessions that joined on the second"
    );
    assert_eq!((on_first, on_second), (json!(variant), json!(variant)));
    assert_eq!(ended, None, "the second stops serving what was concluded");
    assert_eq!(concluded.len(), 1, "one conclusion: {concluded:?}");
    assert_eq!(concluded[0]["outcome"], "deployed");
}

#[actix_web::test]
async fn a_gateway_that_starts_beside_a_live_experiment_counts_each_session_once() {
    let shared = |s: &mut mcpgate::configuration::Settings| {
        s.trainer.lease_ms = 300;
        s.database.sync_interval_ms = 100;
    };
    let (backend, first, variant) = experiment(shared).await;
    for _ in 0..3 {
        let session = first.initialize().await;
        description(&first, &session, "gh_search").await;
    }
    rate(&first, variant, "up", 2).await;
    // The sessions' signals and the ratings are stored before the second starts.
    let stored = || async {
        first
            .rows("feedback WHERE signal IN ('assigned', 'rating')")
            .await
    };
    let stored = TestApp::read_until(stored, |n| *n == 5).await;
    let second = spawn_app_sharing(&first, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        s.trainer.canary_share = 1.0;
        shared(s);
    })
    .await;
    // Several looks (every 100 ms), which may not count them again.
    actix_rt::time::sleep(std::time::Duration::from_millis(500)).await;
    let at_start = arm_sessions(&second);
    let arms = second.gateway.served.experiments.arms("tool", "gh_search");
    let successes: u64 = arms.unwrap_or_default().iter().map(|a| a.successes).sum();
    let session = second.initialize().await;
    description(&second, &session, "gh_search").await;
    let on_first = TestApp::read_until(|| async { arm_sessions(&first) }, |n| *n == 4).await;

    assert_eq!(stored, 5);
    assert_eq!(at_start, 3, "the second takes the sessions up once");
    assert_eq!(successes, 2, "and the ratings");
    assert_eq!(arm_sessions(&second), 4);
    assert_eq!(on_first, 4, "the first counts the second's session");
}
