//! Builds the application from settings: store, recorder, registry and connectors, HTTP server.
//! Owns the order of start-up and shutdown; nothing here runs per request.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::KeepAlive;
use actix_web::middleware::{from_fn, Logger};
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::configuration::Settings;
use crate::feedback::FeedbackSink;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::recorder::{CallRecorder, Recorder, RecorderTask};
use crate::registry::{CatalogHandle, ConnectorRegistry, RegisterConnector, Source, Subscribe};
use crate::retention;
use crate::servers::VirtualServers;
use crate::session::Sessions;
use crate::trainer::restart::Flush;
use crate::trainer::served::ServedVersions;
use crate::trainer::{restart, Trainer, TrainerDeps};
use crate::transport::clients::ClientKeys;
use crate::transport::forward::Holders;
use crate::transport::Parked;
use crate::{api, secrets, store, transport};

/// How long shutdown waits for each of its writes.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A built, bound, not yet awaited gateway.
pub struct Application {
    port: u16,
    server: Server,
    recorder: RecorderTask,
    gateway: web::Data<Gateway>,
}

impl Application {
    /// Migrates the store (unless told not to), starts the actors and binds the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let (gateway, recorder_task) = build_gateway(&settings).await?;

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "cannot bind {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let max_body = settings.server.max_body_bytes;
        let shared = gateway.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(transport::body_deadline::check))
                .wrap(access_log())
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .configure(api::configure)
                .configure(transport::configure)
        })
        // Answers streamed as SSE go out in pieces (headers, then each event); without
        // TCP_NODELAY a piece after the first waits for the client's delayed ACK (~40 ms).
        .on_connect(|connection, _| {
            if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        .keep_alive(match settings.server.http_keep_alive_ms {
            0 => KeepAlive::Disabled,
            ms => KeepAlive::Timeout(Duration::from_millis(ms)),
        })
        .client_request_timeout(Duration::from_millis(
            settings.server.request_head_timeout_ms,
        ))
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        log::info!(
            "mcpgate listening on {}:{port} with {} connectors",
            settings.server.host,
            settings.connectors.len()
        );
        Ok(Application {
            port,
            server: server.run(),
            recorder: recorder_task,
            gateway,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server when told ([`ServerHandle::stop`]); [`Self::run_until_stopped`] then
    /// shuts the gateway down.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// What the handlers share, for tests and embedding.
    pub fn gateway(&self) -> web::Data<Gateway> {
        self.gateway.clone()
    }

    /// Serves until the server stops, then writes the buffered call records.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            recorder,
            gateway,
            ..
        } = self;
        let result = server.await;
        shut_down(gateway, recorder).await;
        result
    }
}

/// What shutdown does once no request is served any more: the trainer stores what it
/// otherwise stores at its checks (a restart loses none of it), and the buffered call records
/// are written. Each step waits at most `SHUTDOWN_WAIT`. The process that ends then ends
/// the MCP server processes still running ([`crate::upstream::end_all_processes`]); a
/// gateway embedded in a longer-lived process leaves that to it.
pub async fn shut_down(gateway: web::Data<Gateway>, recorder: RecorderTask) {
    crate::transport::forward::release_all(&gateway).await;
    let flushed = gateway.feedback.trainer.send(Flush);
    match actix_rt::time::timeout(SHUTDOWN_WAIT, flushed).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => log::warn!("the trainer could not store what it holds: {err}"),
        Err(_) => log::warn!("the trainer did not store what it holds within {SHUTDOWN_WAIT:?}"),
    }
    drop(gateway);
    recorder.finish(SHUTDOWN_WAIT).await;
}

