//! Several gateways on one store: what one changes through its ops API (production versions,
//! connectors, virtual servers), the others take up within `database.sync_interval_ms`, and none
//! applies its own change a second time; a client is one principal to all of them.

use mcpgate::configuration::Settings;
use serde_json::{json, Value};

use crate::backends::{marker, tiny};
use crate::fake_connector::FakeConnector;
use crate::helpers::{connector, spawn_app_sharing, spawn_app_with, StoreKind, TestApp};
use crate::stateless::{messages, post, request};

/// Looks for changes every 100 ms.
fn quick(settings: &mut Settings) {
    settings.database.sync_interval_ms = 100;
}

/// The applied registrations `app` counted, as `kind/step=count`, in order.
async fn applied(app: &TestApp) -> Vec<String> {
    let text = app.metrics_text().await;
    let mut counted: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("mcpgate_registrations_applied_total{"))
        .map(|line| {
            let (labels, count) = line.split_once("} ").expect("a counter line");
            let label = |key: &str| {
                let start = labels.find(&format!("{key}=\"")).expect("label") + key.len() + 2;
                labels[start..]
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            };
            format!("{}/{}={count}", label("kind"), label("step"))
        })
        .collect();
    counted.sort();
    counted
}

/// `app`'s view of the connector `live`, with its status.
async fn live(app: &TestApp) -> (u16, Value) {
    app.get_json("/api/v1/connectors/live").await
}

#[actix_web::test]
async fn a_connector_registered_changed_and_removed_through_one_gateway_is_so_on_another() {
    let backend = FakeConnector::start().await;
    let one = spawn_app_with(StoreKind::Postgres, quick).await;
    let other = spawn_app_sharing(&one, quick).await;
    let session = other.initialize().await;
    let timeout_of = |(_, view): &(u16, Value)| view["settings"]["timeout_ms"].clone();
    let body = |timeout: u64| json!({"name": "live", "url": backend.url, "timeout_ms": timeout});

    let (created, _) = one
        .send_json("POST", "/api/v1/connectors", &body(1000))
        .await;
    let names = TestApp::read_until(
        || other.tool_names(&session),
        |n| n.contains(&"live_echo".to_string()),
    )
    .await;
    let (_, registered) = other.get_json("/api/v1/connectors/live").await;
    let (changed, _) = one
        .send_json("PUT", "/api/v1/connectors/live", &body(1500))
        .await;
    let seen_changed = TestApp::read_until(|| live(&other), |v| timeout_of(v) == 1500).await;
    let (changed_back, _) = other
        .send_json("PUT", "/api/v1/connectors/live", &body(2500))
        .await;
    let seen_back = TestApp::read_until(|| live(&one), |v| timeout_of(v) == 2500).await;
    let (deleted, _) = one
        .send_json("DELETE", "/api/v1/connectors/live", &json!({}))
        .await;
    let (gone, _) = TestApp::read_until(|| live(&other), |(status, _)| *status == 404).await;
    let names_after = other.tool_names(&session).await;
    // A few more looks on both, in which neither may take up its own changes.
    actix_rt::time::sleep(std::time::Duration::from_millis(400)).await;

    assert_eq!(
        (created, changed, changed_back, deleted),
        (201, 200, 200, 204)
    );
    assert_eq!(names, ["live_echo", "live_fail"]);
    assert_eq!(
        (&registered["source"], &registered["settings"]["timeout_ms"]),
        (&json!("api"), &json!(1000)),
        "the other gateway runs it as an API registration"
    );
    assert_eq!(timeout_of(&seen_changed), 1500);
    assert_eq!(timeout_of(&seen_back), 2500, "and changes it back");
    assert_eq!(gone, 404);
    assert_eq!(names_after, Vec::<String>::new());
    assert_eq!(
        applied(&other).await,
        [
            "connector/added=1",
            "connector/changed=1",
            "connector/removed=1"
        ]
    );
    assert_eq!(applied(&one).await, ["connector/changed=1"]);
}

