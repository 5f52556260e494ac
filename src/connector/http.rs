//! The `http` backend: the REST contract of `docs/connector-contract.md`, spoken with awc.
//!
//! Owns URL building, percent-encoding, deadlines, response size limits and the mapping of HTTP
//! answers onto MCP results or [`ConnectorError`]s. It holds no state beyond its client's
//! connection pool; retries and health belong to the [`super::Connector`] around it.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use awc::Client;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use super::headers::header_pair;
use super::{ConnectorError, ConnectorSettings};
use crate::catalog::Item;

/// Everything but RFC 3986 unreserved characters is encoded, so a URI fits in one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Longest backend error text passed on to clients.
const MAX_ERROR_TEXT: usize = 4096;

/// Which lists a load fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// `GET /tools`.
    pub tools: bool,
    /// `GET /resources`.
    pub resources: bool,
    /// `GET /prompts`.
    pub prompts: bool,
}

/// What a load fetched; `None` for a list that was not due.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// Tools, each with a string `name`.
    pub tools: Option<Vec<Item>>,
    /// Resources, each with a string `uri`.
    pub resources: Option<Vec<Item>>,
    /// Resource templates, each with a string `uriTemplate`.
    pub resource_templates: Option<Vec<Item>>,
    /// Prompts, each with a string `name`.
    pub prompts: Option<Vec<Item>>,
}

/// A tool's answer.
#[derive(Debug, Clone)]
pub struct ToolResult {
    /// The MCP tool result.
    pub value: Value,
    /// Whether the backend answered with a 5xx (the result is then `isError: true`).
    pub server_error: bool,
}

/// A client of one HTTP connector.
#[derive(Clone)]
pub struct HttpBackend {
    connector: Arc<str>,
    base: Arc<str>,
    client: Client,
    timeout: Duration,
    max_response_bytes: usize,
}

impl HttpBackend {
    /// A client for the replica at `url` of `settings`, sending `headers` with every request.
    pub fn new(
        settings: &ConnectorSettings,
        url: &str,
        headers: &[(String, SecretString)],
    ) -> Self {
        // Redirects are not followed: they would carry the connector's headers (its secrets
        // among them; awc drops only `Authorization` and cookies across origins) to wherever
        // the backend points.
        let mut builder = Client::builder()
            .timeout(settings.timeout())
            .disable_redirects();
        for (name, value) in headers {
            if let Some(pair) = header_pair(&settings.name, name, value.expose_secret()) {
                builder = builder.add_default_header(pair);
            }
        }
        HttpBackend {
            connector: Arc::from(settings.name.as_str()),
            base: Arc::from(url.trim_end_matches('/')),
            client: builder.finish(),
            timeout: settings.timeout(),
            max_response_bytes: settings.max_response_bytes,
        }
    }

