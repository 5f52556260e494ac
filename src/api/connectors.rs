//! `/api/v1/connectors`: list, show, register, change, remove and refresh connectors, and their
//! call metrics from the stored records.
//!
//! Registrations made here are stored in the `connectors` table first and then applied live
//! through the registry; at start-up, and then as other gateways on the store change them,
//! [`follow`] applies the table. Connectors from `connectors.yaml` are listed too, and changing
//! them here answers 409.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::store;
use crate::connector::ConnectorSettings;
use crate::gateway::Gateway;
use crate::registry::{
    ConnectorView, ListConnectors, ListSettings, RefreshConnector, RegisterConnector,
    RemoveConnector, ReplaceConnector, Source,
};
use crate::store::connectors::{self as stored, StoredConnector};
use crate::store::{refreshes, tool_calls};
use crate::sync::plan::{self, Failed, Step};

/// `GET /api/v1/connectors`.
pub async fn list(gateway: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let views = gateway.registry.send(ListConnectors).await?;
    Ok(HttpResponse::Ok().json(json!({ "connectors": views })))
}

/// `GET /api/v1/connectors/{name}`.
pub async fn show(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(find(&gateway, &name).await?))
}

/// `POST /api/v1/connectors`: 201, 409 when the name exists, 422 with field errors.
pub async fn create(
    gateway: web::Data<Gateway>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let _held = gateway.api_writes.lock().await;
    let (settings, headers) = parse(&body, None)?;
    let name = settings.name.clone();
    if find(&gateway, &name).await.is_ok() {
        return Err(ApiError::Conflict(format!(
            "a connector named `{name}` already exists"
        )));
    }
    let now = crate::connector::now_ms();
    let row = StoredConnector {
        name: name.clone(),
        settings: to_json(&settings)?,
        created_at_ms: now,
        updated_at_ms: now,
    };
    store(&gateway, move |conn| stored::insert(conn, &row)).await?;
    let registered = gateway
        .registry
        .send(RegisterConnector {
            settings: Arc::new(settings),
            headers: headers.into(),
            source: Source::Api,
        })
        .await?;
    if let Err(err) = registered {
        let forget = name.clone();
        store(&gateway, move |conn| stored::delete(conn, &forget)).await?;
        return Err(err.into());
    }
    log::info!("connector `{name}` registered through the API");
    let view = find(&gateway, &name).await?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/api/v1/connectors/{name}")))
        .json(view))
}

/// `PUT /api/v1/connectors/{name}`: replaces the settings, live.
pub async fn update(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let _held = gateway.api_writes.lock().await;
    let existing = find(&gateway, &name).await?;
    if existing.source == Source::File {
        return Err(ApiError::Conflict(format!(
            "connector `{name}` comes from connectors.yaml; change it there"
        )));
    }
    let (settings, headers) = parse(&body, Some(&name))?;
    let json = to_json(&settings)?;
    let key = name.clone();
    let now = crate::connector::now_ms();
    let changed = store(&gateway, move |conn| stored::update(conn, &key, &json, now)).await?;
    if changed == 0 {
        return Err(ApiError::NotFound(format!(
            "no connector is named `{name}`"
        )));
    }
    gateway
        .registry
        .send(ReplaceConnector {
            settings: Arc::new(settings),
            headers: headers.into(),
        })
        .await??;
    log::info!("connector `{name}` changed through the API");
    Ok(HttpResponse::Ok().json(find(&gateway, &name).await?))
}