#[actix_web::test]
async fn a_row_another_gateway_cannot_apply_is_tried_again_only_once_it_changes() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let one = spawn_app_with(StoreKind::Postgres, quick).await;
    // The other gateway's connectors.yaml holds the name.
    let other = spawn_app_sharing(&one, |s| {
        quick(s);
        s.connectors = vec![connector("taken", &url)];
    })
    .await;
    let body = |timeout: u64| json!({"name": "taken", "url": url, "timeout_ms": timeout});
    let failed = || async { applied(&other).await };

    let (created, _) = one
        .send_json("POST", "/api/v1/connectors", &body(1000))
        .await;
    let first = TestApp::read_until(failed, |c| !c.is_empty()).await;
    // Another row changes, so the other gateway reads the table again.
    let fine = json!({"name": "fine", "url": url});
    one.send_json("POST", "/api/v1/connectors", &fine).await;
    let later = TestApp::read_until(failed, |c| c.len() == 2).await;
    one.send_json("PUT", "/api/v1/connectors/taken", &body(1500))
        .await;
    let changed = TestApp::read_until(failed, |c| c != &later).await;
    let (_, kept) = other.get_json("/api/v1/connectors/taken").await;

    assert_eq!(created, 201);
    assert_eq!(first, ["connector/failed=1"]);
    assert_eq!(
        later,
        ["connector/added=1", "connector/failed=1"],
        "not tried again while unchanged"
    );
    assert_eq!(
        changed,
        ["connector/added=1", "connector/failed=2"],
        "tried again once changed"
    );
    assert_eq!(
        (&kept["source"], &kept["settings"]["timeout_ms"]),
        (&json!("file"), &json!(2000)),
        "the file's connector stays"
    );
}

#[actix_web::test]
async fn a_virtual_server_registered_changed_and_removed_through_one_gateway_is_so_on_another() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let connectors = |s: &mut Settings| {
        quick(s);
        s.connectors = vec![connector("a", &url), connector("b", &url)];
    };
    let one = spawn_app_with(StoreKind::Postgres, connectors).await;
    let other = spawn_app_sharing(&one, connectors).await;
    let view = || async { other.get_json("/api/v1/servers/only").await };
    let named = |(_, view): &(u16, Value)| view["server"]["connectors"].clone();

    let (created, _) = one
        .send_json(
            "POST",
            "/api/v1/servers",
            &json!({"name": "only", "connectors": ["b"]}),
        )
        .await;
    let seen = TestApp::read_until(view, |v| v.0 == 200).await;
    let session = other.initialize_at("/servers/only/mcp").await;
    let (changed, _) = one
        .send_json("PUT", "/api/v1/servers/only", &json!({"connectors": ["a"]}))
        .await;
    let seen_changed = TestApp::read_until(view, |v| named(v) == json!(["a"])).await;
    let (deleted, _) = one
        .send_json("DELETE", "/api/v1/servers/only", &json!({}))
        .await;
    let (gone, _) = TestApp::read_until(view, |v| v.0 == 404).await;
    actix_rt::time::sleep(std::time::Duration::from_millis(400)).await;

    assert_eq!((created, changed, deleted), (201, 200, 204));
    assert_eq!(
        (seen.0, named(&seen), &seen.1["source"]),
        (200, json!(["b"]), &json!("api"))
    );
    assert!(!session.is_empty(), "the other gateway serves it");
    assert_eq!(named(&seen_changed), json!(["a"]));
    assert_eq!(gone, 404);
    assert_eq!(
        applied(&other).await,
        ["server/added=1", "server/changed=1", "server/removed=1"]
    );
    assert_eq!(applied(&one).await, Vec::<String>::new());
}

#[actix_web::test]
async fn a_version_deployed_or_rolled_back_by_one_gateway_is_served_by_another_on_its_store() {
    let backend = FakeConnector::start().await;
    let url = backend.url.clone();
    let connectors = |s: &mut Settings| {
        s.connectors = vec![connector("c", &url)];
        s.database.sync_interval_ms = 100;
    };
    let one = spawn_app_with(StoreKind::Postgres, connectors).await;
    let other = spawn_app_sharing(&one, connectors).await;
    let session = other.initialize().await;
    let better = "Echoes `text` back unchanged; use it to check that the connector answers.";
    let described = || other.tool_description(&session, "c_echo");

    let before = described().await;
    one.send_json(
        "POST",
        "/api/v1/prompts/tool:c_echo/versions",
        &json!({"text": better}),
    )
    .await;
    let (deployed, _) = one
        .send_json(
            "POST",
            "/api/v1/prompts/tool:c_echo/deploy",
            &json!({"version": 2}),
        )
        .await;
    let during = TestApp::read_until(described, |d| d == better).await;
    let (rolled, _) = one
        .send_json("POST", "/api/v1/prompts/tool:c_echo/rollback", &json!({}))
        .await;
    let after = TestApp::read_until(described, |d| d != better).await;

    assert_eq!(before, "Echoes `text`.");
    assert_eq!((deployed, rolled), (200, 200));
    assert_eq!(
        during, better,
        "the other gateway serves the deployed version"
    );
    assert_eq!(after, "Echoes `text`.", "and the rollback");
}