/// Everything but the HTTP server: store (migrated unless told not to), recorder, registry with
/// its connectors, virtual servers, and what the API stored. Shared by `serve` and `stdio`.
pub async fn build_gateway(
    settings: &Settings,
) -> anyhow::Result<(web::Data<Gateway>, RecorderTask)> {
    let pool = store::pool(&settings.database);
    if settings.database.migrate_on_start {
        let migrating = pool.clone();
        let applied = web::block(move || store::migrate(&migrating))
            .await
            .context("migration task failed")??;
        if applied > 0 {
            log::info!("applied {applied} migrations");
        }
    }
    let tokens = resolve_all(
        &settings.server.auth.bearer_tokens,
        "server.auth.bearer_tokens",
    )?;
    let admin_tokens = resolve_all(&settings.admin.tokens, "admin.tokens")?;
    let mut connectors = Vec::new();
    for connector in &settings.connectors {
        let headers = connector
            .resolve_headers()
            .map_err(|e| anyhow::anyhow!("invalid setting: {e}"))?;
        connectors.push(RegisterConnector {
            settings: Arc::new(connector.clone()),
            headers: headers.into(),
            source: Source::File,
        });
    }

    let metrics = Arc::new(Metrics::new());
    let (recorder, calls_task) = CallRecorder::start(pool.clone(), &settings.recorder);
    let (feedback_recorder, feedback_task) = Recorder::start(pool.clone(), &settings.recorder);
    let recorder_task = calls_task.and(feedback_task);
    retention::start(pool.clone(), &settings.recorder, metrics.clone());
    let catalog = CatalogHandle::default();
    let separator = settings.mcp.name_separator.clone();
    let own_tools = Some(settings.feedback.tool_name.clone()).filter(|name| !name.is_empty());
    let registry = ConnectorRegistry::new(separator, catalog.clone(), metrics.clone())
        .reserving_tools(own_tools.into_iter().collect())
        .start();
    // Names are unique (validated), so registration cannot fail: queue them all at once rather
    // than waiting for each, which with 100 connectors held start-up for seconds.
    for connector in connectors {
        registry.do_send(connector);
    }
    let served = Arc::new(ServedVersions::default());
    let deps = TrainerDeps {
        pool: pool.clone(),
        catalog: catalog.clone(),
        served: served.clone(),
        metrics: metrics.clone(),
    };
    let window = Duration::from_millis(settings.feedback.window_ms);
    let mut trainer_settings = settings.trainer.clone();
    // Gateways share PostgreSQL; a SQLite file serves one, which needs no lease (and whose
    // write at shutdown would wait behind a long prune). A trainer whose triggers are off
    // takes none either, so that it never keeps another gateway's from starting runs.
    let sqlite = matches!(
        store::Target::from_url(&settings.database.url),
        store::Target::Sqlite(_)
    );
    let shared = !sqlite && trainer_settings.lease_ms > 0;
    if sqlite || !trainer_settings.enabled {
        trainer_settings.lease_ms = 0;
    }
    let mut trainer = Trainer::new(trainer_settings, window, deps);
    // This process, as the feedback rows it records name it; with several gateways on the
    // store, each trainer takes in the rows the others record.
    let origin: Arc<str> = uuid::Uuid::new_v4().to_string().into();
    let follows = shared && settings.database.sync_interval_ms > 0;
    if follows {
        let every = Duration::from_millis(settings.database.sync_interval_ms);
        trainer.follow_others(origin.to_string(), every);
    }
    // What it kept before a restart; a store that is away leaves it to start afresh.
    let kept = {
        let pool = pool.clone();
        web::block(move || restart::load(&pool, window, follows)).await
    };
    match kept {
        Ok(Ok(restored)) => trainer.restore(restored),
        Ok(Err(err)) => log::error!("loading what the trainer kept failed: {err}"),
        Err(err) => log::error!("loading what the trainer kept failed: {err}"),
    }
    // With several gateways on the store, only the lease's holder starts runs.
    let holds = match trainer.claim() {
        None => true,
        Some(claim) => claim.take(&pool).await.unwrap_or_else(|err| {
            log::warn!("the trainer's lease was not taken: {err}");
            false
        }),
    };
    trainer.lead(holds);
    let trainer = trainer.start();
    // A backend's release ends what its stale tool versions show at once.
    registry.do_send(Subscribe {
        session: "trainer".into(),
        recipient: trainer.clone().recipient(),
    });
    let client_keys = ClientKeys::load(&pool)
        .await
        .trusting(&settings.server.trusted_proxies);
    // Sessions are shared through PostgreSQL only: a SQLite file serves one gateway.
    let advertised = &settings.server.advertise_url;
    let holders = (!sqlite && !advertised.is_empty()).then(|| {
        let answered_within = Duration::from_millis(settings.mcp.request_timeout_ms);
        Holders::new(origin.clone(), advertised, answered_within)
    });
    let gateway = web::Data::new(Gateway {
        registry,
        catalog,
        recorder,
        sessions: Sessions::default(),
        mcp: settings.mcp.clone(),
        server: settings.server.clone(),
        tokens,
        admin_tokens,
        pool,
        metrics: metrics.clone(),
        servers: VirtualServers::new(&settings.servers),
        feedback: FeedbackSink {
            recorder: feedback_recorder,
            trainer,
            metrics,
            origin,
        },
        feedback_tool: Some(settings.feedback.tool_name.clone()).filter(|n| !n.is_empty()),
        served,
        parked: Parked::default(),
        api_writes: tokio::sync::Mutex::new(()),
        client_keys,
        holders,
        refreshes_asked: Default::default(),
    });
    let (served, pool) = (gateway.served.clone(), gateway.pool.clone());
    if let Err(err) = web::block(move || served.reload(&pool)).await? {
        log::error!("deployed prompt versions not loaded: {err}");
    }
    // Sessions shared with the other gateways: this one is alive while it renews its presence.
    let every = match settings.database.sync_interval_ms {
        0 => Duration::from_secs(1),
        ms => Duration::from_millis(ms),
    };
    crate::transport::forward::keep_presence(&gateway, every).await;
    // The connectors and virtual servers registered through the API, by any process.
    let mut follower = crate::sync::Follower::default();
    follower.follow(&gateway).await;
    if settings.database.sync_interval_ms > 0 {
        let interval = Duration::from_millis(settings.database.sync_interval_ms);
        crate::sync::start(&gateway, follower, interval);
    }
    Ok((gateway, recorder_task))
}

/// Resolves every `${VAR}` template of a list setting, naming the key on failure.
fn resolve_all(templates: &[String], key: &str) -> anyhow::Result<Vec<secrecy::SecretString>> {
    templates
        .iter()
        .map(|t| secrets::resolve(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("invalid setting `{key}`: {e}"))
}

/// One line per request: peer, method, path (never the query, which may hold a session id),
/// status, bytes, milliseconds.
fn access_log() -> Logger {
    Logger::new("%a \"%{method}xi %U\" %s %b %Dms")
        .custom_request_replace("method", |req| req.method().to_string())
}
