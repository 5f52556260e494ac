//! Prometheus metrics: one registry per gateway (not the process-global one, so that tests and
//! embedded gateways do not mix), rendered as text on `GET /metrics`.
//!
//! Counters and histograms are updated where things happen (tool calls in `mcp::tools`, cache
//! lookups in list handlers and connectors, feedback where it is handed on, training runs in
//! the trainer); gauges that mirror state (breakers, sessions, recorders, operators' versions
//! that hide a release) are set when their owner reports or at scrape time. Labels never carry
//! secrets, arguments, session ids or target names.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Tool calls by connector, tool and outcome (`ok`, `tool_error`, `error`).
    pub tool_calls: IntCounterVec,
    /// Tool calls that got no tool result, by connector, tool and kind.
    pub tool_call_errors: IntCounterVec,
    /// Tool call latency by connector and tool.
    pub tool_call_seconds: HistogramVec,
    /// Cache lookups by cache and result (`hit`, `miss`).
    pub cache_lookups: IntCounterVec,
    /// Calls refused by a connector's rate limit.
    pub rate_limited: IntCounterVec,
    /// Breaker state per connector and replica: 0 closed, 1 half-open, 2 open.
    pub breaker_state: IntGaugeVec,
    /// 1 when the connector's entries are in the catalog.
    pub connector_up: IntGaugeVec,
    /// Connectors started again because their actor was gone (a panic in one of its handlers).
    pub connector_restarts: IntCounterVec,
    /// Client sessions open.
    pub sessions_open: IntGauge,
    /// New client sessions refused because `server.max_sessions` were open, by transport.
    pub sessions_refused: IntCounterVec,
    /// Idle sessions ended to make room for new ones (`server.evict_idle_after_ms`).
    pub sessions_evicted: IntCounter,
    /// Requests for a session another gateway holds, by outcome (`forwarded`,
    /// `holder_unreachable`).
    pub sessions_forwarded: IntCounterVec,
    /// Connectors and virtual servers registered through the API and applied from the store
    /// (at start-up, or after another gateway changed them), by kind and step.
    pub registrations_applied: IntCounterVec,
    /// 1 when this gateway's trainer starts runs by itself (its triggers are on, and it holds
    /// the trainer lease or takes none).
    pub trainer_leading: IntGauge,
    /// Deployed versions this gateway's trainer watches (rolls back when their live results
    /// breach their thresholds).
    pub versions_watched: IntGauge,
    /// Call records dropped because the recorder's buffer was full.
    pub call_records_dropped: IntGauge,
    /// Call records written to the store.
    pub call_records_written: IntGauge,
    /// Feedback, given or recorded automatically, by kind of target and signal.
    pub feedback: IntCounterVec,
    /// Feedback that other gateways on the store recorded, taken into this gateway's trainer,
    /// by kind of target.
    pub feedback_from_others: IntCounterVec,
    /// Feedback records dropped because the recorder's buffer was full.
    pub feedback_records_dropped: IntGauge,
    /// Feedback records written to the store.
    pub feedback_records_written: IntGauge,
    /// Rows deleted past their keep, by table (`tool_calls`, `feedback`).
    pub records_pruned: IntCounterVec,
    /// Training runs recorded, by kind of target, approach and outcome (a deploy, a rejection,
    /// a live experiment's start and end, a rollback, a skip).
    pub training_runs: IntCounterVec,
    /// Calls the trainer made to its LLM, by kind of target.
    pub trainer_llm_calls: IntCounterVec,
    /// Operators' production versions still served over a backend's release that changed the
    /// text they were written over, by kind of target.
    pub versions_hiding_release: IntGaugeVec,
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("unique metric");
            metric
        };
        let tool_calls = counter(
            "mcpgate_tool_calls_total",
            "Tool calls by outcome.",
            &["connector", "tool", "outcome"],
        );
        let tool_call_errors = counter(
            "mcpgate_tool_call_errors_total",
            "Tool calls that got no tool result, by kind.",
            &["connector", "tool", "kind"],
        );
        let cache_lookups = counter(
            "mcpgate_cache_lookups_total",
            "Cache lookups by result.",
            &["cache", "result"],
        );
        let feedback = counter(
            "mcpgate_feedback_total",
            "Feedback, given or recorded automatically, by signal.",
            &["kind", "signal"],
        );
        let feedback_from_others = counter(
            "mcpgate_feedback_from_others_total",
            "Feedback that other gateways on the store recorded, taken into this gateway's trainer.",
            &["kind"],
        );
        let training_runs = counter(
            "mcpgate_training_runs_total",
            "Training runs recorded, by approach and outcome.",
            &["kind", "approach", "outcome"],
        );
        let trainer_llm_calls = counter(
            "mcpgate_trainer_llm_calls_total",
            "Calls the trainer made to its LLM.",
            &["kind"],
        );
        let records_pruned = counter(
            "mcpgate_records_pruned_total",
            "Records deleted past their keep: calls, signals (the gateway's own feedback) or ratings (clients' feedback).",
            &["records"],
        );
        let sessions_refused = counter(
            "mcpgate_sessions_refused_total",
            "New client sessions refused because server.max_sessions were open, by transport.",
            &["transport"],
        );
        let sessions_evicted = IntCounter::new(
            "mcpgate_sessions_evicted_total",
            "Idle Streamable HTTP sessions ended to make room for new ones (server.evict_idle_after_ms).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(sessions_evicted.clone()))
            .expect("unique metric");
        let sessions_forwarded = counter(
            "mcpgate_sessions_forwarded_total",
            "Requests for a session another gateway on the store holds, by outcome (forwarded, holder_unreachable).",
            &["outcome"],
        );
        let registrations_applied = counter(
            "mcpgate_registrations_applied_total",
            "API registrations applied from the store, by kind (connector, server) and step (added, changed, removed, failed).",
            &["kind", "step"],
        );
        let rate_limited = counter(
            "mcpgate_rate_limited_total",
            "Calls refused by a connector's rate limit.",
            &["connector"],
        );
        let connector_restarts = counter(
            "mcpgate_connector_restarts_total",
            "Connectors started again because their actor was gone (a panic in one of its handlers).",
            &["connector"],
        );
        let buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let tool_call_seconds = HistogramVec::new(
            HistogramOpts::new("mcpgate_tool_call_duration_seconds", "Tool call latency.")
                .buckets(buckets),
            &["connector", "tool"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(tool_call_seconds.clone()))
            .expect("unique metric");
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("unique metric");
            metric
        };
        let breaker_state = gauge_vec(
            "mcpgate_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            &["connector", "replica"],
        );
        let connector_up = gauge_vec(
            "mcpgate_connector_up",
            "1 when the connector's entries are in the catalog.",
            &["connector"],
        );
        let gauge = |name: &str, help: &str| {
            let metric = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("unique metric");
            metric
        };
        let versions_hiding_release = gauge_vec(
            "mcpgate_versions_hiding_release",
            "Operators' production versions served over a backend's release that changed the text they were written over.",
            &["kind"],
        );
        let sessions_open = gauge("mcpgate_sessions_open", "Client sessions open.");
        let trainer_leading = gauge(
            "mcpgate_trainer_leading",
            "1 when this gateway's trainer starts runs by itself (triggers on; it holds the trainer lease or takes none).",
        );
        let versions_watched = gauge(
            "mcpgate_versions_watched",
            "Deployed versions this gateway's trainer watches, to roll back on live results.",
        );
        let call_records_dropped = gauge(
            "mcpgate_call_records_dropped_total",
            "Call records dropped because the recorder's buffer was full.",
        );
        let call_records_written = gauge(
            "mcpgate_call_records_written_total",
            "Call records written to the store.",
        );
        let feedback_records_dropped = gauge(
            "mcpgate_feedback_records_dropped_total",
            "Feedback records dropped because the recorder's buffer was full.",
        );
        let feedback_records_written = gauge(
            "mcpgate_feedback_records_written_total",
            "Feedback records written to the store.",
        );
        Metrics {
            registry,
            tool_calls,
            tool_call_errors,
            tool_call_seconds,
            cache_lookups,
            rate_limited,
            breaker_state,
            connector_up,
            connector_restarts,
            sessions_open,
            sessions_refused,
            sessions_evicted,
            sessions_forwarded,
            registrations_applied,
            trainer_leading,
            versions_watched,
            call_records_dropped,
            call_records_written,
            feedback,
            feedback_from_others,
            feedback_records_dropped,
            feedback_records_written,
            records_pruned,
            training_runs,
            trainer_llm_calls,
            versions_hiding_release,
        }
    }

    /// Counts a recorded training run of a `kind` of target, and the LLM calls it made.
    pub fn training_run(&self, kind: &str, approach: &str, outcome: &str, llm_calls: i32) {
        let runs = self
            .training_runs
            .with_label_values(&[kind, approach, outcome]);
        runs.inc();
        let calls = u64::try_from(llm_calls).unwrap_or_default();
        if calls > 0 {
            self.trainer_llm_calls
                .with_label_values(&[kind])
                .inc_by(calls);
        }
    }

    /// Counts a lookup in `cache`.
    pub fn cache_lookup(&self, cache: &str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache_lookups.with_label_values(&[cache, result]).inc();
    }

    /// Forgets the gauges of a removed connector and its replicas.
    pub fn forget_connector<'a>(&self, connector: &str, replicas: impl Iterator<Item = &'a str>) {
        let _ = self.connector_up.remove_label_values(&[connector]);
        for replica in replicas {
            let _ = self
                .breaker_state
                .remove_label_values(&[connector, replica]);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
