//! The trainer: runs started by hand or by triggers, each approach, safety checks against
//! manipulative rewrites, deploy-if-better, and rollback when live results get worse or a deploy
//! by hand tests worse. The optimizer LLM is a test double behind the real OpenAI-compatible
//! HTTP path. Helpers shared by the files are here.

mod experiments;
mod lease;
mod operators;
mod prompt_serving;
mod prompts;
mod releases;
mod restart;
mod rollback;
mod runs;

use std::sync::{Arc, Mutex};

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, serve_local, spawn_app_with, StoreKind, TestApp};

pub(super) fn tools() -> Vec<Value> {
    let schema = json!({"type": "object", "required": ["repo"],
        "properties": {"repo": {"type": "string"}, "query": {"type": "string"}}});
    vec![
        json!({"name": "search", "description": "Search.", "inputSchema": schema}),
        json!({"name": "strict", "description": "Look up.", "inputSchema": schema}),
    ]
}

pub(super) async fn app(
    backend: &FakeConnector,
    tweak: impl FnOnce(&mut mcpgate::configuration::Settings),
) -> TestApp {
    let url = backend.url.clone();
    spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = vec![connector("gh", &url)];
        tweak(s);
    })
    .await
}

/// The description of `tool` a session is served, as text (empty when it is not listed).
pub(super) async fn description(app: &TestApp, session: &str, tool: &str) -> String {
    let text = app.tool_description(session, tool).await;
    text.as_str().unwrap_or_default().to_string()
}

/// Waits until the description of `tool` a session is served is no longer `from` (or gives
/// up after 10 s); returns it.
pub(super) async fn description_changes(
    app: &TestApp,
    session: &str,
    tool: &str,
    from: &str,
) -> String {
    description_when(app, session, tool, |served| served != from).await
}

/// Waits until the description of `tool` a session is served is `text` (or gives up after
/// 10 s): what is served follows the store a moment after a label moves. Returns it.
pub(super) async fn description_becomes(
    app: &TestApp,
    session: &str,
    tool: &str,
    text: &str,
) -> String {
    description_when(app, session, tool, |served| served == text).await
}

/// Waits until the description of `tool` a session is served passes `done` (or gives up after
/// 10 s); returns it.
pub(super) async fn description_when(
    app: &TestApp,
    session: &str,
    tool: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    TestApp::read_until(|| description(app, session, tool), |s| done(s)).await
}

/// Waits until the trainer has seen `count` uses of `tool`.
pub(super) async fn seen(app: &TestApp, tool: &str, count: u64) {
    let uses = || async { listed_as(app, tool, "uses").await.as_u64().unwrap_or(0) };
    let uses = TestApp::read_until(uses, |u| *u >= count).await;
    assert!(
        uses >= count,
        "the trainer saw {uses} uses of {tool}, not {count}"
    );
}

/// Whether the ops API says the production version of `target` can be served (`null` when it
/// does not list the target or cannot tell).
pub(super) async fn production_served(app: &TestApp, target: &str) -> Value {
    listed_as(app, target, "production_served").await
}

/// The value `/metrics` gives `series` (a metric and its labels as Prometheus writes them,
/// `name{label="value",…}`) once it is `expected` (or after 10 s); `None` while not exposed.
pub(super) async fn metric_becomes(app: &TestApp, series: &str, expected: f64) -> Option<f64> {
    let read = || async {
        let text = app.metrics_text().await;
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_string);
        line.and_then(|v| v.trim().parse().ok())
    };
    TestApp::read_until(read, |value| *value == Some(expected)).await
}

/// What the ops API lists as `field` of `target` (`null` when it does not list the target).
pub(super) async fn listed_as(app: &TestApp, target: &str, field: &str) -> Value {
    let (_, listed) = app.get_json("/api/v1/targets").await;
    let targets = listed["targets"].as_array().cloned().unwrap_or_default();
    let found = targets.into_iter().find(|t| t["target"] == target);
    found.map_or(Value::Null, |t| t[field].clone())
}

