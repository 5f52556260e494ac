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
        Failed::Unique => ApiError::Conflict(
            "what this request writes is already stored (another request wrote it first); \
             read it again"
                .into(),
        ),
        Failed::Unreachable(cause) => {
            log::warn!("ops API: the store is unavailable: {cause}");
            ApiError::Unavailable(error::STORE_UNAVAILABLE.into())
        }
        Failed::Other(cause) => ApiError::Internal(format!("store: {cause}")),
    })
}

/// Reads a body that must be a JSON object of type `T`: 400 when it is not JSON, 422 naming
/// the fields otherwise ([`checked`]; `body` when it is not an object).
fn object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    object_checked(body, |_| Vec::new())
}

/// [`object`], naming also what `check` finds ([`checked`]).
fn object_checked<T: serde::de::DeserializeOwned>(
    body: &[u8],
    check: impl FnOnce(&T) -> Vec<(String, String)>,
) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::Invalid(
            [("body".to_string(), "must be a JSON object".to_string())].into(),
        ));
    }
    checked(value, check)
}

/// What a text holding NUL is told: no store takes it in every column (PostgreSQL's text cannot
/// hold it), so it is refused where it comes in.
pub const NO_NUL: &str = "must not contain NUL (U+0000)";

/// `value` (a JSON object) as a `T`, or 422 naming every field that is of the wrong type,
/// unknown or missing, holds a text with NUL ([`NO_NUL`]), or has a problem `check` finds in
/// the `T`. Each field of the wrong type or unknown is named, set aside and the rest read
/// again, until the rest reads (and is checked, so that such a field hides no other problem)
/// or a field is missing.
fn checked<T: serde::de::DeserializeOwned>(
    mut value: serde_json::Value,
    check: impl FnOnce(&T) -> Vec<(String, String)>,
) -> Result<T, ApiError> {
    let mut with_nuls = std::collections::BTreeMap::new();
    with_nul(&value, String::new(), &mut |path| {
        with_nuls.insert(path, NO_NUL.to_string());
    });
    let mut problems = std::collections::BTreeMap::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(typed) => {
                for (field, problem) in check(&typed) {
                    problems.entry(field).or_insert(problem);
                }
                if problems.is_empty() && with_nuls.is_empty() {
                    return Ok(typed);
                }
                break;
            }
            Err(error) => error,
        };
        let message = error.inner().to_string();
        let named = |what: &str| {
            let rest = message.strip_prefix(what)?.strip_prefix('`')?;
            rest.split('`').next().map(str::to_string)
        };
        let top = match error.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
            _ => None,
        };
        let path = error.path().to_string();
        let (field, problem, set_aside) = if let Some(missing) = named("missing field ") {
            let field = match path.as_str() {
                "." => missing,
                within => format!("{within}.{missing}"),
            };
            (field, "is required".to_string(), None)
        } else if let Some(unknown) = named("unknown field ").filter(|_| top.is_none()) {
            (
                unknown.clone(),
                "is not a known field".to_string(),
                Some(unknown),
            )
        } else if path == "." {
            ("body".to_string(), message.clone(), None)
        } else {
            (path, message.clone(), top)
        };
        problems.entry(field).or_insert(problem);
        let removed = set_aside.and_then(|key| value.as_object_mut()?.remove(&key));
        if removed.is_none() {
            break;
        }
    }
    for (field, problem) in with_nuls {
        problems.entry(field).or_insert(problem);
    }
    Err(ApiError::Invalid(problems))
}

/// Calls `found` with the path (`a.b[0]`) of each string or key within `value` (an object)
/// that holds NUL.
fn with_nul(value: &serde_json::Value, path: String, found: &mut impl FnMut(String)) {
    use serde_json::Value;
    let within = |key: &str| match path.as_str() {
        "" => key.to_string(),
        _ => format!("{path}.{key}"),
    };
    match value {
        Value::String(text) if text.contains('\0') => found(path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                with_nul(item, format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    found(within(&key.replace('\0', "\\0")));
                } else {
                    with_nul(item, within(key), found);
                }
            }
        }
        _ => {}
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
        count: u32,
        #[serde(default)]
        note: Option<String>,
    }

    fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
        checked(value, |_| Vec::new())
    }

    fn fields(err: ApiError) -> Vec<(String, String)> {
        match err {
            ApiError::Invalid(fields) => fields.into_iter().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_field_of_the_wrong_type_or_unknown_is_named() {
        let err = typed::<Shape>(json!({"name": 5, "count": "x", "note": [], "colour": 1}));
        let named: Vec<String> = fields(err.unwrap_err())
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(named, ["colour", "count", "name", "note"]);
    }

    #[test]
    fn a_missing_field_is_named_as_required() {
        let err = typed::<Shape>(json!({"count": 1}));
        assert_eq!(
            fields(err.unwrap_err()),
            [("name".to_string(), "is required".to_string())]
        );
        assert!(typed::<Shape>(json!({"name": "a", "count": 1})).is_ok());
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Shape,
    }

    #[test]
    fn a_missing_field_within_another_is_named_by_its_path() {
        let err = typed::<Outer>(json!({"inner": {"name": "a"}}));
        assert_eq!(fields(err.unwrap_err())[0].0, "inner.count");
    }

    #[test]
    fn every_text_with_nul_is_named_by_its_path() {
        let body = json!({"name": "a\0", "count": 1, "nested": {"list": ["ok", "b\0"]}});

        let named = fields(typed::<Shape>(body).unwrap_err());

        assert!(
            named.contains(&("name".to_string(), NO_NUL.to_string())),
            "{named:?}"
        );
        let nested = ("nested.list[1]".to_string(), NO_NUL.to_string());
        assert!(named.contains(&nested), "{named:?}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_by_name() {
        let err = object::<Shape>(br#"["a", 1]"#).unwrap_err();
        assert_eq!(fields(err)[0].0, "body");
        assert!(matches!(
            object::<Shape>(b"{nope"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
