//! `/api/v1/prompts/{kind}:{target}`: the versions of a tool description or prompt template,
//! their labels and label history; adding a version (safety-checked), deploying one, and
//! rolling production back to the version it had before.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::store;
use crate::gateway::Gateway;
use crate::store::{prompts, AnyConnection};
use crate::trainer::{safety, LearntTemplates};

/// What the path names: a kind and a target that the catalog knows.
pub(super) struct Target {
    pub(super) kind: String,
    pub(super) name: String,
    /// The backend's own text (tool description; empty for a prompt template).
    original: String,
    /// A tool's input schema ([`crate::catalog::input_schema`]; `None` for a prompt).
    schema: Option<String>,
    /// `{{name}}`s a prompt template must keep (its required arguments).
    placeholders: Vec<String>,
}

pub(super) fn target(gateway: &Gateway, id: &str) -> Result<Target, ApiError> {
    let unknown = || ApiError::NotFound(format!("no tool or prompt is named `{id}`"));
    let (kind, name) = id.split_once(':').ok_or_else(unknown)?;
    let snapshot = gateway.catalog.load();
    let (entry, kind) = match kind {
        "tool" => (snapshot.catalog.tool(name).ok_or_else(unknown)?, "tool"),
        "prompt" => (snapshot.catalog.prompt(name).ok_or_else(unknown)?, "prompt"),
        _ => return Err(unknown()),
    };
    let original = match kind {
        "tool" => entry.item["description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    let placeholders = crate::catalog::required_arguments(&entry.item);
    let schema = (kind == "tool").then(|| crate::catalog::input_schema(&entry.item).to_string());
    Ok(Target {
        kind: kind.into(),
        name: name.into(),
        original,
        schema,
        placeholders,
    })
}

/// `GET /api/v1/prompts/{id}`: versions, the production version and every label move.
pub async fn show(
    gateway: web::Data<Gateway>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = target(&gateway, &id)?;
    let (kind, name) = (t.kind.clone(), t.name.clone());
    let (versions, moves, production) = store(&gateway, move |conn| {
        Ok((
            prompts::versions(conn, &kind, &name)?,
            prompts::moves(conn, &kind, &name)?,
            prompts::label(conn, &kind, &name, "production")?,
        ))
    })
    .await?;
    Ok(
        HttpResponse::Ok().json(json!({"target_kind": t.kind, "target": t.name,
        "production": production, "versions": versions, "label_moves": moves})),
    )
}

/// A new version's body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    text: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/prompts/{id}/versions`: a candidate version; 201, or 422 when it fails the
/// safety checks. The backend's own text is kept as version 1 the first time.
pub async fn add(
    gateway: web::Data<Gateway>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let t = target(&gateway, &id)?;
    let body: NewVersion = super::object(&body)?;
    safety::check(&t.original, &body.text, &t.placeholders)
        .map_err(|problem| ApiError::Invalid([("text".to_string(), problem)].into()))?;
    let now = crate::connector::now_ms();
    let reason = body
        .reason
        .unwrap_or_else(|| "added through the API".into());
    // What the backend gives now, so that the ops API can tell when a release changes it: a
    // tool's description and schema, or the template the prompt's fetches teach, if learnt.
    let over = match t.kind.as_str() {
        "tool" => Some(t.original.clone()),
        _ => gateway
            .feedback
            .trainer
            .send(LearntTemplates)
            .await?
            .remove(&t.name),
    };
    let version = write(&gateway, move |conn| {
        let schema = t.schema.as_deref();
        prompts::ensure_baseline(conn, &t.kind, &t.name, &t.original, schema, now)?;
        let new = prompts::NewVersion {
            text: &body.text,
            approach: "manual",
            reason: &reason,
            written_over: over.as_deref(),
            written_over_schema: schema,
            ..Default::default()
        };
        let version = prompts::add_version(conn, &t.kind, &t.name, new, now)?;
        prompts::move_label(conn, &t.kind, &t.name, "candidate", version, &reason, now)?;
        Ok(version)
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({ "version": version, "label": "candidate" })))
}

/// A deploy's body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    version: i64,
}

/// `POST /api/v1/prompts/{id}/deploy`: serves `version` from now on.
pub async fn deploy(
    gateway: web::Data<Gateway>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let t = target(&gateway, &id)?;
    let version = super::object::<Deploy>(&body)?.version;
    let now = crate::connector::now_ms();
    let (kind, name) = (t.kind.clone(), t.name.clone());
    let (original, schema) = (t.original.clone(), t.schema.clone());
    let known = write(&gateway, move |conn| {
        let known = prompts::versions(conn, &kind, &name)?
            .iter()
            .any(|v| v.version == version);
        if !known {
            return Ok(None);
        }
        let schema = schema.as_deref();
        let previous = prompts::ensure_baseline(conn, &kind, &name, &original, schema, now)?;
        prompts::move_label(
            conn,
            &kind,
            &name,
            "production",
            version,
            prompts::BY_API,
            now,
        )?;
        Ok(Some(previous))
    })
    .await?;
    let Some(previous) = known else {
        return Err(ApiError::NotFound(format!(
            "`{id}` has no version {version}"
        )));
    };
    reload(&gateway).await?;
    if previous != version {
        gateway
            .feedback
            .trainer
            .do_send(crate::trainer::WatchDeploy {
                kind: t.kind,
                target: t.name,
                version,
                previous,
            });
    }
    Ok(HttpResponse::Ok().json(json!({ "production": version })))
}

/// `POST /api/v1/prompts/{id}/rollback`: production goes back to the version it had before its
/// last move; 409 when there is none.
pub async fn rollback(
    gateway: web::Data<Gateway>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = target(&gateway, &id)?;
    let now = crate::connector::now_ms();
    let (kind, name) = (t.kind.clone(), t.name.clone());
    let restored = write(&gateway, move |conn| {
        let previous = prompts::moves(conn, &kind, &name)?
            .into_iter()
            .rev()
            .find(|m| m.label == "production")
            .and_then(|m| m.from_version);
        if let Some(previous) = previous {
            prompts::move_label(conn, &kind, &name, "production", previous, "rollback", now)?;
        }
        Ok(previous)
    })
    .await?;
    let Some(restored) = restored else {
        return Err(ApiError::Conflict(format!(
            "`{id}` has no earlier production version"
        )));
    };
    reload(&gateway).await?;
    Ok(HttpResponse::Ok().json(json!({ "production": restored })))
}

/// Runs `op` on the store as one transaction: the reads that decide a label move and the move
/// itself, so that two concurrent changes of a target cannot interleave.
async fn write<T: Send + 'static>(
    gateway: &Gateway,
    op: impl FnOnce(&mut AnyConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    store(gateway, move |conn| crate::store::write(conn, op)).await
}

async fn reload(gateway: &Gateway) -> Result<(), ApiError> {
    let (served, pool) = (gateway.served.clone(), gateway.pool.clone());
    web::block(move || served.reload(&pool))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)
}

/// `POST /api/v1/prompts/{id}/train`: a training run now; answers how it ended.
pub async fn train(
    gateway: web::Data<Gateway>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = target(&gateway, &id)?;
    let request = crate::trainer::TrainNow {
        kind: t.kind,
        target: t.name,
    };
    let outcome = gateway
        .feedback
        .trainer
        .send(request)
        .await?
        .map_err(ApiError::Conflict)?;
    Ok(HttpResponse::Ok().json(outcome))
}
