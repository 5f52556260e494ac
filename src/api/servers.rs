//! `/api/v1/servers`: virtual servers listed, registered, changed and removed live. Those
//! registered here are stored in the `servers` table, which [`follow`] applies at start-up and
//! then as other gateways on the store change it; those of the settings answer 409 to changes.

use std::collections::{BTreeMap, HashSet};

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::store;
use crate::gateway::Gateway;
use crate::mcp::scope::VirtualServer;
use crate::registry::{ListConnectors, RegistryError, Source};
use crate::store::servers::{self as stored, StoredServer};
use crate::sync::plan::{self, Failed, Step};

fn view(server: &VirtualServer, source: Source) -> Value {
    json!({"server": server, "source": source,
        "endpoints": [format!("/servers/{}/mcp", server.name), format!("/servers/{}/sse", server.name)]})
}

/// `GET /api/v1/servers`.
pub async fn list(gateway: web::Data<Gateway>) -> HttpResponse {
    let servers: Vec<Value> = gateway
        .servers
        .list()
        .iter()
        .map(|(s, source)| view(s, *source))
        .collect();
    HttpResponse::Ok().json(json!({ "servers": servers }))
}

/// `GET /api/v1/servers/{name}`.
pub async fn show(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (server, source) = gateway
        .servers
        .list()
        .into_iter()
        .find(|(s, _)| s.name == *name)
        .ok_or_else(|| ApiError::NotFound(format!("no virtual server is named `{name}`")))?;
    Ok(HttpResponse::Ok().json(view(&server, source)))
}

/// `POST /api/v1/servers`: 201, 409 when the name exists, 422 with field errors.
pub async fn create(
    gateway: web::Data<Gateway>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let _held = gateway.api_writes.lock().await;
    let server = parse(&body, None)?;
    known_connectors(&gateway, &server).await?;
    if gateway.servers.get(&server.name).is_some() {
        return Err(ApiError::Conflict(format!(
            "a virtual server named `{}` already exists",
            server.name
        )));
    }
    save(&gateway, &server).await?;
    gateway.servers.add(server.clone()).map_err(about_server)?;
    Ok(HttpResponse::Created().json(view(&server, Source::Api)))
}

/// `PUT /api/v1/servers/{name}`.
pub async fn update(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let _held = gateway.api_writes.lock().await;
    let server = parse(&body, Some(&name))?;
    if gateway.servers.get(&name).is_some() {
        known_connectors(&gateway, &server).await?;
    }
    gateway
        .servers
        .replace(server.clone())
        .map_err(about_server)?;
    ended(&gateway, &server.name);
    save(&gateway, &server).await?;
    Ok(HttpResponse::Ok().json(view(&server, Source::Api)))
}

/// `DELETE /api/v1/servers/{name}`: 204.
pub async fn delete(
    gateway: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let _held = gateway.api_writes.lock().await;
    gateway.servers.remove(&name).map_err(about_server)?;
    ended(&gateway, &name);
    let key = name.into_inner();
    store(&gateway, move |conn| stored::delete(conn, &key)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Brings this process's API virtual servers in line with the `servers` table, which the API
/// of every gateway on the store writes, as [`super::connectors::follow`] does for connectors.
/// The caller holds [`Gateway::api_writes`].
pub async fn follow(gateway: &Gateway, failed: &mut Failed) -> Result<(), String> {
    let rows = store(gateway, stored::all).await.map_err(|e| e.detail())?;
    let stored = plan::stored(rows.into_iter().map(|row| (row.name, row.settings)));
    let running = gateway.servers.list().into_iter();
    let running = plan::running(running.map(|(s, source)| (s.name.clone(), s, source)));
    plan::prune(failed, &stored);
    for step in plan::steps(&stored, &running, failed) {
        let parsed = |settings: &Value| parse(settings.to_string().as_bytes(), None);
        let outcome = match &step {
            Step::Add(_, settings) => {
                parsed(settings).and_then(|s| gateway.servers.add(s).map_err(about_server))
            }
            Step::Replace(name, settings) => parsed(settings)
                .and_then(|s| gateway.servers.replace(s).map_err(about_server))
                .inspect(|()| ended(gateway, name)),
            Step::Remove(name) => gateway
                .servers
                .remove(name)
                .map_err(about_server)
                .inspect(|()| ended(gateway, name)),
        };
        let outcome = outcome.map_err(|e| e.detail());
        let named = ("server", "virtual server");
        crate::sync::report(step, outcome, named, &gateway.metrics, failed);
    }
    Ok(())
}

/// Ends the sessions open on virtual server `name` after a change of its rules: they were
/// opened with the old ones, which must not go on being served.
fn ended(gateway: &Gateway, name: &str) {
    let ended = gateway.sessions.end_on_server(name);
    if ended > 0 {
        log::info!("virtual server `{name}` changed; its {ended} open sessions were ended");
    }
}

/// The registry's refusal, said of a virtual server.
fn about_server(err: RegistryError) -> ApiError {
    match err {
        RegistryError::NotFound(name) => {
            ApiError::NotFound(format!("no virtual server is named `{name}`"))
        }
        RegistryError::Exists(name) => {
            ApiError::Conflict(format!("a virtual server named `{name}` already exists"))
        }
        RegistryError::FromFile(name) => ApiError::Conflict(format!(
            "virtual server `{name}` comes from the settings files; change it there"
        )),
    }
}

/// 422 naming the connectors `server` names that this gateway does not have. Only the API
/// checks this: a server of the settings may name a connector registered through the API, and
/// one another gateway stored may name a connector this one has not yet taken up.
async fn known_connectors(gateway: &Gateway, server: &VirtualServer) -> Result<(), ApiError> {
    let views = gateway.registry.send(ListConnectors).await?;
    let known: HashSet<&str> = views.iter().map(|v| v.name.as_str()).collect();
    let unknown: Vec<String> = server
        .connectors
        .iter()
        .filter(|name| !known.contains(name.as_str()))
        .map(|name| format!("`{name}`"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let problem = format!("names no connector of the gateway: {}", unknown.join(", "));
    Err(ApiError::Invalid(BTreeMap::from([(
        "connectors".to_string(),
        problem,
    )])))
}

async fn save(gateway: &Gateway, server: &VirtualServer) -> Result<(), ApiError> {
    let now = crate::connector::now_ms();
    let row = StoredServer {
        name: server.name.clone(),
        settings: serde_json::to_string(server).map_err(|e| ApiError::Internal(e.to_string()))?,
        created_at_ms: now,
        updated_at_ms: now,
    };
    store(gateway, move |conn| stored::upsert(conn, &row)).await?;
    Ok(())
}

fn parse(body: &[u8], name: Option<&str>) -> Result<VirtualServer, ApiError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let invalid = |field: &str, problem: String| {
        ApiError::Invalid(BTreeMap::from([(field.to_string(), problem)]))
    };
    if !value.is_object() {
        return Err(invalid("body", "must be a JSON object".into()));
    }
    if let (Some(name), Some(object)) = (name, value.as_object_mut()) {
        match object.get("name") {
            None => {
                object.insert("name".into(), json!(name));
            }
            Some(given) if given == name => {}
            Some(_) => return Err(invalid("name", "must match the name in the path".into())),
        }
    }
    super::checked(value, VirtualServer::problems)
}
