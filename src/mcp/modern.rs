//! The stateless revision of MCP (2026-07-28), served beside the older revisions on `/mcp`.
//!
//! A request of this revision carries all it needs in `params._meta` (revision, client
//! capabilities, log level) and opens no session. This module reads and checks that `_meta`,
//! answers `server/discover`, and completes every result the way the revision requires
//! (`resultType`, the server's identity, caching hints). Pure functions: HTTP headers belong to
//! [`crate::transport`], and the methods themselves to [`super::dispatch`].

use serde_json::{json, Map, Value};

use super::jsonrpc::RpcError;
use super::lifecycle::LEVELS;
use crate::configuration::McpSettings;

/// Stateless revisions this gateway speaks.
pub const VERSIONS: [&str; 1] = ["2026-07-28"];

/// A header disagrees with the body, or a required header is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// The request needs a client capability that its `_meta` does not declare.
pub const MISSING_CAPABILITY: i64 = -32021;
/// The revision the request names is not one the gateway speaks.
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// `_meta` key of the revision.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities.
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the least severe log level the client wants.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key of the server's identity in results.
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key naming the `subscriptions/listen` request a notification belongs to.
pub const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// Methods of older revisions that this one removed; asked statelessly they are unknown.
const REMOVED: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// What a stateless request's `_meta` declares.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    /// The revision it is written in.
    pub version: String,
    /// The client's capabilities for this request.
    pub capabilities: Value,
    /// The rank in [`LEVELS`] of the least severe log message wanted; none wanted when absent.
    pub log_level: Option<usize>,
}

/// Whether a request names a stateless revision: by its `_meta`, or by its header when it
/// names no session and no older revision.
pub fn is_stateless(params: Option<&Value>, header: Option<&str>, session: bool) -> bool {
    let in_meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_VERSION))
        .is_some();
    in_meta || (!session && header.is_some_and(|v| !super::is_supported(v)))
}

/// Reads `params._meta`: `-32602` when it or a required key is missing or of the wrong type.
pub fn request_meta(params: Option<&Value>) -> Result<RequestMeta, RpcError> {
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            RpcError::invalid_params("params._meta is required (revision 2026-07-28)")
        })?;
    let version = meta
        .get(META_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(META_VERSION, "a string"))?;
    let capabilities = meta
        .get(META_CAPABILITIES)
        .filter(|c| c.is_object())
        .ok_or_else(|| missing(META_CAPABILITIES, "an object"))?;
    let log_level = match meta.get(META_LOG_LEVEL) {
        None | Some(Value::Null) => None,
        Some(level) => Some(
            level
                .as_str()
                .and_then(|l| LEVELS.iter().position(|known| *known == l))
                .ok_or_else(|| {
                    RpcError::invalid_params(format!(
                        "_meta.{META_LOG_LEVEL} must be one of {}",
                        LEVELS.join(", ")
                    ))
                })?,
        ),
    };
    Ok(RequestMeta {
        version: version.to_string(),
        capabilities: capabilities.clone(),
        log_level,
    })
}

fn missing(key: &str, kind: &str) -> RpcError {
    RpcError::invalid_params(format!("params._meta needs `{key}`, {kind}"))
}

/// `-32022` naming the revision asked for and those spoken.
pub fn unsupported_version(requested: &str) -> RpcError {
    RpcError {
        code: UNSUPPORTED_VERSION,
        message: format!(
            "Unsupported protocol version `{requested}`; stateless: {}; with initialize: {}",
            VERSIONS.join(", "),
            super::SUPPORTED_VERSIONS.join(", ")
        ),
        data: Some(json!({"supported": VERSIONS, "requested": requested})),
    }
}

/// `-32020` saying what disagrees.
pub fn header_mismatch(message: impl Into<String>) -> RpcError {
    RpcError::new(HEADER_MISMATCH, message)
}

/// `-32021`: the request needs `capability`, which the client did not declare.
pub fn missing_capability(capability: &str) -> RpcError {
    RpcError {
        code: MISSING_CAPABILITY,
        message: format!("this request needs the client capability `{capability}`, which params._meta does not declare"),
        data: Some(json!({"requiredCapabilities": {capability: {}}})),
    }
}

/// Whether `method` is one the stateless revision removed.
pub fn is_removed(method: &str) -> bool {
    REMOVED.contains(&method)
}

/// What the gateway offers statelessly.
pub fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "resources": {"listChanged": true, "subscribe": true},
        "prompts": {"listChanged": true},
        "completions": {},
        "logging": {},
    })
}

/// The `server/discover` result, before [`complete`].
pub fn discover(settings: &McpSettings) -> Value {
    let mut result = json!({
        "supportedVersions": VERSIONS,
        "capabilities": capabilities(),
    });
    if let Some(instructions) = &settings.instructions {
        result["instructions"] = json!(instructions);
    }
    result
}

/// How long a client may reuse a result of `method`, and with whom: `None` for methods whose
/// results are not cacheable. Lists may be reused for `mcp.list_ttl_ms`, by anyone (a virtual
/// server has its own path) unless they are `personal` (a live experiment serves each client its
/// own arm); a resource's content is never reused, as it may change at any time and depend on
/// who asks.
fn cache_hints(
    method: &str,
    settings: &McpSettings,
    personal: bool,
) -> Option<(u64, &'static str)> {
    let scope = if personal { "private" } else { "public" };
    match method {
        "server/discover"
        | "tools/list"
        | "prompts/list"
        | "resources/list"
        | "resources/templates/list" => Some((settings.list_ttl_ms, scope)),
        "resources/read" => Some((0, "private")),
        _ => None,
    }
}

