//! The operator's HTTP surface: probes (`/healthz`, `/readyz`), Prometheus `/metrics`, and the
//! `/api/v1` REST API (behind the MCP endpoints' `Host`/`Origin` checks, so that a web page
//! cannot drive it, and the admin tokens when `admin.tokens` is set). The probes and
//! `/metrics` are behind neither: orchestrators and scrapers name the pod's address.

mod connectors;
mod error;
mod feedback;
mod health;
mod prompts;
mod runs;
mod servers;
mod targets;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::web;

pub use connectors::follow as follow_connectors;
pub use error::ApiError;
pub use servers::follow as follow_servers;

use crate::gateway::Gateway;
use crate::store::AnyConnection;
use crate::transport::guard::{bearer_accepted, foreign, unauthorized};

/// Mounts the probes, `/metrics` and `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(admin_guard))
                .route("/connectors", web::get().to(connectors::list))
                .route("/connectors", web::post().to(connectors::create))
                .route("/connectors/{name}", web::get().to(connectors::show))
                .route("/connectors/{name}", web::put().to(connectors::update))
                .route("/connectors/{name}", web::delete().to(connectors::delete))
                .route(
                    "/connectors/{name}/refresh",
                    web::post().to(connectors::refresh),
                )
                .route(
                    "/connectors/{name}/metrics",
                    web::get().to(connectors::metrics),
                )
                .route("/feedback", web::post().to(feedback::record))
                .route("/targets", web::get().to(targets::list))
                .route("/prompts/{id}", web::get().to(prompts::show))
                .route("/prompts/{id}/versions", web::post().to(prompts::add))
                .route(
                    "/prompts/{id}/versions/{version}",
                    web::get().to(runs::version),
                )
                .route("/prompts/{id}/deploy", web::post().to(prompts::deploy))
                .route("/prompts/{id}/rollback", web::post().to(prompts::rollback))
                .route("/prompts/{id}/train", web::post().to(prompts::train))
                .route("/training-runs", web::get().to(runs::list))
                .route("/servers", web::get().to(servers::list))
                .route("/servers", web::post().to(servers::create))
                .route("/servers/{name}", web::get().to(servers::show))
                .route("/servers/{name}", web::put().to(servers::update))
                .route("/servers/{name}", web::delete().to(servers::delete)),
        );
}

/// Refuses `/api/v1` requests that name a foreign host or come from a foreign origin (403, as
/// the MCP endpoints do: a web page must not drive the API), and those without an admin token
/// when tokens are configured (401).
async fn admin_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let rejection = match req.app_data::<web::Data<Gateway>>() {
        Some(gateway) => foreign(&req, gateway).or_else(|| {
            (!bearer_accepted(req.headers(), &gateway.admin_tokens)).then(unauthorized)
        }),
        None => Some(unauthorized()),
    };
    match rejection {
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Some(response) => Ok(req.into_response(response).map_into_right_body()),
    }
}

/// Runs a store operation on a blocking thread. A store that cannot be reached (no pooled
/// connection, or one lost) becomes a 503, any other failure a 500; the cause is logged once.
async fn store<T: Send + 'static>(
    gateway: &Gateway,
    op: impl FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    let pool = gateway.pool.clone();
    let outcome = web::block(move || {
        let mut conn = pool.get().map_err(|e| Failed::Unreachable(e.to_string()))?;
        op(&mut conn).map_err(|e| match e {
            Error::DatabaseError(Kind::UniqueViolation, _) => Failed::Unique,
            Error::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, info) => {
                Failed::Unreachable(info.message().to_string())
            }
            other => Failed::Other(other.to_string()),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    outcome.map_err(|failed| match failed {
        Failed::Unique => ApiError::Conflict("a connector with this name is already stored".into()),
        Failed::Unreachable(cause) => {
            log::warn!("ops API: the store is unavailable: {cause}");
            ApiError::Unavailable(error::STORE_UNAVAILABLE.into())
        }
        Failed::Other(cause) => ApiError::Internal(format!("store: {cause}")),
    })
}

/// How a store operation of the API failed.
enum Failed {
    /// A row with that name exists.
    Unique,
    /// No connection could be had, or it was lost.
    Unreachable(String),
    /// Anything else.
    Other(String),
}
