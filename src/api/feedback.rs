//! `POST /api/v1/feedback`: a rating, suggestion or error about a tool or prompt; 202 once
//! queued, 422 with field errors.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use crate::feedback::FeedbackInput;
use crate::gateway::Gateway;

/// `POST /api/v1/feedback`.
pub async fn record(
    gateway: web::Data<Gateway>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let input: FeedbackInput = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::Invalid([(field, e.inner().to_string())].into())
    })?;
    let snapshot = gateway.catalog.load();
    let feedback = input
        .validate(&snapshot, "api", crate::connector::now_ms())
        .map_err(ApiError::Invalid)?;
    gateway.feedback.record(feedback);
    Ok(HttpResponse::Accepted().json(json!({"accepted": true})))
}
