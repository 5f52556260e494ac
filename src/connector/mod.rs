//! The `Connector` actor: one per backend, started under `actix::Supervisor`.
//!
//! Owns the client of its backend, keeps that backend's tool, resource and prompt lists fresh
//! (reporting each load to the [`ConnectorRegistry`](crate::registry::ConnectorRegistry)), and
//! runs the calls routed to it. It does not know other connectors or client sessions. Backend
//! kinds sit behind [`Backend`]; `http` is the first.

mod error;
mod http;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use secrecy::SecretString;
use serde_json::{Map, Value};

pub use error::ConnectorError;
pub use http::HttpBackend;
pub use settings::{ConnectorKind, ConnectorSettings};

use crate::catalog::ConnectorCatalog;
use crate::registry::CatalogLoaded;

/// First wait before reloading the lists of a backend that failed; doubled per failure.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// Runs a tool on the backend.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct CallTool {
    /// The backend's own tool name.
    pub tool: String,
    /// The arguments, an object.
    pub arguments: Value,
}

/// Reads a resource from the backend.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct ReadResource {
    /// The backend's own URI.
    pub uri: String,
}

/// Renders a prompt on the backend.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct GetPrompt {
    /// The backend's own prompt name.
    pub prompt: String,
    /// The arguments, string values.
    pub arguments: Map<String, Value>,
}

/// Reloads the backend's lists now instead of at the next interval.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RefreshCatalog;

/// A backend, whatever its kind.
#[derive(Clone)]
enum Backend {
    Http(HttpBackend),
}

impl Backend {
    async fn load_catalog(self) -> Result<ConnectorCatalog, ConnectorError> {
        match self {
            Backend::Http(http) => http.load_catalog().await,
        }
    }

    async fn call_tool(self, msg: CallTool) -> Result<Value, ConnectorError> {
        match self {
            Backend::Http(http) => http.call_tool(&msg.tool, msg.arguments).await,
        }
    }

    async fn read_resource(self, msg: ReadResource) -> Result<Value, ConnectorError> {
        match self {
            Backend::Http(http) => http.read_resource(&msg.uri).await,
        }
    }

    async fn get_prompt(self, msg: GetPrompt) -> Result<Value, ConnectorError> {
        match self {
            Backend::Http(http) => http.get_prompt(&msg.prompt, &msg.arguments).await,
        }
    }
}

/// One backend's actor.
pub struct Connector {
    /// Its settings, as configured.
    settings: Arc<ConnectorSettings>,
    /// Its headers with secrets resolved.
    headers: Arc<[(String, SecretString)]>,
    /// Where list loads are reported.
    registry: Recipient<CatalogLoaded>,
    /// The backend client, made when the actor (re)starts.
    backend: Option<Backend>,
    /// Consecutive failed list loads.
    failures: u32,
    /// The next scheduled list load.
    next_load: Option<SpawnHandle>,
}

impl Connector {
    /// A connector for `settings` that reports its lists to `registry`.
    pub fn new(
        settings: Arc<ConnectorSettings>,
        headers: Arc<[(String, SecretString)]>,
        registry: Recipient<CatalogLoaded>,
    ) -> Self {
        Connector {
            settings,
            headers,
            registry,
            backend: None,
            failures: 0,
            next_load: None,
        }
    }

    fn backend(&self) -> Result<Backend, ConnectorError> {
        self.backend.clone().ok_or_else(|| ConnectorError::Stopped {
            connector: self.settings.name.clone(),
        })
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.next_load.take() {
            ctx.cancel_future(handle);
        }
        let Ok(backend) = self.backend() else { return };
        let load = backend
            .load_catalog()
            .into_actor(self)
            .map(|result, act, ctx| {
                let delay = match &result {
                    Ok(_) => {
                        act.failures = 0;
                        act.settings.refresh_interval()
                    }
                    Err(_) => {
                        act.failures = act.failures.saturating_add(1);
                        let backoff = FIRST_RETRY.saturating_mul(1 << act.failures.min(10));
                        backoff.min(act.settings.refresh_interval())
                    }
                };
                act.registry.do_send(CatalogLoaded {
                    connector: act.settings.name.clone(),
                    result: result.map(Arc::new),
                });
                act.next_load = Some(ctx.run_later(delay, |act, ctx| act.load(ctx)));
            });
        ctx.spawn(load);
    }
}

impl Actor for Connector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.backend = Some(match self.settings.kind {
            ConnectorKind::Http => Backend::Http(HttpBackend::new(&self.settings, &self.headers)),
        });
        self.load(ctx);
    }
}

impl Supervised for Connector {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        log::warn!("connector `{}` restarting", self.settings.name);
        self.backend = None;
        self.next_load = None;
    }
}

impl Handler<CallTool> for Connector {
    type Result = ResponseFuture<Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: CallTool, _ctx: &mut Self::Context) -> Self::Result {
        let backend = self.backend();
        Box::pin(async move { backend?.call_tool(msg).await })
    }
}

impl Handler<ReadResource> for Connector {
    type Result = ResponseFuture<Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: ReadResource, _ctx: &mut Self::Context) -> Self::Result {
        let backend = self.backend();
        Box::pin(async move { backend?.read_resource(msg).await })
    }
}

impl Handler<GetPrompt> for Connector {
    type Result = ResponseFuture<Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: GetPrompt, _ctx: &mut Self::Context) -> Self::Result {
        let backend = self.backend();
        Box::pin(async move { backend?.get_prompt(msg).await })
    }
}

impl Handler<RefreshCatalog> for Connector {
    type Result = ();

    fn handle(&mut self, _msg: RefreshCatalog, ctx: &mut Self::Context) {
        self.load(ctx);
    }
}