/// `DELETE /api/v1/connectors/{name}`: 204.
pub async fn delete(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let _held = gateway.api_writes.lock().await;
    let existing = find(&gateway, &name).await?;
    if existing.source == Source::File {
        return Err(ApiError::Conflict(format!(
            "connector `{name}` comes from connectors.yaml; change it there"
        )));
    }
    let key = name.clone();
    store(&gateway, move |conn| stored::delete(conn, &key)).await?;
    let name = name.into_inner();
    gateway.registry.send(RemoveConnector { name }).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/connectors/{name}/refresh`: drops its caches and checks it now, and has the
/// other gateways of the store do so too (they see the time noted at their next look); 202.
/// When the store cannot be reached, 503 says that only this gateway refreshed it.
pub async fn refresh(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let request = RefreshConnector { name: name.clone() };
    gateway.registry.send(request).await??;
    let asked = name.clone();
    let noted = store(&gateway, move |conn| refreshes::ask(conn, &asked)).await;
    let at = noted.map_err(|err| match err {
        ApiError::Unavailable(_) => ApiError::Unavailable(format!(
            "connector `{name}` was refreshed on this gateway, but the store is unavailable, so the other gateways were not asked to; ask again"
        )),
        other => other,
    })?;
    gateway.refreshes_asked.note(&name, at);
    Ok(HttpResponse::Accepted().json(json!({ "refreshing": name })))
}

/// `GET /api/v1/connectors/{name}/metrics`: error rate and p50/p95/p99 over 5 min, 1 h, 24 h.
pub async fn metrics(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    find(&gateway, &name).await?;
    let now = crate::connector::now_ms();
    let connector = name.clone();
    let windows = store(&gateway, move |conn| {
        let mut windows = BTreeMap::new();
        for (label, ms) in [("5m", 300_000), ("1h", 3_600_000), ("24h", 86_400_000)] {
            windows.insert(label, tool_calls::window_stats(conn, &connector, now - ms)?);
        }
        Ok(windows)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"connector": name.into_inner(), "windows": windows})))
}

/// Brings this process's API connectors in line with the `connectors` table, which the API of
/// every gateway on the store writes: starts those stored and not run here, runs the stored
/// settings of those changed, retires those no longer stored. A row that does not validate,
/// whose secrets this process lacks, or whose name `connectors.yaml` takes, is logged once and
/// tried again when it changes. The caller holds [`Gateway::api_writes`]; an error is a store
/// or registry failure, after which nothing is known to be in line.
pub async fn follow(gateway: &Gateway, failed: &mut Failed) -> Result<(), String> {
    let rows = store(gateway, stored::all).await.map_err(|e| e.detail())?;
    let stored = plan::stored(rows.into_iter().map(|row| (row.name, row.settings)));
    let running = gateway
        .registry
        .send(ListSettings)
        .await
        .map_err(|e| format!("registry unreachable: {e}"))?;
    let running = plan::running(
        running
            .into_iter()
            .map(|(s, source)| (s.name.clone(), s, source)),
    );
    plan::prune(failed, &stored);
    for step in plan::steps(&stored, &running, failed) {
        let outcome = match &step {
            Step::Add(_, settings) => apply(gateway, settings, false).await,
            Step::Replace(_, settings) => apply(gateway, settings, true).await,
            Step::Remove(name) => remove(gateway, name).await,
        };
        let outcome = outcome.map_err(|e| e.detail());
        let named = ("connector", "connector");
        crate::sync::report(step, outcome, named, &gateway.metrics, failed);
    }
    Ok(())
}

/// Runs stored `settings`, in place of those of the connector of the same name when `replace`.
async fn apply(gateway: &Gateway, settings: &Value, replace: bool) -> Result<(), ApiError> {
    let body = serde_json::to_vec(settings).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (settings, headers) = parse(&body, None)?;
    let (settings, headers) = (Arc::new(settings), headers.into());
    let applied = if replace {
        let request = ReplaceConnector { settings, headers };
        gateway.registry.send(request).await?
    } else {
        let source = Source::Api;
        let request = RegisterConnector {
            settings,
            headers,
            source,
        };
        gateway.registry.send(request).await?
    };
    Ok(applied?)
}

async fn remove(gateway: &Gateway, name: &str) -> Result<(), ApiError> {
    let name = name.to_string();
    Ok(gateway.registry.send(RemoveConnector { name }).await??)
}

/// The view of `name`, or 404.
async fn find(gateway: &Gateway, name: &str) -> Result<ConnectorView, ApiError> {
    let views = gateway.registry.send(ListConnectors).await?;
    views
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no connector is named `{name}`")))
}

/// Reads connector settings from a body; `name` (from the path) fills in or must match the
/// body's. Every field problem is named.
fn parse(
    body: &[u8],
    name: Option<&str>,
) -> Result<(ConnectorSettings, Vec<(String, secrecy::SecretString)>), ApiError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(invalid("body", "must be a JSON object"));
    };
    if let Some(name) = name {
        match object.get("name") {
            None => {
                object.insert("name".into(), json!(name));
            }
            Some(given) if given == name => {}
            Some(_) => return Err(invalid("name", "must match the name in the path")),
        }
    }
    let settings: ConnectorSettings = super::checked(value, ConnectorSettings::problems)?;
    let headers = settings
        .resolve_headers()
        .map_err(|e| invalid("headers", &e))?;
    Ok((settings, headers))
}

fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::Invalid(BTreeMap::from([(field.to_string(), problem.to_string())]))
}

fn to_json(settings: &ConnectorSettings) -> Result<String, ApiError> {
    serde_json::to_string(settings).map_err(|e| ApiError::Internal(e.to_string()))
}
