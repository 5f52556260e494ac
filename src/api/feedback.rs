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
    let snapshot = gateway.catalog.load();
    let now = crate::connector::now_ms();
    let validate = |input: &FeedbackInput| input.clone().validate(&snapshot, "api", now);
    let input: FeedbackInput = super::object_checked(&body, |input| match validate(input) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.into_iter().collect(),
    })?;
    let feedback = validate(&input).map_err(ApiError::Invalid)?;
    gateway.feedback.record(feedback);
    Ok(HttpResponse::Accepted().json(json!({"accepted": true})))
}
