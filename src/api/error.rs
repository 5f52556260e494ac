//! The ops API's error: an HTTP status and a JSON body that names the problem. Internal failures
//! are logged once here and reach the caller as a generic message.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::registry::RegistryError;

/// A refused or failed ops request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (400).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing by that name (404).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is JSON but fields are wrong (422), each named.
    #[error("invalid fields")]
    Invalid(BTreeMap<String, String>),
    /// The store cannot be reached (503, with `Retry-After`): asking again is safe. The message
    /// says what was done meanwhile; the cause goes to the log only.
    #[error("{0}")]
    Unavailable(String),
    /// The gateway failed (500); the detail goes to the log only.
    #[error("internal error")]
    Internal(String),
}

/// What a caller is told when the store cannot be reached.
pub const STORE_UNAVAILABLE: &str = "the store is unavailable; ask again";

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::NotFound(_) => ApiError::NotFound(err.to_string()),
            RegistryError::Exists(_) | RegistryError::FromFile(_) => {
                ApiError::Conflict(err.to_string())
            }
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        ApiError::Internal(format!("registry unreachable: {err}"))
    }
}

impl ApiError {
    /// The whole problem, for the log: every field's, or an internal failure's detail.
    pub fn detail(&self) -> String {
        match self {
            ApiError::Invalid(fields) => fields
                .iter()
                .map(|(field, problem)| format!("{field}: {problem}"))
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::Internal(detail) => detail.clone(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::Invalid(fields) => json!({"error": self.to_string(), "fields": fields}),
            ApiError::Internal(detail) => {
                log::error!("ops API: {detail}");
                json!({"error": "internal error"})
            }
            other => json!({"error": other.to_string()}),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Unavailable(_) = self {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        response.json(body)
    }
}
