//! One connector's settings, as written in `connectors.yaml` or posted to the ops API, and their
//! validation. Values that may be secrets (header values, credentials) are never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::breaker::BreakerSettings;
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

    /// The headers and credentials with `${VAR}` references resolved. The error names the header
    /// and the variable, never a value.
    pub fn resolve_headers(&self) -> Result<Vec<(String, SecretString)>, String> {
        let resolve = |what: &str, template: &str| {
            crate::secrets::resolve(template)
                .map_err(|e| format!("connector `{}` {what}: {e}", self.name))
        };
        let mut headers = Vec::new();
        for (name, template) in &self.headers {
            headers.push((
                name.clone(),
                resolve(&format!("header `{name}`"), template)?,
            ));
        }
        match &self.auth {
            None => {}
            Some(Credentials::Bearer { token }) => {
                let token = resolve("auth.token", token)?;
                let value = format!("Bearer {}", token.expose_secret());
                headers.push(("authorization".into(), value.into()));
            }
            Some(Credentials::Basic { username, password }) => {
                let username = resolve("auth.username", username)?;
                let password = resolve("auth.password", password)?;
                let pair = format!("{}:{}", username.expose_secret(), password.expose_secret());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                headers.push(("authorization".into(), format!("Basic {encoded}").into()));
            }
            Some(Credentials::Header { name, value }) => {
                headers.push((name.clone(), resolve("auth.value", value)?));
            }
        }
        // A variable's value may hold what a header cannot carry.
        if let Some((name, _)) = headers
            .iter()
            .find(|(_, v)| !header_value_ok(v.expose_secret()))
        {
            return Err(format!(
                "connector `{}` header `{name}`: {NOT_A_HEADER_VALUE}",
                self.name
            ));
        }
        Ok(headers)
    }

    /// The settings as JSON for operators: header and environment names only, no credentials,
    /// URLs without user information.
    pub fn redacted(&self) -> serde_json::Value {
        let urls: Vec<String> = self.urls().iter().map(|u| redact_url(u)).collect();
        serde_json::json!({
            "kind": self.kind,
            "urls": urls,
            "command": self.command,
            "args": self.args,
            "env": self.env.keys().collect::<Vec<_>>(),
            "balance": self.balance,
            "timeout_ms": self.timeout_ms,
            "headers": self.headers.keys().collect::<Vec<_>>(),
            "auth": self.auth.as_ref().map(|a| match a {
                Credentials::Bearer { .. } => "bearer",
                Credentials::Basic { .. } => "basic",
                Credentials::Header { .. } => "header",
            }),
            "health_check_interval_ms": self.health_check_interval_ms,
            "breaker": self.breaker,
            "retry": self.retry,
            "cache": self.cache,
            "rate_limit": self.rate_limit,
        })
    }
}

/// `url` without user name and password, and with the values of its query (where tokens
/// are often put) shown as `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed)
            if !parsed.username().is_empty()
                || parsed.password().is_some()
                || parsed.query().is_some() =>
        {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            if parsed.query().is_some() {
                let keys: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
                let mut query = parsed.query_pairs_mut();
                query.clear();
                for key in &keys {
                    query.append_pair(key, "***");
                }
                drop(query);
            }
            let redacted = parsed.to_string();
            match parsed.query() {
                Some(_) => redacted,
                None => redacted.trim_end_matches('/').to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Why a header's value (or its template) is refused.
const NOT_A_HEADER_VALUE: &str =
    "is not a valid header value (control characters such as CR, LF or NUL are not allowed)";

/// Whether `value` can be sent as a header's value.
pub fn header_value_ok(value: &str) -> bool {
    actix_web::http::header::HeaderValue::from_str(value).is_ok()
}

/// A connector's header as a client sends it; none (logged by name, never by value) when it
/// cannot be sent, which validation and [`ConnectorSettings::resolve_headers`] rule out.
pub fn header_pair(
    connector: &str,
    name: &str,
    value: &str,
) -> Option<(
    actix_web::http::header::HeaderName,
    actix_web::http::header::HeaderValue,
)> {
    use actix_web::http::header::{HeaderName, HeaderValue};
    match (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        (Ok(name), Ok(value)) => Some((name, value)),
        _ => {
            log::error!("connector `{connector}`: header `{name}` cannot be sent; it is left out");
            None
        }
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
    fn header_values_with_control_characters_are_refused_by_field_and_after_resolving() {
        let s = settings(serde_json::json!({"name": "a", "url": "http://x",
            "headers": {"X-A": "a\r\nInjected: 1"}, "auth": {"type": "bearer", "token": "a\nb"}}));
        let fields: Vec<String> = s.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["headers.X-A", "auth.token"]);

        let s = settings(serde_json::json!({"name": "a", "url": "http://x",
            "headers": {"X-B": "${MCPGATE_TEST_CRLF_VALUE}"}}));
        std::env::set_var("MCPGATE_TEST_CRLF_VALUE", "ok\r\nInjected: 1");
        let resolved = s.resolve_headers();
        std::env::remove_var("MCPGATE_TEST_CRLF_VALUE");
        assert!(s.problems().is_empty());
        let err = resolved.unwrap_err();
        assert!(
            err.contains("header `X-B`") && !err.contains("Injected"),
            "{err}"
        );
    }

    #[test]
    fn basic_credentials_become_one_authorization_header() {
        let s = settings(serde_json::json!({"name": "a", "url": "http://x",
            "auth": {"type": "basic", "username": "u", "password": "p"}}));
        let headers = s.resolve_headers().unwrap();
        assert_eq!(headers[0].0, "authorization");
        assert_eq!(headers[0].1.expose_secret(), "Basic dTpw");
    }

    #[test]
    fn debug_and_redacted_output_never_show_secrets() {
        let mut s = settings(serde_json::json!({"name": "a",
            "urls": ["http://user:pw-secret@host:1/", "http://host:2/mcp?token=q-secret&v=1"],
            "auth": {"type": "bearer", "token": "tok-secret"}}));
        s.headers.insert("X-Key".into(), "literal-secret".into());
        let printed = format!("{s:?} {}", s.redacted());
        assert!(printed.contains("X-Key"));
        assert!(
            printed.contains("http://host:2/mcp?token=***&v=***"),
            "{printed}"
        );
        assert!(printed.contains("\"http://host:1\""), "{printed}");
        for secret in ["literal-secret", "tok-secret", "pw-secret", "q-secret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
