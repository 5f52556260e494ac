//! The `Connector` actor: one per backend, started under `actix::Supervisor`.
//!
//! Owns its backend's replicas (each with a circuit breaker), health checks, cached lists, rate
//! limit and the coalescing of identical reads; runs the calls routed to it and reports its
//! status and lists to the [`ConnectorRegistry`](crate::registry::ConnectorRegistry). It knows no
//! other connector and no client session. After `restart_after_failed_checks` failed checks in a
//! row it stops itself so that the supervisor restarts it with fresh clients; requests under way
//! then fail with a clear error.

mod backend;
mod backends;
mod breaker;
mod checks;
mod error;
mod headers;
mod health;
mod http;
mod passthrough;
mod rate_limit;
pub(crate) mod redact;
mod replicas;
mod settings;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::{LocalBoxFuture, Shared};
use futures_util::FutureExt;
use secrecy::SecretString;
use serde_json::{Map, Value};

pub use breaker::{BreakerSettings, BreakerState};
pub use error::ConnectorError;
pub use headers::header_pair;
pub use health::{now_ms, ConnectorStatus, Health};
pub(crate) use http::redirected;
pub use rate_limit::RateLimitSettings;
pub use replicas::ReplicaView;
pub use settings::{Balance, ConnectorKind, ConnectorSettings, Credentials};

use crate::catalog::Item;
use crate::metrics::Metrics;
use crate::registry::ConnectorReport;
use crate::session::ClientLink;
use crate::upstream::UpstreamEvent;
use backend::Backend;
use rate_limit::TokenBucket;
use replicas::Replicas;

/// Runs a tool on the backend.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct CallTool {
    /// The backend's own tool name.
    pub tool: String,
    /// The arguments, an object.
    pub arguments: Value,
    /// The client's `_meta` (its progress token), passed on to MCP backends.
    pub meta: Option<Value>,
    /// The client session served, for what the backend sends it during the call.
    pub client: Option<ClientLink>,
    /// Resolves when the client's request is abandoned (its sender dropped): the call is then
    /// dropped too, which cancels it upstream.
    pub abandoned: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// Reads a resource from the backend.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct ReadResource {
    /// The backend's own URI.
    pub uri: String,
    /// The client session served.
    pub client: Option<ClientLink>,
}

/// Renders a prompt on the backend.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct GetPrompt {
    /// The backend's own prompt name.
    pub prompt: String,
    /// The arguments, string values.
    pub arguments: Map<String, Value>,
    /// The client session served.
    pub client: Option<ClientLink>,
}

/// Passes a request on to an MCP backend as it is (`completion/complete`, …).
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct Forward {
    /// The method.
    pub method: String,
    /// Its params, names already the backend's own.
    pub params: Value,
    /// The client session served.
    pub client: Option<ClientLink>,
}

/// Subscribes a client session to updates of one of the backend's resources.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct SubscribeResource {
    /// The backend's own URI.
    pub uri: String,
    /// The session to notify.
    pub client: ClientLink,
}

/// Ends a client session's subscription to one of the backend's resources.
#[derive(Message)]
#[rtype(result = "Result<Value, ConnectorError>")]
pub struct UnsubscribeResource {
    /// The backend's own URI.
    pub uri: String,
    /// The session's id.
    pub session: String,
}

/// Something an MCP backend sent on its own.
#[derive(Message)]
#[rtype(result = "()")]
struct Upstream(UpstreamEvent);

/// Drops the cached lists and checks the backend now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RefreshCatalog;

/// Stops the connector for good (it was removed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// A replica's breaker changed state.
#[derive(Message)]
#[rtype(result = "()")]
struct BreakerChanged;

/// A read under way, shared by identical concurrent reads.
type SharedRead = Shared<LocalBoxFuture<'static, Result<Value, ConnectorError>>>;

/// A list and when it was loaded.
struct Cached<T> {
    value: T,
    at: Instant,
}

