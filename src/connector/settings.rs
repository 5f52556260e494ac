//! One connector's settings, as written in `connectors.yaml` or posted to the ops API, and their
//! validation. Values that may be secrets (header values, credentials) are never printed; what
//! is sent and shown of them is [`super::headers`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::breaker::BreakerSettings;
use super::headers::{header_value_ok, redact_url, NOT_A_HEADER_VALUE};
use super::rate_limit::RateLimitSettings;

/// How the gateway talks to a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// The REST contract of `docs/connector-contract.md`.
    #[default]
    Http,
    /// A remote MCP server over Streamable HTTP or legacy SSE.
    Mcp,
    /// An MCP server process that the gateway spawns.
    Stdio,
}

/// How a replica is chosen for each request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// In turn.
    #[default]
    RoundRobin,
    /// The one with the fewest requests under way.
    LeastInflight,
}

/// Credentials sent to the backend; every value may hold `${VAR}` references.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Credentials {
    /// `Authorization: Bearer TOKEN`.
    Bearer {
        /// The token.
        token: String,
    },
    /// `Authorization: Basic base64(USERNAME:PASSWORD)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// Any header.
    Header {
        /// The header name.
        name: String,
        /// The header value.
        value: String,
    },
}

/// Retries of safe requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled per attempt, with jitter.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts.
    pub max_backoff_ms: u64,
    /// All attempts together end within this.
    pub deadline_ms: u64,
    /// Retry tool calls even when the tool declares neither `readOnlyHint` nor `idempotentHint`.
    pub tool_calls: bool,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 2_000,
            deadline_ms: 15_000,
            tool_calls: false,
        }
    }
}

/// How long what the backend listed is reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// `GET /info`.
    pub info_ttl_ms: u64,
    /// `GET /tools`.
    pub tools_ttl_ms: u64,
    /// `GET /resources` (resource metadata).
    pub resources_ttl_ms: u64,
    /// `GET /prompts`.
    pub prompts_ttl_ms: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            info_ttl_ms: 3_600_000,
            tools_ttl_ms: 300_000,
            resources_ttl_ms: 60_000,
            prompts_ttl_ms: 300_000,
        }
    }
}

/// One backend.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Namespace of its tools, prompts and resources.
    pub name: String,
    /// How to talk to it.
    #[serde(default)]
    pub kind: ConnectorKind,
    /// Base URL (one replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Base URLs (several replicas).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// How a replica is chosen.
    #[serde(default)]
    pub balance: Balance,
    /// `mcp`: `auto` (Streamable HTTP, falling back to SSE), `streamable_http` or `sse`.
    #[serde(default)]
    pub transport: crate::upstream::Mode,
    /// `stdio`: the program to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `stdio`: its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// `stdio`: extra environment; values may hold `${VAR}` references.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `stdio`: the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `stdio`: end the process after this long without client requests (0: never); the next
    /// request starts it again.
    #[serde(default)]
    pub idle_timeout_ms: u64,
    /// Deadline of one request to it.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Headers sent with every request; values may hold `${VAR}` references.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Credentials sent with every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Credentials>,
    /// How often each replica is probed and the tool list reloaded.
    #[serde(default = "default_health_check_interval_ms")]
    pub health_check_interval_ms: u64,
    /// Deadline of one health probe.
    #[serde(default = "default_health_check_timeout_ms")]
    pub health_check_timeout_ms: u64,
    /// Failed health checks in a row after which the actor restarts with a fresh client (0: never).
    #[serde(default = "default_restart_after_failed_checks")]
    pub restart_after_failed_checks: u32,
    /// Circuit breaker thresholds, per replica.
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// Retries of safe requests.
    #[serde(default)]
    pub retry: RetrySettings,
    /// How long lists are reused.
    #[serde(default)]
    pub cache: CacheSettings,
    /// Calls per second allowed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSettings>,
    /// Largest response body accepted from it.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_health_check_interval_ms() -> u64 {
    30_000
}

fn default_health_check_timeout_ms() -> u64 {
    5_000
}

