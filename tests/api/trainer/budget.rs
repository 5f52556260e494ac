//! The LLM's budget of calls per day: spent runs say so and ask nothing, within one gateway
//! and after a restart on the same store.

use mcpgate::configuration::Settings;
use serde_json::json;

use super::{app, fake_llm, tools};
use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_sharing};

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
    let restarted = spawn_app_sharing(&app, |s| {
        s.connectors = vec![connector("gh", &backend.url)];
        budget(s);
    })
    .await;
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