/// The lists last loaded from the backend.
#[derive(Default)]
struct CachedLists {
    tools: Option<Cached<Vec<Item>>>,
    resources: Option<Cached<Vec<Item>>>,
    resource_templates: Option<Cached<Vec<Item>>>,
    prompts: Option<Cached<Vec<Item>>>,
    info: Option<Cached<Value>>,
}

/// How long list changes announced by an MCP backend are gathered before one reload.
const LIST_CHANGED_DEBOUNCE: Duration = Duration::from_millis(100);

/// One backend's actor.
pub struct Connector {
    /// Its settings, as configured.
    settings: Arc<ConnectorSettings>,
    /// Its headers with secrets resolved.
    headers: Arc<[(String, SecretString)]>,
    /// Where status and lists are reported.
    registry: Recipient<ConnectorReport>,
    /// Cache counters.
    metrics: Arc<Metrics>,
    /// Masks the secrets a backend sends back.
    redactor: Arc<redact::Redactor>,
    /// The replicas, made when the actor (re)starts.
    replicas: Option<Rc<Replicas>>,
    /// The lists last loaded.
    lists: CachedLists,
    /// Whether the next check reloads every list whatever its age.
    reload_all: bool,
    /// Tools that declare `readOnlyHint` or `idempotentHint`: safe to retry.
    retryable_tools: Rc<HashSet<String>>,
    /// The rate limit of tool calls.
    bucket: Option<TokenBucket>,
    /// Reads under way by URI.
    reads: HashMap<String, SharedRead>,
    /// What operators see.
    status: ConnectorStatus,
    /// Checks in a row that found it unhealthy.
    failed_checks: u32,
    /// Whether a check is under way.
    checking: bool,
    /// Whether it was removed: it then serves nothing and is not restarted into service.
    removed: bool,
    /// Resource subscriptions: the backend's URI → session id → link.
    subscriptions: HashMap<String, HashMap<String, ClientLink>>,
    /// A reload asked for by the backend's list-changed notifications, not yet run.
    reload_pending: bool,
}

impl Connector {
    /// A connector for `settings` that reports to `registry`.
    pub fn new(
        settings: Arc<ConnectorSettings>,
        headers: Arc<[(String, SecretString)]>,
        registry: Recipient<ConnectorReport>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Connector {
            redactor: Arc::new(redact::Redactor::new(&settings)),
            settings,
            headers,
            registry,
            metrics,
            replicas: None,
            lists: CachedLists::default(),
            reload_all: true,
            retryable_tools: Rc::default(),
            bucket: None,
            reads: HashMap::new(),
            status: ConnectorStatus::unknown(Vec::new()),
            failed_checks: 0,
            checking: false,
            removed: false,
            subscriptions: HashMap::new(),
            reload_pending: false,
        }
    }

    fn replicas(&self) -> Result<Rc<Replicas>, ConnectorError> {
        self.replicas
            .clone()
            .ok_or_else(|| ConnectorError::Stopped {
                connector: self.settings.name.clone(),
            })
    }
}

impl Actor for Connector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.removed {
            return;
        }
        let me = ctx.address().downgrade();
        let on_change = Box::new(move || {
            if let Some(addr) = me.upgrade() {
                addr.do_send(BreakerChanged);
            }
        });
        let replicas = Replicas::new(&self.settings, self.backends(ctx), on_change);
        self.status.replicas = replicas.views();
        self.replicas = Some(Rc::new(replicas));
        self.bucket = self
            .settings
            .rate_limit
            .as_ref()
            .map(|limit| TokenBucket::new(limit, Instant::now()));
        self.check(ctx);
        let interval = Duration::from_millis(self.settings.health_check_interval_ms);
        ctx.run_interval(interval, |act, ctx| act.check(ctx));
    }
}

impl Supervised for Connector {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if !self.removed {
            log::warn!(
                "connector `{}` restarting with fresh clients",
                self.settings.name
            );
        }
        if let Some(replicas) = self.replicas.take() {
            replicas.shutdown();
        }
        self.checking = false;
        self.reads.clear();
    }
}