/// Completes a result of `method`: `resultType`, the server's identity in `_meta`, and caching
/// hints where the revision requires them (`personal`: the result differs by who asks). A
/// result that needs input from the client keeps its type and gets no caching hints.
pub fn complete(method: &str, result: Value, settings: &McpSettings, personal: bool) -> Value {
    let Value::Object(mut result) = result else {
        return result;
    };
    let finished = !result.contains_key("resultType");
    if finished {
        result.insert("resultType".into(), json!("complete"));
    }
    let meta = result
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(
            META_SERVER_INFO.into(),
            json!({"name": settings.server_name, "version": env!("CARGO_PKG_VERSION")}),
        );
    }
    if let (true, Some((ttl, scope))) = (finished, cache_hints(method, settings, personal)) {
        result.entry("ttlMs").or_insert(json!(ttl));
        result.entry("cacheScope").or_insert(json!(scope));
    }
    Value::Object(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> McpSettings {
        McpSettings {
            server_name: "mcpgate".into(),
            instructions: Some("use the tools".into()),
            page_size: 10,
            name_separator: "_".into(),
            request_timeout_ms: 1000,
            first_load_wait_ms: 1000,
            list_ttl_ms: 0,
        }
    }

    fn meta(meta: Value) -> Value {
        json!({ "_meta": meta })
    }

    #[test]
    fn a_request_is_stateless_by_its_meta_or_by_a_newer_header_without_a_session() {
        let stateless = meta(json!({META_VERSION: "2026-07-28"}));
        assert!(is_stateless(Some(&stateless), None, true));
        assert!(is_stateless(None, Some("2026-07-28"), false));
        assert!(is_stateless(None, Some("v999"), false));
        assert!(!is_stateless(None, Some("2026-07-28"), true));
        assert!(!is_stateless(None, Some("2025-11-25"), false));
        assert!(!is_stateless(Some(&json!({})), None, false));
    }

    #[test]
    fn meta_needs_a_version_and_capabilities_and_reads_the_log_level() {
        let ok = meta(json!({
            META_VERSION: "2026-07-28",
            META_CAPABILITIES: {"sampling": {}},
            META_LOG_LEVEL: "warning",
        }));
        let read = request_meta(Some(&ok)).unwrap();
        assert_eq!(read.version, "2026-07-28");
        assert_eq!(read.capabilities, json!({"sampling": {}}));
        assert_eq!(read.log_level, Some(3));

        for bad in [
            json!({}),
            meta(json!({META_CAPABILITIES: {}})),
            meta(json!({META_VERSION: "2026-07-28"})),
            meta(json!({META_VERSION: 7, META_CAPABILITIES: {}})),
            meta(json!({META_VERSION: "2026-07-28", META_CAPABILITIES: []})),
            meta(
                json!({META_VERSION: "2026-07-28", META_CAPABILITIES: {}, META_LOG_LEVEL: "loud"}),
            ),
        ] {
            let err = request_meta(Some(&bad)).unwrap_err();
            assert_eq!(err.code, crate::mcp::jsonrpc::INVALID_PARAMS, "{bad}");
        }
        assert!(request_meta(None).is_err());
    }

    #[test]
    fn errors_carry_the_data_the_revision_defines() {
        let err = unsupported_version("v999");
        assert_eq!(err.code, UNSUPPORTED_VERSION);
        assert_eq!(err.data.unwrap()["requested"], "v999");
        let err = missing_capability("sampling");
        assert_eq!(err.code, MISSING_CAPABILITY);
        assert_eq!(
            err.data.unwrap(),
            json!({"requiredCapabilities": {"sampling": {}}})
        );
    }

    #[test]
    fn results_get_their_type_identity_and_caching_hints() {
        let listed = complete("tools/list", json!({"tools": []}), &settings(), false);
        assert_eq!(listed["resultType"], "complete");
        assert_eq!(listed["_meta"][META_SERVER_INFO]["name"], "mcpgate");
        assert_eq!(listed["ttlMs"], 0);
        assert_eq!(listed["cacheScope"], "public");

        let called = complete("tools/call", json!({"content": []}), &settings(), false);
        assert_eq!(called["resultType"], "complete");
        assert!(called.get("ttlMs").is_none());

        let waiting = json!({"resultType": "input_required", "requestState": "s"});
        let read = complete("resources/read", waiting, &settings(), false);
        assert_eq!(read["resultType"], "input_required");
        assert!(read.get("cacheScope").is_none());

        let found = complete("server/discover", discover(&settings()), &settings(), false);
        assert_eq!(found["supportedVersions"], json!(VERSIONS));
        assert_eq!(found["instructions"], "use the tools");
        assert!(found["capabilities"]["tools"].is_object());
    }

    #[test]
    fn lists_are_reused_for_the_set_time_by_anyone_unless_they_differ_by_who_asks() {
        let settings = McpSettings {
            list_ttl_ms: 30_000,
            ..settings()
        };
        let listed = complete("tools/list", json!({"tools": []}), &settings, false);
        let personal = complete("prompts/list", json!({"prompts": []}), &settings, true);
        let read = complete("resources/read", json!({"contents": []}), &settings, false);

        assert_eq!(
            (&listed["ttlMs"], &listed["cacheScope"]),
            (&json!(30_000), &json!("public"))
        );
        assert_eq!(
            (&personal["ttlMs"], &personal["cacheScope"]),
            (&json!(30_000), &json!("private"))
        );
        assert_eq!(
            (&read["ttlMs"], &read["cacheScope"]),
            (&json!(0), &json!("private"))
        );
    }
}
