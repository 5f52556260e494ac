//! JSON-RPC 2.0 framing: telling requests, notifications and responses apart, and building
//! answers. Knows nothing of MCP methods.

use serde_json::{json, Map, Value};

use crate::connector::ConnectorError;

/// The body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a JSON-RPC request.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params are wrong, or name something unknown.
pub const INVALID_PARAMS: i64 = -32602;
/// The gateway failed.
pub const INTERNAL_ERROR: i64 = -32603;
/// A backend, or the gateway itself, is unavailable (timeout, unreachable, invalid answer, no room
/// for another session).
pub const BACKEND_UNAVAILABLE: i64 = -32000;
/// The request did not finish within the gateway's deadline.
pub const REQUEST_TIMEOUT: i64 = -32001;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// One of the codes above.
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
    /// Structured detail.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// `-32602` with `message`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }

    /// `-32600` with `message`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_REQUEST, message)
    }

    /// The error object as JSON.
    pub fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

impl From<ConnectorError> for RpcError {
    fn from(err: ConnectorError) -> Self {
        if let ConnectorError::Remote { error, .. } = err {
            return error;
        }
        let code = if err.is_client_error() {
            INVALID_PARAMS
        } else {
            BACKEND_UNAVAILABLE
        };
        let mut data = json!({"connector": err.connector(), "kind": err.kind()});
        if let Some(ms) = err.retry_after_ms() {
            data["retryAfterMs"] = json!(ms);
        }
        RpcError {
            code,
            message: err.to_string(),
            data: Some(data),
        }
    }
}

/// One incoming JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request: answer it.
    Request {
        /// Its id, a string or a number.
        id: Value,
        /// The method.
        method: String,
        /// The params, if any.
        params: Option<Value>,
    },
    /// A notification: never answered.
    Notification {
        /// The method.
        method: String,
        /// The params, if any.
        params: Option<Value>,
    },
    /// A response to a request that the gateway sent.
    Response {
        /// The id the gateway gave its request.
        id: Value,
        /// The result, or the error object.
        outcome: Result<Value, Value>,
    },
}

impl Incoming {
    /// Whether it expects an answer.
    pub fn is_request(&self) -> bool {
        matches!(self, Incoming::Request { .. })
    }
}

/// Reads one message. On failure returns the id (if one could be read) and the error to send.
pub fn classify(message: Value) -> Result<Incoming, (Value, RpcError)> {
    let Value::Object(mut map) = message else {
        return Err((
            Value::Null,
            RpcError::invalid_request("a message must be a JSON object"),
        ));
    };
    let id = map.remove("id");
    let reply_id = id.clone().filter(valid_id).unwrap_or(Value::Null);
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            reply_id,
            RpcError::invalid_request("`jsonrpc` must be \"2.0\""),
        ));
    }
    let params = map.remove("params");
    // JSON-RPC allows positional params; MCP names every param.
    if params.as_ref().is_some_and(|p| !p.is_object()) {
        return Err((
            reply_id,
            RpcError::invalid_request("`params` must be an object"),
        ));
    }
    match (map.remove("method"), id) {
        (Some(Value::String(method)), None) => Ok(Incoming::Notification { method, params }),
        (Some(Value::String(method)), Some(id)) if valid_id(&id) => {
            Ok(Incoming::Request { id, method, params })
        }
        (Some(Value::String(_)), Some(_)) => Err((
            Value::Null,
            RpcError::invalid_request("`id` must be a string or an integer"),
        )),
        (Some(_), _) => Err((
            reply_id,
            RpcError::invalid_request("`method` must be a string"),
        )),
        (None, Some(id)) if map.contains_key("result") || map.contains_key("error") => {
            let outcome = match map.remove("error") {
                Some(error) => Err(error),
                None => Ok(map.remove("result").unwrap_or(Value::Null)),
            };
            Ok(Incoming::Response { id, outcome })
        }
        (None, _) => Err((
            reply_id,
            RpcError::invalid_request("a request needs a `method`"),
        )),
    }
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// A success response.
pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response.
pub fn error(id: Value, err: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": err.to_json()})
}

/// A request (from the gateway to a client or a backend).
pub fn request(id: Value, method: &str, params: Option<Value>) -> Value {
    let mut message = notification(method, params);
    message["id"] = id;
    message
}

/// A notification.
pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut message = Map::new();
    message.insert("jsonrpc".into(), json!("2.0"));
    message.insert("method".into(), json!(method));
    if let Some(params) = params {
        message.insert("params".into(), params);
    }
    Value::Object(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_a_notification_and_a_response_are_told_apart() {
        let request = classify(json!({"jsonrpc":"2.0","id":1,"method":"ping"})).unwrap();
        assert!(request.is_request());
        let note = classify(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert!(matches!(note, Ok(Incoming::Notification { .. })));
        let response = classify(json!({"jsonrpc":"2.0","id":"s1","result":{}}));
        let expected = Incoming::Response {
            id: json!("s1"),
            outcome: Ok(json!({})),
        };
        assert_eq!(response, Ok(expected));
    }

    #[test]
    fn a_wrong_version_is_an_invalid_request_that_keeps_the_id() {
        let (id, err) = classify(json!({"jsonrpc":"1.0","id":7,"method":"ping"})).unwrap_err();
        assert_eq!(id, json!(7));
        assert_eq!(err.code, INVALID_REQUEST);
    }

    #[test]
    fn a_non_object_and_a_missing_method_are_invalid_requests() {
        assert_eq!(classify(json!([1, 2])).unwrap_err().1.code, INVALID_REQUEST);
        let positional = classify(json!({"jsonrpc":"2.0","id":1,"method":"ping","params":[]}));
        assert_eq!(
            positional.unwrap_err().1.message,
            "`params` must be an object"
        );
        let (_, err) = classify(json!({"jsonrpc":"2.0","id":1})).unwrap_err();
        assert_eq!(err.code, INVALID_REQUEST);
    }

    #[test]
    fn a_null_or_fractional_id_is_rejected() {
        let (_, err) = classify(json!({"jsonrpc":"2.0","id":null,"method":"x"})).unwrap_err();
        assert_eq!(err.code, INVALID_REQUEST);
        let (_, err) = classify(json!({"jsonrpc":"2.0","id":1.5,"method":"x"})).unwrap_err();
        assert_eq!(err.code, INVALID_REQUEST);
    }

    #[test]
    fn a_client_side_connector_error_is_invalid_params_and_names_the_connector() {
        let err = RpcError::from(ConnectorError::NotFound {
            connector: "notes".into(),
            what: "prompt `x`".into(),
        });
        assert_eq!(err.code, INVALID_PARAMS);
        assert_eq!(err.data.unwrap()["connector"], "notes");
        let err = RpcError::from(ConnectorError::Timeout {
            connector: "slow".into(),
            timeout_ms: 5,
        });
        assert_eq!(err.code, BACKEND_UNAVAILABLE);
        assert!(err.message.contains("slow"));
    }
}