/// Waits until the newest training run of `target` (kind, name) satisfies `done` (or panics
/// after 10 s); returns it.
pub(super) async fn run_of(
    app: &TestApp,
    (kind, target): (&str, &str),
    done: impl Fn(&Value) -> bool,
) -> Value {
    let newest = || async {
        let (_, runs) = app.get_json("/api/v1/training-runs").await;
        let runs = runs["runs"].as_array().cloned().unwrap_or_default();
        let found = runs
            .into_iter()
            .find(|r| r["target_kind"] == kind && r["target"] == target);
        found.unwrap_or_default()
    };
    let newest = TestApp::read_until(newest, &done).await;
    assert!(
        done(&newest),
        "no such run of {target}; the newest: {newest}"
    );
    newest
}

/// Four (repo, query) searches, each with its own arguments.
pub(super) const FOUR_SEARCHES: [(&str, &str); 4] = [
    ("a/b", "bug"),
    ("c/d", "crash"),
    ("e/f", "leak"),
    ("g/h", "slow"),
];

/// Calls `gh_search` once per (repo, query) in `session`, and waits until the trainer has seen
/// them all.
pub(super) async fn searches(app: &TestApp, session: &str, calls: &[(&str, &str)]) {
    for (repo, query) in calls {
        let arguments = json!({"repo": repo, "query": query});
        let call = json!({"name": "gh_search", "arguments": arguments});
        app.rpc(session, "tools/call", call).await;
    }
    seen(app, "gh_search", calls.len() as u64).await;
}

/// A session that called `gh_search` four times, successfully, as the trainer has seen; and the
/// call.
pub(super) async fn four_good_searches(app: &TestApp) -> (String, Value) {
    let session = app.initialize().await;
    searches(app, &session, &[("a/b", "q"); 4]).await;
    let call = json!({"name": "gh_search", "arguments": {"repo": "a/b", "query": "q"}});
    (session, call)
}

/// Adds `text` as a version of `gh_search` and deploys it through the API; returns the version.
pub(super) async fn deploy_by_hand(app: &TestApp, text: &str) -> Value {
    deploy_by_hand_to(app, "tool:gh_search", text).await
}

/// Adds `text` as a version of target `id` (`kind:name`) and deploys it through the API;
/// returns the version.
pub(super) async fn deploy_by_hand_to(app: &TestApp, id: &str, text: &str) -> Value {
    let path = format!("/api/v1/prompts/{id}/versions");
    let (status, added) = app.send_json("POST", &path, &json!({ "text": text })).await;
    assert_eq!(status, 201, "{added}");
    let deploy = json!({"version": added["version"]});
    let path = format!("/api/v1/prompts/{id}/deploy");
    let (status, body) = app.send_json("POST", &path, &deploy).await;
    assert_eq!(status, 200, "{body}");
    added["version"].clone()
}

/// An OpenAI-compatible endpoint answering with `answer`, keeping the prompts it got.
pub(super) async fn fake_llm(answer: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let answer = answer.to_string();
    fake_llm_by(move |_| answer.clone()).await
}

/// An OpenAI-compatible endpoint answering each prompt with `answer(prompt)`, keeping the
/// prompts it got.
pub(super) async fn fake_llm_by(
    answer: impl Fn(&str) -> String + Clone + Send + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let seen = prompts.clone();
    let port = serve_local(move |cfg| {
        let (seen, answer) = (seen.clone(), answer.clone());
        cfg.route(
            "/v1/chat/completions",
            web::post().to(move |body: web::Json<Value>| {
                let (seen, answer) = (seen.clone(), answer.clone());
                async move {
                    let prompt = body["messages"][0]["content"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let content = answer(&prompt);
                    seen.lock().unwrap().push(prompt);
                    HttpResponse::Ok().json(
                        json!({"choices": [{"message": {"role": "assistant", "content": content}}]}),
                    )
                }
            }),
        );
    });
    (format!("http://127.0.0.1:{port}/v1"), prompts)
}
