//! Secrets a backend sends back. A connector's headers, credentials and process environment may
//! hold values taken from `${VAR}` references; a backend that echoes its request (an error page
//! quoting the headers, a debug tool) would otherwise hand them to clients, to the stored
//! feedback the trainer quotes to its LLM, and to the ops API's health view. Every text a
//! connector passes on (results, errors, the reasons its status gives) has each such value
//! written as `***`.

use secrecy::ExposeSecret;
use serde_json::Value;

use super::{ConnectorError, ConnectorSettings, ConnectorStatus, Credentials};

/// Values shorter than this are not looked for: a secret of two characters would turn every
/// pair of them in a backend's text into `***`.
const SHORTEST: usize = 4;

/// What stands for a secret.
const MASK: &str = "***";

/// The secret values of one connector.
#[derive(Default)]
pub struct Redactor {
    /// Longest first, so that a value holding another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// The values `settings` take from the environment: each variable's value, and each whole
    /// header value made with one (such as `Bearer …`, or Basic credentials' encoded pair).
    pub fn new(settings: &ConnectorSettings) -> Redactor {
        let templated = |t: &String| t.contains("${");
        let mut secrets: Vec<String> = Vec::new();
        let mut templates: Vec<&String> = settings.headers.values().collect();
        templates.extend(settings.env.values());
        // The headers whose value is made with a variable, by name.
        let mut headed: Vec<&str> = settings
            .headers
            .iter()
            .filter(|(_, v)| templated(v))
            .map(|(n, _)| n.as_str())
            .collect();
        let (auth_header, auth_templates) = match &settings.auth {
            Some(Credentials::Bearer { token }) => ("authorization", vec![token]),
            Some(Credentials::Basic { username, password }) => {
                ("authorization", vec![username, password])
            }
            Some(Credentials::Header { name, value }) => (name.as_str(), vec![value]),
            None => ("", Vec::new()),
        };
        if auth_templates.iter().any(|t| templated(t)) {
            headed.push(auth_header);
        }
        templates.extend(auth_templates);
        for template in templates.into_iter().filter(|t| templated(t)) {
            secrets.extend(crate::secrets::referenced(template));
        }
        if let Ok(headers) = settings.resolve_headers() {
            for (name, value) in headers {
                if headed.iter().any(|h| h.eq_ignore_ascii_case(&name)) {
                    secrets.push(value.expose_secret().to_string());
                }
            }
        }
        secrets.retain(|s| s.chars().count() >= SHORTEST);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret value masked.
    pub fn text(&self, text: &mut String) {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), MASK);
            }
        }
    }

    /// Every string within `value` masked.
    pub fn value(&self, value: &mut Value) {
        if self.secrets.is_empty() {
            return;
        }
        match value {
            Value::String(text) => self.text(text),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.value(v)),
            _ => {}
        }
    }

    /// A result as the connector passes it on.
    pub fn result(&self, result: Result<Value, ConnectorError>) -> Result<Value, ConnectorError> {
        match result {
            Ok(mut value) => {
                self.value(&mut value);
                Ok(value)
            }
            Err(error) => Err(self.error(error)),
        }
    }

    /// `error` with the backend's words in it masked.
    pub fn error(&self, mut error: ConnectorError) -> ConnectorError {
        if self.secrets.is_empty() {
            return error;
        }
        match &mut error {
            ConnectorError::Unreachable { reason, .. }
            | ConnectorError::BadResponse { reason, .. }
            | ConnectorError::Unavailable { reason, .. } => self.text(reason),
            ConnectorError::Failed { message, .. } | ConnectorError::Rejected { message, .. } => {
                self.text(message)
            }
            ConnectorError::Remote { error, .. } => {
                self.text(&mut error.message);
                if let Some(data) = &mut error.data {
                    self.value(data);
                }
            }
            _ => {}
        }
        error
    }

    /// `status` with the reasons it gives masked.
    pub fn status(&self, status: &mut ConnectorStatus) {
        if self.secrets.is_empty() {
            return;
        }
        status.reason.iter_mut().for_each(|t| self.text(t));
        status.last_error.iter_mut().for_each(|t| self.text(t));
        for replica in &mut status.replicas {
            replica.last_error.iter_mut().for_each(|t| self.text(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_taken_from_the_environment_are_masked_wherever_a_backend_echoes_them() {
        std::env::set_var("REDACT_TEST_TOKEN", "tok-123456");
        std::env::set_var("REDACT_TEST_KEY", "key-abcdef");
        let settings: ConnectorSettings = serde_json::from_value(json!({
            "name": "c", "url": "http://x",
            "headers": {"X-Key": "${REDACT_TEST_KEY}", "Accept": "application/json"},
            "auth": {"type": "bearer", "token": "${REDACT_TEST_TOKEN}"}}))
        .unwrap();
        let redactor = Redactor::new(&settings);
        let mut echoed = json!({"content": [{"type": "text",
            "text": "authorization: Bearer tok-123456, x-key: key-abcdef, accept: application/json"}]});

        redactor.value(&mut echoed);
        let failed = redactor.error(ConnectorError::Failed {
            connector: "c".into(),
            status: 500,
            message: "saw key-abcdef".into(),
        });

        assert_eq!(
            echoed["content"][0]["text"],
            "authorization: ***, x-key: ***, accept: application/json"
        );
        assert!(failed.to_string().ends_with("saw ***"), "{failed}");
    }
}