/// The distinct sessions named by the call records of `app`'s store, once `calls` are written.
async fn recorded_sessions(app: &TestApp, calls: i64) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Named {
        #[diesel(sql_type = diesel::sql_types::Text)]
        session: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        calls: i64,
    }
    let read = || {
        mcpgate::store::blocking(&app.gateway.pool, |conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(
                "SELECT coalesce(session_id, '') AS session, count(*) AS calls \
                 FROM tool_calls GROUP BY session_id",
            )
            .load::<Named>(conn)
        })
    };
    let written = |named: &Result<Vec<Named>, String>| {
        named
            .as_ref()
            .is_ok_and(|n| n.iter().map(|n| n.calls).sum::<i64>() >= calls)
    };
    let named = TestApp::read_until(read, written)
        .await
        .expect("the store answers");
    named.into_iter().map(|n| n.session).collect()
}

#[actix_web::test]
async fn a_client_is_one_principal_to_every_gateway_on_the_store() {
    let connectors = |s: &mut Settings| {
        s.connectors = vec![tiny("tiny", &marker())];
        s.server.auth.bearer_tokens = vec!["secret-token".into()];
    };
    let one = spawn_app_with(StoreKind::Postgres, connectors).await;
    let other = spawn_app_sharing(&one, connectors).await;
    let echo = json!({"name": "tiny_echo", "arguments": {"text": "hi"}});
    let call = request(1, "tools/call", echo, json!({}));
    let bearer = [("authorization", "Bearer secret-token")];

    let (first, _) = messages(post(&one, &call, &bearer).await).await;
    let (second, _) = messages(post(&other, &call, &bearer).await).await;
    let sessions = recorded_sessions(&one, 2).await;

    assert_eq!((first, second), (200, 200));
    assert_eq!(sessions.len(), 1, "one principal: {sessions:?}");
    assert!(sessions[0].starts_with("principal-"), "{sessions:?}");
    assert!(!sessions[0].contains("secret"), "{sessions:?}");
}

#[actix_web::test]
async fn a_refresh_asked_of_one_gateway_refreshes_the_connector_on_the_others_once() {
    let backend = FakeConnector::start().await;
    // Checked once a minute: only a refresh shows a new tool within the test.
    let slow = || {
        let mut settings = connector("c", &backend.url);
        settings.health_check_interval_ms = 60_000;
        vec![settings]
    };
    let first = spawn_app_with(StoreKind::Postgres, |s| {
        s.connectors = slow();
        quick(s);
    })
    .await;
    let second = spawn_app_sharing(&first, |s| {
        s.connectors = slow();
        quick(s);
    })
    .await;
    let (on_first, on_second) = (first.initialize().await, second.initialize().await);
    let new_tool = json!({"name": "fresh", "description": "New in this release."});
    backend.set_tools(vec![new_tool]);
    let probes = || {
        let probes = &backend.state.probes;
        probes.load(std::sync::atomic::Ordering::SeqCst)
    };
    let probes_before = probes();

    let (status, _) = first
        .send_json("POST", "/api/v1/connectors/c/refresh", &json!({}))
        .await;
    let fresh = |names: &Vec<String>| names == &["c_fresh"];
    let seen_first = TestApp::read_until(|| first.tool_names(&on_first), fresh).await;
    let seen_second = TestApp::read_until(|| second.tool_names(&on_second), fresh).await;
    let (_, view) = first.get_json("/api/v1/connectors/c").await;
    // Several looks (every 100 ms), in which neither gateway refreshes it again.
    actix_rt::time::sleep(std::time::Duration::from_millis(500)).await;

    assert_eq!(status, 202);
    assert_eq!(seen_first, ["c_fresh"]);
    assert_eq!(seen_second, ["c_fresh"], "the second refreshed it too");
    assert_eq!(view["name"], "c", "{view}");
    assert_eq!(probes() - probes_before, 2, "one check per gateway");
}