    /// `GET /info` within `timeout`: the body, or `{}` when the connector has no info endpoint.
    pub async fn info(&self, timeout: Duration) -> Result<Value, ConnectorError> {
        let request = self
            .client
            .get(format!("{}/info", self.base))
            .timeout(timeout);
        let (status, body) = self.send_within(request, None, timeout).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(json!({}));
        }
        self.check(status, &body, || "info".to_string())?;
        Ok(Value::Object(self.json_object(&body)?))
    }

    /// Loads the lists that `due` names, at once. A list endpoint answering 404 counts as an
    /// empty list; any other failure fails the whole load.
    pub async fn load_lists(&self, due: Due) -> Result<Lists, ConnectorError> {
        let maybe = |wanted: bool, what: &'static str, key: &'static str| async move {
            match wanted {
                true => self.list(what, key).await.map(Some),
                false => Ok(None),
            }
        };
        let (tools, resources, prompts) = futures_util::future::join3(
            maybe(due.tools, "tools", "name"),
            maybe(due.resources, "resources", "uri"),
            maybe(due.prompts, "prompts", "name"),
        )
        .await;
        let tools = tools?.map(|tools| {
            tools
                .into_iter()
                .map(|mut tool| {
                    tool.entry("inputSchema")
                        .or_insert_with(|| json!({"type": "object"}));
                    tool
                })
                .collect()
        });
        let resources = resources?;
        Ok(Lists {
            tools,
            resource_templates: resources.as_ref().map(|_| Vec::new()),
            resources,
            prompts: prompts?,
        })
    }

    /// Runs a tool. A non-2xx answer is a tool result with `isError: true`.
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<ToolResult, ConnectorError> {
        let url = format!("{}/tools/{}/execute", self.base, encode(tool));
        let request = self
            .client
            .post(url)
            .insert_header(("content-type", "application/json"));
        let body = serde_json::to_vec(&json!({ "arguments": arguments }))
            .map_err(|e| self.bad_response(e.to_string()))?;
        let (status, body) = self.send(request, Some(body)).await?;
        if !status.is_success() {
            let value = json!({
                "content": [{"type": "text", "text": error_text(status, &body)}],
                "isError": true,
            });
            return Ok(ToolResult {
                value,
                server_error: status.is_server_error(),
            });
        }
        let result = self.json_object(&body)?;
        if !result.get("content").is_some_and(Value::is_array) {
            return Err(self.bad_response("a tool result needs a `content` array".into()));
        }
        Ok(ToolResult {
            value: Value::Object(result),
            server_error: false,
        })
    }

    /// Reads one resource by the backend's own URI.
    pub async fn read_resource(&self, uri: &str) -> Result<Value, ConnectorError> {
        let url = format!("{}/resources/{}", self.base, encode(uri));
        let (status, body) = self.send(self.client.get(url), None).await?;
        self.check(status, &body, || format!("resource `{uri}`"))?;
        let result = self.json_object(&body)?;
        match result.get("contents") {
            Some(Value::Array(_)) => Ok(Value::Object(result)),
            _ if result.contains_key("text") || result.contains_key("blob") => {
                let mut content = result;
                content.entry("uri").or_insert_with(|| json!(uri));
                Ok(json!({ "contents": [content] }))
            }
            _ => Err(self.bad_response("a resource needs a `contents` array".into())),
        }
    }

    /// Renders one prompt; `arguments` go as query parameters.
    pub async fn get_prompt(
        &self,
        prompt: &str,
        arguments: &Map<String, Value>,
    ) -> Result<Value, ConnectorError> {
        let url = format!("{}/prompts/{}", self.base, encode(prompt));
        let query: Vec<(&str, &str)> = arguments
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
            .collect();
        let request = self
            .client
            .get(url)
            .query(&query)
            .map_err(|e| self.bad_response(format!("arguments do not encode: {e}")))?;
        let (status, body) = self.send(request, None).await?;
        self.check(status, &body, || format!("prompt `{prompt}`"))?;
        let result = self.json_object(&body)?;
        if !result.get("messages").is_some_and(Value::is_array) {
            return Err(self.bad_response("a prompt needs a `messages` array".into()));
        }
        Ok(Value::Object(result))
    }

    /// `GET /{what}`: a list under the key `what` or a bare array, each item with a string `key`.
    async fn list(&self, what: &str, key: &str) -> Result<Vec<Item>, ConnectorError> {
        let (status, body) = self
            .send(self.client.get(format!("{}/{what}", self.base)), None)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        self.check(status, &body, || what.to_string())?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| self.bad_response(format!("{what}: {e}")))?;
        let items = match value {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove(what) {
                Some(Value::Array(items)) => items,
                _ => return Err(self.bad_response(format!("no `{what}` array"))),
            },
            _ => return Err(self.bad_response(format!("{what} is not a list"))),
        };
        Ok(items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(map) if map.get(key).is_some_and(Value::is_string) => Some(map),
                _ => {
                    log::warn!(
                        "connector `{}` listed an item of {what} without a string `{key}`; it is left out",
                        self.connector
                    );
                    None
                }
            })
            .collect())
    }

    /// Sends a request and reads the whole body, all within the connector's timeout.
    async fn send(
        &self,
        request: awc::ClientRequest,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ConnectorError> {
        self.send_within(request, body, self.timeout).await
    }

    /// Sends a request and reads the whole body, all within `timeout`.
    async fn send_within(
        &self,
        request: awc::ClientRequest,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), ConnectorError> {
        let exchange = async {
            let response = match body {
                Some(body) => request.send_body(body).await,
                None => request.send().await,
            };
            let mut response = response.map_err(|e| match e {
                awc::error::SendRequestError::Timeout => self.timeout_error(timeout),
                // The request itself cannot be made (a URI too long for HTTP, say): the
                // client's doing, not the backend's health.
                awc::error::SendRequestError::Url(_) | awc::error::SendRequestError::Http(_) => {
                    ConnectorError::Rejected {
                        connector: self.connector.to_string(),
                        message: format!("the request cannot be sent: {e}"),
                    }
                }
                other => ConnectorError::Unreachable {
                    connector: self.connector.to_string(),
                    reason: other.to_string(),
                },
            })?;
            if response.status().is_redirection() {
                return Err(self.bad_response(redirected(&response)));
            }
            let body = response
                .body()
                .limit(self.max_response_bytes)
                .await
                .map_err(|e| match e {
                    awc::error::PayloadError::Overflow => self.bad_response(format!(
                        "its body is larger than {} bytes (max_response_bytes)",
                        self.max_response_bytes
                    )),
                    e => self.bad_response(format!("body: {e}")),
                })?;
            Ok((response.status(), body))
        };
        actix_rt::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error(timeout)))
    }

    /// Maps 404, 400/422 and the refusals of a request too large (413, 414, 431) onto client
    /// errors and other non-2xx onto a backend failure.
    fn check(
        &self,
        status: StatusCode,
        body: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<(), ConnectorError> {
        let connector = self.connector.to_string();
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(ConnectorError::NotFound {
                connector,
                what: what(),
            }),
            StatusCode::BAD_REQUEST
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::URI_TOO_LONG
            | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Err(ConnectorError::Rejected {
                connector,
                message: error_text(status, body),
            }),
            _ => Err(ConnectorError::Failed {
                connector,
                status: status.as_u16(),
                message: error_text(status, body),
            }),
        }
    }

    fn json_object(&self, body: &[u8]) -> Result<Map<String, Value>, ConnectorError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(self.bad_response("expected a JSON object".into())),
            Err(e) => Err(self.bad_response(format!("not JSON: {e}"))),
        }
    }

    fn bad_response(&self, reason: String) -> ConnectorError {
        ConnectorError::BadResponse {
            connector: self.connector.to_string(),
            reason,
        }
    }

    fn timeout_error(&self, timeout: Duration) -> ConnectorError {
        ConnectorError::Timeout {
            connector: self.connector.to_string(),
            timeout_ms: timeout.as_millis() as u64,
        }
    }
}

