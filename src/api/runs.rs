//! What the trainer did, for operators: `GET /api/v1/training-runs` (the newest runs with
//! trigger, approach, reason, evaluation and outcome) and `GET /api/v1/prompts/{id}/versions/{n}`
//! (one version with the labels on it and the runs that name it, with their evaluations).

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::prompts::target;
use super::store;
use crate::gateway::Gateway;
use crate::store::{prompts, training_runs};

/// A stored run as the API shows it, its evaluation as JSON.
fn shown(run: training_runs::Run) -> Value {
    let evaluation = run
        .evaluation
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok());
    let mut value = serde_json::to_value(&run).unwrap_or_default();
    value["evaluation"] = evaluation.unwrap_or(Value::Null);
    value
}

/// `GET /api/v1/training-runs`: the newest 100 runs, newest first.
pub async fn list(gateway: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let runs = store(&gateway, |conn| training_runs::recent(conn, 100)).await?;
    let runs: Vec<Value> = runs.into_iter().map(shown).collect();
    Ok(HttpResponse::Ok().json(json!({ "runs": runs })))
}

/// `GET /api/v1/prompts/{id}/versions/{version}`: the version, the labels on it, and the runs
/// that name it (the run that made it and its evaluation, a live experiment's conclusion, the
/// check of a deploy by hand), oldest first; 404 for a version the target does not have, 400
/// for one that is not a number.
pub async fn version(
    gateway: web::Data<Gateway>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, number) = path.into_inner();
    let t = target(&gateway, &id)?;
    let number: i64 = number
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`{number}` is not a version number")))?;
    let (kind, name) = (t.kind.clone(), t.name.clone());
    let found = store(&gateway, move |conn| {
        let version = prompts::versions(conn, &kind, &name)?
            .into_iter()
            .find(|v| v.version == number);
        let Some(version) = version else {
            return Ok(None);
        };
        let labels = prompts::labels_of(conn, &kind, &name, number)?;
        let runs = training_runs::naming(conn, &kind, &name, number)?;
        Ok(Some((version, labels, runs)))
    })
    .await?;
    let Some((version, labels, runs)) = found else {
        return Err(ApiError::NotFound(format!(
            "`{id}` has no version {number}"
        )));
    };
    let mut shown_version = serde_json::to_value(&version).unwrap_or_default();
    shown_version["labels"] = json!(labels);
    shown_version["runs"] = json!(runs.into_iter().map(shown).collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(shown_version))
}
