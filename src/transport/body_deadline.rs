//! The deadline on a request's body (`server.request_body_timeout_ms`): a client that sends
//! its head in time and then trickles its body would hold the connection and a buffer for as
//! long as it liked. The body is read through a stream that fails at the deadline; the
//! handler's answer is then replaced with 408.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::json;

use crate::gateway::Gateway;

/// The middleware: times the body, and answers 408 when it ran out.
pub async fn check(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<Gateway>>()
        .map_or(0, |g| g.server.request_body_timeout_ms);
    // Requests without a body (and every request with no limit) pass as they came.
    let expired = (limit > 0 && has_body(&req)).then(|| {
        let expired = Arc::new(AtomicBool::new(false));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(limit);
        let payload = timed(req.take_payload(), deadline, expired.clone());
        req.set_payload(payload);
        expired
    });
    let response = next.call(req).await?;
    if !expired.is_some_and(|e| e.load(Ordering::Relaxed)) {
        return Ok(response.map_into_left_body());
    }
    let message = format!(
        "the request body did not arrive within {limit} ms (server.request_body_timeout_ms)"
    );
    let timed_out = HttpResponse::RequestTimeout()
        .insert_header(("connection", "close"))
        .json(json!({"jsonrpc": "2.0", "id": null,
            "error": {"code": -32600, "message": message}}));
    Ok(response.into_response(timed_out).map_into_right_body())
}

/// Whether the request says a body follows.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let length = headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    length.is_some_and(|n| n > 0)
        || headers.contains_key(actix_web::http::header::TRANSFER_ENCODING)
}

/// `payload`, failing at `deadline` (noted in `expired`) if it has not ended by then.
fn timed(payload: Payload, deadline: tokio::time::Instant, expired: Arc<AtomicBool>) -> Payload {
    let stream = futures_util::stream::unfold(Some(payload), move |payload| {
        let expired = expired.clone();
        async move {
            let mut payload = payload?;
            match tokio::time::timeout_at(deadline, payload.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(payload))),
                Ok(None) => None,
                Err(_) => {
                    expired.store(true, Ordering::Relaxed);
                    let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "body too slow");
                    Some((Err(PayloadError::Io(late)), None))
                }
            }
        }
    });
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
    Payload::from(stream)
}
