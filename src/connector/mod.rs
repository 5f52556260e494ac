//! The `Connector` actor: one per backend, started under `actix::Supervisor`.
//!
//! Owns its backend's replicas (each with a circuit breaker), health checks, cached lists, rate
//! limit and the coalescing of identical reads; runs the calls routed to it and reports its
//! status and lists to the [`ConnectorRegistry`](crate::registry::ConnectorRegistry). It knows no
//! other connector and no client session. After `restart_after_failed_checks` failed checks in a
//! row it stops itself so that the supervisor restarts it with fresh clients; requests under way
//! then fail with a clear error.

mod backend;
mod breaker;
mod error;
mod health;
mod http;
mod rate_limit;
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
pub use health::{now_ms, ConnectorStatus, Health};
pub use rate_limit::RateLimitSettings;
pub use replicas::ReplicaView;
pub use settings::{Balance, ConnectorKind, ConnectorSettings, Credentials};

use crate::catalog::{ConnectorCatalog, Item};
use crate::metrics::Metrics;
use crate::registry::ConnectorReport;
use crate::session::ClientLink;
use crate::upstream::{McpClient, StdioSpec, Target, UpstreamEvent};
use backend::{Backend, McpBackend};
use http::{Due, HttpBackend, Lists};
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

    /// One client per replica (URL) or, for `stdio`, the one process.
    fn backends(&self, ctx: &Context<Self>) -> Vec<(String, Backend)> {
        let settings = &self.settings;
        let mcp = |target: Target| {
            let me = ctx.address().downgrade();
            let events = Box::new(move |event| {
                if let Some(addr) = me.upgrade() {
                    addr.do_send(Upstream(event));
                }
            });
            let headers = self
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        secrecy::ExposeSecret::expose_secret(v).to_string(),
                    )
                })
                .collect();
            Backend::Mcp(McpBackend {
                client: McpClient::new(settings, target, headers, events),
                last_used: Rc::new(std::cell::Cell::new(Instant::now())),
            })
        };
        match settings.kind {
            ConnectorKind::Http => settings
                .urls()
                .into_iter()
                .map(|url| {
                    let backend = Backend::Http(HttpBackend::new(settings, &url, &self.headers));
                    (url, backend)
                })
                .collect(),
            ConnectorKind::Mcp => settings
                .urls()
                .into_iter()
                .map(|url| {
                    let target = Target::Http {
                        url: url.clone(),
                        mode: settings.transport,
                    };
                    (url, mcp(target))
                })
                .collect(),
            ConnectorKind::Stdio => {
                let env = crate::upstream::resolve_env(&settings.env).unwrap_or_default();
                let spec = StdioSpec {
                    command: settings.command.clone().unwrap_or_default(),
                    args: settings.args.clone(),
                    env,
                    cwd: settings.cwd.clone(),
                };
                let label = format!("stdio:{}", spec.command);
                vec![(label, mcp(Target::Stdio(spec)))]
            }
        }
    }

    /// Ends an idle `stdio` process; true when the backend sleeps (and is not probed).
    fn idle(&self) -> bool {
        let limit = self.settings.idle_timeout_ms;
        if limit == 0 || !self.subscriptions.is_empty() {
            return false;
        }
        let Some(replicas) = &self.replicas else {
            return false;
        };
        replicas.backends().all(|backend| match backend {
            Backend::Mcp(mcp) if mcp.last_used.get().elapsed() > Duration::from_millis(limit) => {
                mcp.client.disconnect();
                true
            }
            _ => false,
        })
    }

    fn replicas(&self) -> Result<Rc<Replicas>, ConnectorError> {
        self.replicas
            .clone()
            .ok_or_else(|| ConnectorError::Stopped {
                connector: self.settings.name.clone(),
            })
    }

    /// Which lists the next check loads: the tool list always (it is part of the check), the
    /// others when older than their cache lifetime.
    fn due(&self) -> Due {
        let expired = |list: &Option<Cached<Vec<Item>>>, ttl_ms: u64| {
            self.reload_all
                || list
                    .as_ref()
                    .is_none_or(|c| c.at.elapsed() >= Duration::from_millis(ttl_ms))
        };
        Due {
            tools: true,
            resources: expired(&self.lists.resources, self.settings.cache.resources_ttl_ms),
            prompts: expired(&self.lists.prompts, self.settings.cache.prompts_ttl_ms),
        }
    }

    /// Probes every replica and reloads the due lists.
    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.checking || self.removed {
            return;
        }
        let Ok(replicas) = self.replicas() else {
            return;
        };
        if self.idle() && self.lists.tools.is_some() {
            return;
        }
        self.checking = true;
        let due = self.due();
        let timeout = Duration::from_millis(self.settings.health_check_timeout_ms);
        let connector = self.settings.name.clone();
        let work = async move {
            let probes = replicas.probe(timeout).await;
            let lists = if probes.iter().any(|p| matches!(p, Some(Ok(_)))) {
                let load = |backend: Backend| async move { backend.load_lists(due).await };
                replicas.call(true, |_| true, load).await
            } else {
                Err(ConnectorError::Unreachable {
                    connector,
                    reason: "no replica answers its health probe".into(),
                })
            };
            (probes, lists)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|(probes, lists), act, ctx| act.checked(&probes, lists, ctx)),
        );
    }

    fn checked(
        &mut self,
        probes: &[Option<Result<Value, ConnectorError>>],
        lists: Result<Lists, ConnectorError>,
        ctx: &mut Context<Self>,
    ) {
        self.checking = false;
        let (health, reason) = health::assess(probes, lists.as_ref().map(|_| ()));
        let info_ttl = Duration::from_millis(self.settings.cache.info_ttl_ms);
        let info = probes.iter().flatten().find_map(|p| p.as_ref().ok());
        if let Some(info) = info {
            if self
                .lists
                .info
                .as_ref()
                .is_none_or(|c| c.at.elapsed() >= info_ttl)
            {
                self.lists.info = Some(Cached {
                    value: info.clone(),
                    at: Instant::now(),
                });
            }
        }
        let changed = match lists {
            Ok(lists) => {
                self.reload_all = false;
                self.store(lists)
            }
            Err(_) => false,
        };
        self.failed_checks = match health {
            Health::Unhealthy => self.failed_checks + 1,
            _ => 0,
        };
        self.status.set_health(health, reason);
        self.report(changed);
        let limit = self.settings.restart_after_failed_checks;
        if limit > 0 && self.failed_checks >= limit {
            log::warn!(
                "connector `{}` failed {limit} health checks in a row; restarting it",
                self.settings.name
            );
            self.failed_checks = 0;
            ctx.stop();
        }
    }

    /// Keeps the lists that were loaded; returns whether any differs from before.
    fn store(&mut self, lists: Lists) -> bool {
        let now = Instant::now();
        let mut changed = false;
        for (new, old) in [
            (lists.tools, &mut self.lists.tools),
            (lists.resources, &mut self.lists.resources),
            (lists.resource_templates, &mut self.lists.resource_templates),
            (lists.prompts, &mut self.lists.prompts),
        ] {
            if let Some(value) = new {
                changed |= old.as_ref().is_none_or(|c| c.value != value);
                *old = Some(Cached { value, at: now });
            }
        }
        if changed {
            let tools = self.lists.tools.as_ref().map_or(&[][..], |c| &c.value[..]);
            self.retryable_tools = Rc::new(
                tools
                    .iter()
                    .filter(|t| is_safe_to_retry(t))
                    .filter_map(|t| Some(t.get("name")?.as_str()?.to_string()))
                    .collect(),
            );
        }
        changed
    }

    /// Tells the registry the status, and the lists when they changed.
    fn report(&mut self, lists_changed: bool) {
        let Some(replicas) = &self.replicas else {
            return;
        };
        self.status.available = replicas.available();
        self.status.replicas = replicas.views();
        self.status.info = self.lists.info.as_ref().map(|c| c.value.clone());
        let lists = match (&self.lists.tools, lists_changed) {
            (Some(_), true) => Some(Arc::new(self.catalog())),
            _ => None,
        };
        self.registry.do_send(ConnectorReport {
            connector: self.settings.name.clone(),
            status: self.status.clone(),
            lists,
        });
    }

    fn catalog(&self) -> ConnectorCatalog {
        let list = |c: &Option<Cached<Vec<Item>>>| c.as_ref().map(|c| c.value.clone());
        ConnectorCatalog {
            tools: list(&self.lists.tools).unwrap_or_default(),
            resources: list(&self.lists.resources).unwrap_or_default(),
            resource_templates: list(&self.lists.resource_templates).unwrap_or_default(),
            prompts: list(&self.lists.prompts).unwrap_or_default(),
        }
    }
}

