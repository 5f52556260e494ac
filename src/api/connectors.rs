//! `/api/v1/connectors`: list, show, register, change, remove and refresh connectors, and their
//! call metrics from the stored records.
//!
//! Registrations made here are stored in the `connectors` table first and then applied live
//! through the registry; at start-up [`restore`] registers them again. Connectors from
//! `connectors.yaml` are listed too, and changing them here answers 409.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::store;
use crate::connector::ConnectorSettings;
use crate::gateway::Gateway;
use crate::registry::{
    ConnectorView, ListConnectors, RefreshConnector, RegisterConnector, RemoveConnector,
    ReplaceConnector, Source,
};
use crate::store::connectors::{self as stored, StoredConnector};
use crate::store::tool_calls;

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

/// `POST /api/v1/connectors/{name}/refresh`: drops its caches and checks it now; 202.
pub async fn refresh(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let request = RefreshConnector { name: name.clone() };
    gateway.registry.send(request).await??;
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

/// Registers the connectors stored by earlier API calls. One that no longer validates, whose
/// secrets are missing, or whose name a `connectors.yaml` entry now takes, is skipped and
/// logged; start-up goes on.
pub async fn restore(gateway: &Gateway) {
    let rows = match store(gateway, stored::all).await {
        Ok(rows) => rows,
        Err(_) => return,
    };
    for row in rows {
        let parsed = parse(row.settings.as_bytes(), Some(&row.name));
        let Ok((settings, headers)) = parsed else {
            log::error!("stored connector `{}` is invalid; skipped", row.name);
            continue;
        };
        let request = RegisterConnector {
            settings: Arc::new(settings),
            headers: headers.into(),
            source: Source::Api,
        };
        match gateway.registry.send(request).await {
            Ok(Ok(())) => log::info!("connector `{}` restored from the store", row.name),
            Ok(Err(err)) => log::warn!("stored connector `{}` skipped: {err}", row.name),
            Err(err) => log::error!("registry unreachable: {err}"),
        }
    }
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
    let settings: ConnectorSettings = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".into() } else { path };
        invalid(&field, &e.inner().to_string())
    })?;
    let problems = settings.problems();
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems.into_iter().collect()));
    }
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
