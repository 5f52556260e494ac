//! Settings: what the operator can change, loaded in layers and checked before anything starts.
//!
//! Layers, later ones winning: `DIR/default.yaml` → `DIR/$MCPGATE_ENV.yaml` (optional) →
//! `DIR/connectors.yaml` (optional) → `MCPGATE__SECTION__KEY` environment variables. `DIR` is
//! `config/` unless `--config DIR` says otherwise. This module owns parsing and validation only;
//! resolving `${VAR}` references in secret values happens in [`crate::secrets`].

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::connector::ConnectorSettings;

mod validate;

/// Everything the gateway reads from its settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The client-facing HTTP server.
    pub server: ServerSettings,
    /// The store: call records, feedback, prompt versions, training runs.
    pub database: DatabaseSettings,
    /// The batch writer that takes call records off the request path.
    pub recorder: RecorderSettings,
    /// What the gateway says and does as an MCP server.
    pub mcp: McpSettings,
    /// The ops API.
    pub admin: AdminSettings,
    /// Feedback collection.
    pub feedback: FeedbackSettings,
    /// Prompt training.
    pub trainer: TrainerSettings,
    /// The backends, usually from `connectors.yaml`.
    #[serde(default)]
    pub connectors: Vec<ConnectorSettings>,
    /// Virtual servers: named subsets of the catalog.
    #[serde(default)]
    pub servers: Vec<crate::mcp::scope::VirtualServer>,
}

/// The client-facing HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind; loopback unless the operator opens it up.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Largest request body accepted, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Host names accepted in `Host` besides localhost, 127.0.0.1 and ::1; `*` accepts any.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted besides those of the allowed hosts; `*` accepts any.
    pub allowed_origins: Vec<String>,
    /// Interval of keep-alive comments on idle event streams.
    pub keep_alive_ms: u64,
    /// A Streamable HTTP session with no traffic and no open stream for this long is ended.
    pub session_idle_timeout_ms: u64,
    /// An idle HTTP connection is closed after this long (0: at once after each response).
    pub http_keep_alive_ms: u64,
    /// A connection whose request head has not been read this long after it opened gets 408
    /// and is closed (0: no limit).
    pub request_head_timeout_ms: u64,
    /// A request whose body has not all arrived this long after its head gets 408 and its
    /// connection is closed (0: no limit).
    pub request_body_timeout_ms: u64,
    /// Client sessions open at most (Streamable HTTP and legacy SSE together); a new one past
    /// it is refused with 503, unless it can take the place of an idle one.
    pub max_sessions: usize,
    /// With `max_sessions` open, a new session takes the place of the Streamable HTTP session
    /// idle the longest (no traffic, no stream) if it has been idle this long; 0 never.
    pub evict_idle_after_ms: u64,
    /// Sessions one client may hold open (0: no limit); past it, a new one takes the place of
    /// that client's session idle the longest by the same rule, or is refused with 429. A client
    /// is its bearer token, or its address when it sends none.
    pub max_sessions_per_client: usize,
    /// With several gateways on one PostgreSQL store: the URL at which the other gateways
    /// reach this one (e.g. `http://10.0.0.5:8080`), to forward it the requests of the sessions
    /// it holds, and the retries of the stateless requests it parked; empty: nothing is shared,
    /// and a request for a session another gateway holds gets 404.
    pub advertise_url: String,
    /// Proxies (IP addresses or CIDR blocks, e.g. a load balancer's) whose `X-Forwarded-For`
    /// names the client: a client without a bearer token is then told apart by the address
    /// they name; empty: by the connection's peer address only.
    pub trusted_proxies: Vec<String>,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Client authentication for the MCP endpoints.
    pub auth: AuthSettings,
}

/// Client authentication for the MCP endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted bearer tokens, each a literal or a `${VAR}` reference; empty means no auth.
    pub bearer_tokens: Vec<String>,
}

/// Feedback collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackSettings {
    /// Name of the built-in MCP tool that clients call to rate what they got; empty: no tool.
    pub tool_name: String,
    /// How far back the trainer's live figures look.
    pub window_ms: u64,
}

/// Prompt training.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerSettings {
    /// Whether triggers start runs on their own (the API can always start one).
    pub enabled: bool,
    /// How often triggers and deployed versions are checked.
    pub check_interval_ms: u64,
    /// Uses in the window before a target's figures count.
    pub min_volume: usize,
    /// An error rate at or over this triggers a run.
    pub error_rate_threshold: f64,
    /// A mean rating (0-1) under this triggers a run, once `min_ratings` ratings are in.
    pub rating_threshold: f64,
    /// Ratings needed before the mean rating counts.
    pub min_ratings: usize,
    /// No new run for a target this long after its last one.
    pub cooldown_ms: u64,
    /// The improvement's lower confidence bound must be above this to deploy.
    pub margin: f64,
    /// A deployed version whose live error rate passes its predecessor's by this is rolled back.
    pub rollback_margin: f64,
    /// Whether a deploy through the API is evaluated like a candidate against the version it
    /// replaced, and rolled back when it fails a check or tests worse.
    pub check_manual_deploys: bool,
    /// Share of new sessions that take part in a live experiment (the rest get production).
    pub canary_share: f64,
    /// Whether few-shot examples quote argument values; otherwise only their shape.
    pub example_values: bool,
    /// Whether thin descriptions of tools that never had a call are rewritten by the LLM when
    /// no trigger fires and the budget allows.
    pub rewrite_uncalled: bool,
    /// With several gateways on one store, only the one holding the store's trainer lease
    /// starts runs by itself; a lease taken or renewed holds this long (0: no lease, every
    /// gateway's trainer starts runs).
    pub lease_ms: u64,
    /// The optimizer LLM (any OpenAI-compatible chat-completions endpoint).
    pub llm: LlmSettings,
}