/// What a redirect is reported as: where it pointed, and that it was not followed.
pub(crate) fn redirected<S>(response: &awc::ClientResponse<S>) -> String {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nowhere");
    format!(
        "HTTP {} to `{location}`: redirects are not followed; set the connector's URL to where it points",
        response.status().as_u16()
    )
}

/// Percent-encodes `value` as one path segment; `.` and `..` too, which a server or proxy
/// would otherwise resolve to another path.
fn encode(value: &str) -> String {
    match value {
        "." | ".." => value.replace('.', "%2E"),
        _ => utf8_percent_encode(value, SEGMENT).to_string(),
    }
}

/// The backend's error text: the `error` or `message` field of a JSON body, else the body.
fn error_text(status: StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        ["error", "message"]
            .iter()
            .find_map(|k| v.get(k).and_then(Value::as_str).map(str::to_string))
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let text = if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text
    };
    truncate(text, MAX_ERROR_TEXT)
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_is_encoded_as_one_segment() {
        assert_eq!(encode("file://README.md"), "file%3A%2F%2FREADME.md");
        assert_eq!(encode(".."), "%2E%2E");
        assert_eq!(encode("."), "%2E");
        assert_eq!(encode("a..b"), "a..b");
    }

    #[test]
    fn error_text_prefers_the_json_error_field() {
        let text = error_text(StatusCode::INTERNAL_SERVER_ERROR, br#"{"error":"boom"}"#);
        assert_eq!(text, "boom");
    }

    #[test]
    fn error_text_falls_back_to_the_body_then_the_status() {
        assert_eq!(error_text(StatusCode::BAD_GATEWAY, b" plain "), "plain");
        assert!(error_text(StatusCode::BAD_GATEWAY, b"").contains("502"));
    }

    #[actix_rt::test]
    async fn refusals_of_a_request_too_large_are_the_clients_fault() {
        let settings: ConnectorSettings =
            serde_json::from_value(json!({"name": "c", "url": "http://127.0.0.1:1"})).unwrap();
        let backend = HttpBackend::new(&settings, "http://127.0.0.1:1", &[]);
        let what = || "prompt `p`".to_string();
        for status in [413, 414, 431, 400, 422] {
            let status = StatusCode::from_u16(status).unwrap();
            let err = backend.check(status, b"", what).unwrap_err();
            assert!(
                !err.is_backend_failure() && err.is_client_error(),
                "{status}"
            );
        }
        let err = backend
            .check(StatusCode::BAD_GATEWAY, b"", what)
            .unwrap_err();
        assert!(err.is_backend_failure());
    }

    #[test]
    fn long_error_text_is_cut_on_a_char_boundary() {
        let text = truncate("é".repeat(3000), MAX_ERROR_TEXT);
        assert!(text.len() <= MAX_ERROR_TEXT);
    }
}