fn default_restart_after_failed_checks() -> u32 {
    10
}

fn default_max_response_bytes() -> usize {
    16 * 1024 * 1024
}

/// Header values and credentials may be secrets: they are never printed.
impl fmt::Debug for ConnectorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field(
                "urls",
                &self
                    .urls()
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("timeout_ms", &self.timeout_ms)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("auth", &self.auth.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl ConnectorSettings {
    /// Every replica's base URL, without a trailing slash.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .iter()
            .chain(&self.urls)
            .map(|u| u.trim_end_matches('/').to_string())
            .collect()
    }

    /// The deadline of one request.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks the values; returns every problem as (field relative to the connector, problem).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut fail = |field: &str, problem: &str| {
            problems.push((field.to_string(), problem.to_string()));
        };
        let name_ok = (1..=32).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            fail("name", "must be 1-32 characters of [A-Za-z0-9_-]");
        }
        let stdio = self.kind == ConnectorKind::Stdio;
        match (&self.url, self.urls.is_empty(), stdio) {
            (None, true, false) => fail("url", "is required (or `urls` for replicas)"),
            (Some(_), false, false) => fail("urls", "give either `url` or `urls`, not both"),
            (Some(_), _, true) | (_, false, true) => fail("url", "a stdio connector has no URL"),
            _ => {}
        }
        if stdio && self.command.as_deref().is_none_or(str::is_empty) {
            fail("command", "is required for a stdio connector");
        }
        if !stdio && self.command.is_some() {
            fail("command", "is only for stdio connectors");
        }
        let only_stdio = [
            ("args", !self.args.is_empty()),
            ("env", !self.env.is_empty()),
            ("cwd", self.cwd.is_some()),
            ("idle_timeout_ms", self.idle_timeout_ms != 0),
        ];
        for (field, given) in only_stdio {
            if !stdio && given {
                fail(field, "is only for stdio connectors");
            }
        }
        for (i, url) in self.url.iter().chain(&self.urls).enumerate() {
            let field = if self.url.is_some() {
                "url".to_string()
            } else {
                format!("urls[{i}]")
            };
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => fail(&field, "must be an http:// or https:// URL"),
            }
        }
        let urls = self.urls();
        for (i, url) in urls.iter().enumerate() {
            if let Some(first) = urls[..i].iter().position(|u| u == url) {
                fail(&format!("urls[{i}]"), &format!("repeats urls[{first}]"));
            }
        }
        for (field, value) in [
            ("timeout_ms", self.timeout_ms),
            ("health_check_interval_ms", self.health_check_interval_ms),
            ("health_check_timeout_ms", self.health_check_timeout_ms),
            ("breaker.open_ms", self.breaker.open_ms),
            ("breaker.window_ms", self.breaker.window_ms),
        ] {
            if value == 0 {
                fail(field, "must be above 0");
            }
        }
        if self.max_response_bytes == 0 {
            fail("max_response_bytes", "must be above 0");
        }
        if self.breaker.consecutive_failures == 0 {
            fail("breaker.consecutive_failures", "must be above 0");
        }
        if !(0.0..=1.0).contains(&self.breaker.error_rate) {
            fail("breaker.error_rate", "must be between 0 and 1");
        }
        if self.retry.attempts == 0 {
            fail("retry.attempts", "must be at least 1");
        }
        if let Some(limit) = &self.rate_limit {
            if !limit.rate_per_sec.is_finite() || limit.rate_per_sec <= 0.0 {
                fail("rate_limit.rate_per_sec", "must be a number above 0");
            }
            if limit.burst == 0 {
                fail("rate_limit.burst", "must be at least 1");
            }
        }
        for (name, value) in &self.headers {
            if actix_web::http::header::HeaderName::try_from(name.as_str()).is_err() {
                fail(&format!("headers.{name}"), "is not a valid header name");
            } else if !header_value_ok(value) {
                fail(&format!("headers.{name}"), NOT_A_HEADER_VALUE);
            }
        }
        let templates = self
            .headers
            .iter()
            .map(|(n, v)| (format!("headers.{n}"), v));
        let templates = templates.chain(self.env.iter().map(|(n, v)| (format!("env.{n}"), v)));
        let auth: Vec<(String, &String)> = match &self.auth {
            Some(Credentials::Header { value, .. }) => vec![("auth.value".into(), value)],
            Some(Credentials::Bearer { token }) => vec![("auth.token".into(), token)],
            Some(Credentials::Basic { username, password }) => vec![
                ("auth.username".into(), username),
                ("auth.password".into(), password),
            ],
            None => Vec::new(),
        };
        for (field, template) in templates.chain(auth) {
            if crate::secrets::unclosed(template) {
                fail(&field, "has a `${` with no closing `}`");
            }
        }
        let auth_header = match &self.auth {
            Some(Credentials::Header { name, .. }) => Some(name.as_str()),
            Some(_) => Some("authorization"),
            None => None,
        };
        let clash = |h: &str| self.headers.keys().find(|n| n.eq_ignore_ascii_case(h));
        if let Some(header) = auth_header.and_then(clash) {
            fail(
                &format!("headers.{header}"),
                "is also set by `auth`; give it in one place",
            );
        }
        match &self.auth {
            Some(Credentials::Header { name, value }) => {
                if actix_web::http::header::HeaderName::try_from(name.as_str()).is_err() {
                    fail("auth.name", "is not a valid header name");
                }
                if !header_value_ok(value) {
                    fail("auth.value", NOT_A_HEADER_VALUE);
                }
            }
            Some(Credentials::Bearer { token }) if !header_value_ok(token) => {
                fail("auth.token", NOT_A_HEADER_VALUE);
            }
            _ => {}
        }
        problems
    }

    /// The first problem, if any.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(value: serde_json::Value) -> ConnectorSettings {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_plain_http_connector_is_valid_with_defaults() {
        let s = settings(serde_json::json!({"name": "github", "url": "http://127.0.0.1:8081/"}));
        assert!(s.validate().is_ok());
        assert_eq!(s.timeout_ms, 10_000);
        assert_eq!(s.urls(), ["http://127.0.0.1:8081"]);
        assert_eq!(s.cache.tools_ttl_ms, 300_000);
    }

    #[test]
    fn every_problem_is_named_by_field() {
        let s = settings(
            serde_json::json!({"name": "a:b", "urls": ["ftp://x", "http://ok"],
            "timeout_ms": 0}),
        );
        let fields: Vec<_> = s.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["name", "urls[0]", "timeout_ms"]);
    }

    #[test]
    fn a_connector_needs_exactly_one_of_url_and_urls() {
        let none = settings(serde_json::json!({"name": "a"}));
        let both =
            settings(serde_json::json!({"name": "a", "url": "http://x", "urls": ["http://y"]}));
        assert_eq!(none.validate().unwrap_err().0, "url");
        assert_eq!(both.validate().unwrap_err().0, "urls");
    }

    #[test]
    fn a_replica_given_twice_is_named() {
        let s = settings(serde_json::json!({"name": "a",
            "urls": ["http://h:1", "http://h:2", "http://h:1/"]}));
        assert_eq!(
            s.validate().unwrap_err(),
            ("urls[2]".to_string(), "repeats urls[0]".to_string())
        );
    }

    #[test]
    fn settings_that_would_be_ignored_or_sent_literally_are_named() {
        let s = settings(serde_json::json!({"name": "a", "url": "http://x",
            "env": {"K": "v"}, "idle_timeout_ms": 5, "max_response_bytes": 0,
            "headers": {"X-Key": "${UNCLOSED", "authorization": "Basic x"},
            "auth": {"type": "bearer", "token": "t"}}));
        let mut fields: Vec<_> = s.problems().into_iter().map(|(f, _)| f).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "env",
                "headers.X-Key",
                "headers.authorization",
                "idle_timeout_ms",
                "max_response_bytes"
            ]
        );
    }
}
