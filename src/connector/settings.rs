//! One connector's settings, as written in `connectors.yaml`, and their validation.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// How the gateway talks to a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// The REST contract of `docs/connector-contract.md`.
    #[default]
    Http,
}

/// One backend.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Namespace of its tools, prompts and resources.
    pub name: String,
    /// How to talk to it.
    #[serde(default)]
    pub kind: ConnectorKind,
    /// Base URL.
    pub url: String,
    /// Deadline of one request to it.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Headers sent with every request; values may hold `${VAR}` references.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How often its lists are reloaded.
    #[serde(default = "default_refresh_interval_ms")]
    pub refresh_interval_ms: u64,
    /// Largest response body accepted from it.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_refresh_interval_ms() -> u64 {
    30_000
}

fn default_max_response_bytes() -> usize {
    16 * 1024 * 1024
}

/// Header values may be secrets: they are never printed.
impl fmt::Debug for ConnectorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("timeout_ms", &self.timeout_ms)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("refresh_interval_ms", &self.refresh_interval_ms)
            .finish()
    }
}

impl ConnectorSettings {
    /// The deadline of one request.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// How often the lists are reloaded.
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_millis(self.refresh_interval_ms)
    }

    /// Checks the values; on failure names the field (relative to the connector) and the problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, problem: &str| Err((field.to_string(), problem.to_string()));
        let name_ok = (1..=32).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return fail("name", "must be 1-32 characters of [A-Za-z0-9_-]");
        }
        match url::Url::parse(&self.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return fail("url", "must be an http:// or https:// URL"),
        }
        if self.timeout_ms == 0 {
            return fail("timeout_ms", "must be above 0");
        }
        if self.refresh_interval_ms < 100 {
            return fail("refresh_interval_ms", "must be at least 100");
        }
        for name in self.headers.keys() {
            if actix_web::http::header::HeaderName::try_from(name.as_str()).is_err() {
                return fail(&format!("headers.{name}"), "is not a valid header name");
            }
        }
        Ok(())
    }

    /// Resolves the `${VAR}` references of the headers. The error names the header and the
    /// variable, never a value.
    pub fn resolve_headers(&self) -> Result<Vec<(String, SecretString)>, String> {
        self.headers
            .iter()
            .map(|(name, template)| {
                crate::secrets::resolve(template)
                    .map(|value| (name.clone(), value))
                    .map_err(|e| format!("connector `{}` header `{name}`: {e}", self.name))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(name: &str, url: &str) -> ConnectorSettings {
        serde_json::from_value(serde_json::json!({"name": name, "url": url})).unwrap()
    }

    #[test]
    fn a_plain_http_connector_is_valid_with_defaults() {
        let s = settings("github", "http://127.0.0.1:8081");
        assert!(s.validate().is_ok());
        assert_eq!(s.timeout_ms, 10_000);
        assert_eq!(s.kind, ConnectorKind::Http);
    }

    #[test]
    fn a_name_with_a_colon_is_rejected_by_field() {
        let err = settings("a:b", "http://x").validate().unwrap_err();
        assert_eq!(err.0, "name");
    }

    #[test]
    fn a_url_without_http_scheme_is_rejected() {
        let err = settings("a", "ftp://x").validate().unwrap_err();
        assert_eq!(err.0, "url");
    }

    #[test]
    fn debug_output_never_shows_header_values() {
        let mut s = settings("a", "http://x");
        s.headers
            .insert("Authorization".into(), "Bearer literal-secret".into());
        let printed = format!("{s:?}");
        assert!(printed.contains("Authorization"));
        assert!(!printed.contains("literal-secret"));
    }
}
