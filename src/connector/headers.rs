//! What a connector sends and what it shows of itself: its headers and credentials with their
//! `${VAR}` references resolved and checked to be sendable, the header pairs its clients send,
//! and the redacted view of its settings (header and variable names, URLs without user
//! information or query values) for the ops API, logs and metrics.

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::settings::{ConnectorSettings, Credentials};

impl ConnectorSettings {
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
pub(super) const NOT_A_HEADER_VALUE: &str =
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