impl Handler<CallTool> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: CallTool, _ctx: &mut Self::Context) -> Self::Result {
        if let Some(bucket) = &mut self.bucket {
            if let Err(wait) = bucket.take(Instant::now()) {
                return Box::pin(fut::ready(Err(ConnectorError::RateLimited {
                    connector: self.settings.name.clone(),
                    retry_after_ms: wait.as_millis().max(1) as u64,
                })));
            }
        }
        let replicas = self.replicas();
        let connector = self.settings.name.clone();
        let retry = self.settings.retry.tool_calls || self.retryable_tools.contains(&msg.tool);
        let redactor = self.redactor.clone();
        let call = async move {
            let CallTool {
                tool,
                arguments,
                meta,
                client,
                abandoned,
            } = msg;
            let run = |backend: Backend| {
                let (tool, arguments) = (tool.clone(), arguments.clone());
                let (meta, client) = (meta.clone(), client.clone());
                async move { backend.call_tool(&tool, arguments, meta, client).await }
            };
            let replicas = replicas?;
            let call = replicas.call(retry, |r| !r.server_error, run);
            let result = match abandoned {
                Some(abandoned) => tokio::select! {
                    biased;
                    result = call => result?,
                    _ = abandoned => return Err(ConnectorError::Stopped { connector }),
                },
                None => call.await?,
            };
            Ok(result.value)
        };
        let work = async move { redactor.result(call.await) };
        Box::pin(work.into_actor(self))
    }
}

impl Handler<ReadResource> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: ReadResource, _ctx: &mut Self::Context) -> Self::Result {
        let (uri, client) = (msg.uri, msg.client);
        let (shared, joined) = match self.reads.get(&uri) {
            Some(shared) => (shared.clone(), true),
            None => {
                let replicas = self.replicas();
                let target = uri.clone();
                let read = async move {
                    let run = |backend: Backend| {
                        let (uri, client) = (target.clone(), client.clone());
                        async move { backend.read_resource(&uri, client).await }
                    };
                    replicas?.call(true, |_| true, run).await
                };
                let shared = read.boxed_local().shared();
                self.reads.insert(uri.clone(), shared.clone());
                (shared, false)
            }
        };
        self.metrics.cache_lookup("resource_read", joined);
        let mine = shared.clone();
        Box::pin(shared.into_actor(self).map(move |result, act, _| {
            if act.reads.get(&uri).is_some_and(|s| s.ptr_eq(&mine)) {
                act.reads.remove(&uri);
            }
            act.redactor.result(result)
        }))
    }
}

impl Handler<GetPrompt> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: GetPrompt, _ctx: &mut Self::Context) -> Self::Result {
        let replicas = self.replicas();
        let redactor = self.redactor.clone();
        let work = async move {
            let GetPrompt {
                prompt,
                arguments,
                client,
            } = msg;
            let run = |backend: Backend| {
                let (prompt, arguments) = (prompt.clone(), arguments.clone());
                let client = client.clone();
                async move { backend.get_prompt(&prompt, &arguments, client).await }
            };
            redactor.result(replicas?.call(true, |_| true, run).await)
        };
        Box::pin(work.into_actor(self))
    }
}

impl Handler<RefreshCatalog> for Connector {
    type Result = ();

    fn handle(&mut self, _msg: RefreshCatalog, ctx: &mut Self::Context) {
        self.reload_all = true;
        self.lists.info = None;
        self.check(ctx);
    }
}

impl Handler<Retire> for Connector {
    type Result = ();

    fn handle(&mut self, _msg: Retire, ctx: &mut Self::Context) {
        self.removed = true;
        if let Some(replicas) = self.replicas.take() {
            replicas.shutdown();
        }
        ctx.stop();
    }
}

impl Handler<BreakerChanged> for Connector {
    type Result = ();

    fn handle(&mut self, _msg: BreakerChanged, ctx: &mut Self::Context) {
        self.report(false);
        let all_open = self.replicas.as_ref().is_some_and(|r| !r.available());
        if all_open {
            let wait = Duration::from_millis(self.settings.breaker.open_ms);
            ctx.run_later(wait, |act, ctx| act.check(ctx));
        }
    }
}
