//! The operator's HTTP surface: probes now, the `/api/v1` REST API as it grows. Not behind the
//! MCP guard: probes come from orchestrators that name the pod's address.

mod health;

use actix_web::web;

/// Mounts the probes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
}