/// Whether a tool declares that running it twice does no harm.
fn is_safe_to_retry(tool: &Item) -> bool {
    let hint = |name: &str| {
        tool.get("annotations")
            .and_then(|a| a.get(name))
            .and_then(Value::as_bool)
            == Some(true)
    };
    hint("readOnlyHint") || hint("idempotentHint")
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
        let work = async move {
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
            result
        }))
    }
}

impl Handler<GetPrompt> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: GetPrompt, _ctx: &mut Self::Context) -> Self::Result {
        let replicas = self.replicas();
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
            replicas?.call(true, |_| true, run).await
        };
        Box::pin(work.into_actor(self))
    }
}

impl Handler<Forward> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: Forward, _ctx: &mut Self::Context) -> Self::Result {
        let replicas = self.replicas();
        Box::pin(forward(replicas, msg.method, msg.params, msg.client).into_actor(self))
    }
}

impl Handler<SubscribeResource> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: SubscribeResource, _ctx: &mut Self::Context) -> Self::Result {
        let first = !self.subscriptions.contains_key(&msg.uri);
        let session = msg.client.session_id.to_string();
        self.subscriptions
            .entry(msg.uri.clone())
            .or_default()
            .insert(session, msg.client);
        if !first {
            return Box::pin(fut::ready(Ok(serde_json::json!({}))));
        }
        let params = serde_json::json!({ "uri": msg.uri });
        let work = forward(self.replicas(), "resources/subscribe".into(), params, None);
        Box::pin(work.into_actor(self))
    }
}