/// The optimizer LLM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// `https://…/v1`; empty: no LLM (the meta-prompt approach is disabled).
    pub base_url: String,
    /// The model.
    pub model: String,
    /// The environment variable holding the API key; empty: none sent.
    pub api_key_env: String,
    /// Deadline of one call.
    pub timeout_ms: u64,
    /// Calls allowed per training run.
    pub max_calls_per_run: u32,
    /// Calls allowed in any 24 hours, all runs together (0: no limit); when spent, runs use
    /// the approaches that need no LLM.
    pub max_calls_per_day: u32,
}

/// The ops API under `/api/v1`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Accepted bearer tokens, each a literal or a `${VAR}` reference; empty means no auth.
    pub tokens: Vec<String>,
}

/// The store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` for PostgreSQL, `sqlite://PATH` (or a bare path) for SQLite.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// How long to wait for a pooled connection.
    pub connect_timeout_ms: u64,
    /// Apply the embedded migrations at start-up.
    pub migrate_on_start: bool,
    /// How often to look in the store for production versions that other processes on it
    /// deployed or rolled back; 0 never (one process alone).
    pub sync_interval_ms: u64,
}

/// The batch writer for call records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderSettings {
    /// Records held in memory at most while the store is slow or away; past it new ones are
    /// dropped and counted.
    pub buffer_size: usize,
    /// Records written in one statement at most.
    pub batch_size: usize,
    /// A partial batch is written after this long.
    pub flush_interval_ms: u64,
    /// Longest wait between retries while the store is away.
    pub max_retry_interval_ms: u64,
    /// Call records older than this are deleted; 0 keeps them for ever.
    pub keep_calls_ms: u64,
    /// The gateway's own feedback signals (one per tool call and prompt fetch) older than this
    /// are deleted; 0 keeps them for ever.
    pub keep_signals_ms: u64,
    /// Clients' feedback (ratings, suggestions, reported errors) older than this is deleted; 0
    /// keeps it for ever.
    pub keep_ratings_ms: u64,
    /// How often the records past their keep are deleted.
    pub prune_interval_ms: u64,
}

/// What the gateway says and does as an MCP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSettings {
    /// `serverInfo.name` in `initialize`.
    pub server_name: String,
    /// Optional `instructions` in `initialize`.
    pub instructions: Option<String>,
    /// Items per page of `tools/list`, `resources/list`, `prompts/list`.
    pub page_size: usize,
    /// Joins connector and tool or prompt names (`github` + `search` → `github_search`).
    pub name_separator: String,
    /// Longest time a request may take before the client gets an error.
    pub request_timeout_ms: u64,
    /// Longest time a list request waits for connectors' first load after start-up.
    pub first_load_wait_ms: u64,
    /// How long a client of the 2026-07-28 revision may reuse a list or `server/discover`
    /// (their `ttlMs`); 0: not at all.
    pub list_ttl_ms: u64,
}

impl ServerSettings {
    /// The keep-alive interval of event streams.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_millis(self.keep_alive_ms)
    }

    /// How long an idle Streamable HTTP session lives.
    pub fn session_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.session_idle_timeout_ms)
    }

    /// How long a session must have been idle to be ended for room; `None` for never.
    pub fn evict_idle_after(&self) -> Option<Duration> {
        (self.evict_idle_after_ms > 0).then(|| Duration::from_millis(self.evict_idle_after_ms))
    }
}

impl DatabaseSettings {
    /// How long to wait for a pooled connection.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl RecorderSettings {
    /// How long a partial batch waits.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// Longest wait between retries.
    pub fn max_retry_interval(&self) -> Duration {
        Duration::from_millis(self.max_retry_interval_ms)
    }

    /// How often the records past their keep are deleted.
    pub fn prune_interval(&self) -> Duration {
        Duration::from_millis(self.prune_interval_ms)
    }
}

impl McpSettings {
    /// The deadline of one client request.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// How long a list request waits for connectors' first load.
    pub fn first_load_wait(&self) -> Duration {
        Duration::from_millis(self.first_load_wait_ms)
    }
}

/// A setting that cannot be used, named by its key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A file could not be read or a value has the wrong type.
    #[error("invalid settings: {0}")]
    Load(#[from] config::ConfigError),
    /// A value has the right type but cannot be used.
    #[error("invalid setting `{key}`: {problem}")]
    Invalid {
        /// The dotted key, such as `connectors[1].url`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl Settings {
    /// Loads the layers from `dir` and validates the result.
    pub fn load(dir: &Path) -> Result<Settings, SettingsError> {
        let env = std::env::var("MCPGATE_ENV").ok();
        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("default.yaml")).required(true));
        if let Some(env) = env.filter(|e| !e.is_empty()) {
            builder = builder.add_source(config::File::from(dir.join(format!("{env}.yaml"))));
        }
        let settings: Settings = builder
            .add_source(config::File::from(dir.join("connectors.yaml")).required(false))
            .add_source(
                config::Environment::with_prefix("MCPGATE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.allowed_hosts")
                    .with_list_parse_key("server.allowed_origins")
                    .with_list_parse_key("server.auth.bearer_tokens")
                    .with_list_parse_key("admin.tokens"),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }
}
