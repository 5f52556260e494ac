//! `/healthz` (the process answers) and `/readyz` (the store answers and every connector has
//! reported its first load).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::gateway::Gateway;

/// `GET /healthz`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when ready, 503 with the reasons otherwise.
pub async fn readyz(gateway: web::Data<Gateway>) -> HttpResponse {
    let pool = gateway.pool.clone();
    let store = web::block(move || crate::store::ping(&pool))
        .await
        .unwrap_or(false);
    let catalog = gateway.catalog.load().loaded;
    let body = json!({
        "store": if store { "ok" } else { "unreachable" },
        "catalog": if catalog { "loaded" } else { "loading" },
    });
    if store && catalog {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(gateway: web::Data<Gateway>) -> HttpResponse {
    let metrics = &gateway.metrics;
    metrics.sessions_open.set(gateway.sessions.len() as i64);
    metrics
        .call_records_dropped
        .set(gateway.recorder.dropped() as i64);
    metrics
        .call_records_written
        .set(gateway.recorder.written() as i64);
    let feedback = &gateway.feedback.recorder;
    metrics
        .feedback_records_dropped
        .set(feedback.dropped() as i64);
    metrics
        .feedback_records_written
        .set(feedback.written() as i64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