impl Handler<UnsubscribeResource> for Connector {
    type Result = ResponseActFuture<Self, Result<Value, ConnectorError>>;

    fn handle(&mut self, msg: UnsubscribeResource, _ctx: &mut Self::Context) -> Self::Result {
        let Some(sessions) = self.subscriptions.get_mut(&msg.uri) else {
            return Box::pin(fut::ready(Ok(serde_json::json!({}))));
        };
        sessions.remove(&msg.session);
        if !sessions.is_empty() {
            return Box::pin(fut::ready(Ok(serde_json::json!({}))));
        }
        self.subscriptions.remove(&msg.uri);
        let params = serde_json::json!({ "uri": msg.uri });
        let work = forward(
            self.replicas(),
            "resources/unsubscribe".into(),
            params,
            None,
        );
        Box::pin(work.into_actor(self))
    }
}

/// Sends `method` to a replica, retrying as for any safe request.
async fn forward(
    replicas: Result<Rc<Replicas>, ConnectorError>,
    method: String,
    params: Value,
    client: Option<ClientLink>,
) -> Result<Value, ConnectorError> {
    let run = |backend: Backend| {
        let (method, params, client) = (method.clone(), params.clone(), client.clone());
        async move { backend.forward(&method, params, client).await }
    };
    replicas?.call(true, |_| true, run).await
}

impl Handler<Upstream> for Connector {
    type Result = ();

    fn handle(&mut self, msg: Upstream, ctx: &mut Self::Context) {
        match msg.0 {
            UpstreamEvent::ListChanged if !self.reload_pending => {
                self.reload_pending = true;
                ctx.run_later(LIST_CHANGED_DEBOUNCE, |act, ctx| {
                    act.reload_pending = false;
                    act.reload_all = true;
                    act.check(ctx);
                });
            }
            UpstreamEvent::ListChanged => {}
            UpstreamEvent::ResourceUpdated(uri) => {
                let params = serde_json::json!({ "uri": format!("{}:{uri}", self.settings.name) });
                let note = crate::mcp::jsonrpc::notification(
                    "notifications/resources/updated",
                    Some(params),
                );
                for link in self
                    .subscriptions
                    .get(&uri)
                    .into_iter()
                    .flat_map(|s| s.values())
                {
                    link.notify(note.clone());
                }
            }
        }
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
