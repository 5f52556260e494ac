//! A backend killed under load and brought back: the log of the outage, as the closing note of
//! the connector hub quotes it, with its invariants asserted.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app, TestApp};
use crate::hub::{fragile, open_stream, wait_for_event};

/// One request of the load: when it started (ms since the start), how it ended, how long it took.
type Sample = (u128, String, u128);

/// Calls `victim_echo` in a loop from `workers` tasks until `stop` is set.
fn start_load(
    app: &TestApp,
    session: &str,
    workers: usize,
    t0: Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::sync::Arc<std::sync::Mutex<Vec<Sample>>> {
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..workers {
        let (client, url, session) = (
            app.client.clone(),
            format!("{}/mcp", app.address),
            session.to_string(),
        );
        let (samples, stop) = (samples.clone(), stop.clone());
        actix_rt::spawn(async move {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "victim_echo", "arguments": {"text": "x"}}})
            .to_string();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .header("accept", "application/json")
                    .header("mcp-session-id", &session)
                    .body(body.clone())
                    .send()
                    .await;
                let answer: Value = match response {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                let outcome = match answer.get("result") {
                    Some(_) => "ok".to_string(),
                    None => answer["error"]["data"]["kind"]
                        .as_str()
                        .unwrap_or("no answer")
                        .to_string(),
                };
                let at = started.duration_since(t0).as_millis();
                samples
                    .lock()
                    .unwrap()
                    .push((at, outcome, started.elapsed().as_millis()));
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    samples
}

#[actix_web::test]
async fn a_backend_killed_under_load_fails_fast_leaves_the_catalog_and_rejoins_it() {
    let mut victim = FakeConnector::start().await;
    let bystander = FakeConnector::start().await;
    let app = spawn_app(vec![
        fragile("victim", &victim.url),
        connector("bystander", &bystander.url),
    ])
    .await;
    let session = app.initialize().await;
    let mut stream = open_stream(&app, &session).await;
    let t0 = Instant::now();
    let log = |message: &str| eprintln!("[{:>5} ms] {message}", t0.elapsed().as_millis());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let samples = start_load(&app, &session, 4, t0, stop.clone());

    log("load: 4 workers calling victim_echo");
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let killed_at = t0.elapsed().as_millis();
    victim.stop().await;
    log("victim backend killed");
    wait_for_event(&mut stream, "notifications/tools/list_changed").await;
    let shrunk_at = t0.elapsed().as_millis();
    let names = app.tool_names(&session).await;
    log(&format!("catalog shrank to {names:?}"));
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    victim.restart().await;
    let returned_at = t0.elapsed().as_millis();
    log("victim backend back on the same port");
    wait_for_event(&mut stream, "notifications/tools/list_changed").await;
    let grown_at = t0.elapsed().as_millis();
    let names_back = app.tool_names(&session).await;
    log(&format!("catalog grew back to {names_back:?}"));
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    actix_rt::time::sleep(Duration::from_millis(100)).await;

    let samples = samples.lock().unwrap().clone();
    let mut by_outcome = std::collections::BTreeMap::<String, (usize, u128)>::new();
    for (_, outcome, took) in &samples {
        let entry = by_outcome.entry(outcome.clone()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(*took);
    }
    let failed_before_open = samples
        .iter()
        .filter(|(at, o, _)| *at >= killed_at && *at < shrunk_at && o != "ok")
        .count();
    let fast_refusals: Vec<_> = samples
        .iter()
        .filter(|(_, o, _)| o == "unavailable")
        .collect();
    let last_failure = samples
        .iter()
        .filter(|(_, o, _)| o != "ok")
        .map(|(at, _, _)| *at)
        .max();
    log(&format!(
        "{} requests; by outcome (count, slowest ms): {by_outcome:?}",
        samples.len()
    ));
    log(&format!(
        "killed → catalog shrank: {} ms, {failed_before_open} requests failed meanwhile",
        shrunk_at - killed_at
    ));
    log(&format!(
        "back → catalog grew: {} ms; last failure at {last_failure:?} ms",
        grown_at - returned_at
    ));

    assert_eq!(names, ["bystander_echo", "bystander_fail"]);
    assert!(names_back.contains(&"victim_echo".to_string()));
    assert!(!fast_refusals.is_empty());
    assert!(
        fast_refusals.iter().all(|(_, _, took)| *took < 1_000),
        "refusals are fast"
    );
    assert!(
        samples.iter().all(|(_, _, took)| *took < 2_500),
        "no request waits past the timeout"
    );
    assert!(samples
        .iter()
        .filter(|(at, _, _)| *at > grown_at + 50)
        .all(|(_, o, _)| o == "ok"));
    assert!(
        samples
            .iter()
            .filter(|(at, _, took)| at + took < killed_at)
            .all(|(_, o, _)| o == "ok"),
        "every request answered before the kill succeeded"
    );
}
