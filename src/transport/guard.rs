//! Checks in front of the MCP endpoints: `Host` and `Origin` against the allowed lists (403,
//! against DNS rebinding and cross-site requests), then the bearer token if tokens are
//! configured (401). The ops API takes the same `Host` and `Origin` checks ([`foreign`]).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::gateway::Gateway;

/// Hosts accepted whatever the settings say.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The middleware: rejects the request or passes it on.
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let rejection = match req.app_data::<web::Data<Gateway>>() {
        Some(gateway) => reject(&req, gateway),
        None => None,
    };
    match rejection {
        Some(response) => Ok(req.into_response(response).map_into_right_body()),
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
    }
}

fn reject(req: &ServiceRequest, gateway: &Gateway) -> Option<HttpResponse> {
    foreign(req, gateway)
        .or_else(|| (!bearer_accepted(req.headers(), &gateway.tokens)).then(unauthorized))
}

/// 403 when the request names a host or comes from an origin that is not allowed (against DNS
/// rebinding and cross-site requests): every `Host` header and the authority of an
/// absolute request target must be an allowed host, and every `Origin` header an allowed
/// origin. A header that is not visible ASCII is not allowed.
pub fn foreign(req: &ServiceRequest, gateway: &Gateway) -> Option<HttpResponse> {
    let settings = &gateway.server;
    let headers = req.headers();
    let named = headers
        .get_all(header::HOST)
        .map(|h| h.to_str().ok())
        .chain(req.uri().authority().map(|a| Some(a.as_str())));
    for host in named {
        if !host.is_some_and(|host| host_allowed(host, &settings.allowed_hosts)) {
            return Some(forbidden(
                "the Host header names a host that is not allowed",
            ));
        }
    }
    for origin in headers.get_all(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, &settings.allowed_hosts, &settings.allowed_origins) {
            return Some(forbidden(
                "the Origin header names an origin that is not allowed",
            ));
        }
    }
    None
}

/// Whether `tokens` is empty or the `Authorization` header holds one of them, as a `Bearer`
/// credential (the scheme in any case). No token matches a header without one.
pub fn bearer_accepted(headers: &HeaderMap, tokens: &[SecretString]) -> bool {
    if tokens.is_empty() {
        return true;
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start())
        .filter(|token| !token.is_empty());
    let Some(presented) = presented else {
        return false;
    };
    tokens
        .iter()
        .any(|t| constant_time_eq(t.expose_secret().as_bytes(), presented.as_bytes()))
}

/// 401 with the challenge.
pub fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({"error": "a valid bearer token is required"}))
}

fn forbidden(message: &str) -> HttpResponse {
    HttpResponse::Forbidden().json(json!({ "error": message }))
}

/// Whether `host` (a `Host` header, port allowed) is loopback or listed; `*` allows any.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    name_allowed(strip_port(host), allowed)
}

/// Whether a bare host name (no port, no brackets) is loopback or listed.
fn name_allowed(name: &str, allowed: &[String]) -> bool {
    LOOPBACK.iter().any(|h| h.eq_ignore_ascii_case(name))
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(name))
}

/// Whether `origin` is listed, or its host is an allowed host; `*` allows any.
pub fn origin_allowed(origin: &str, allowed_hosts: &[String], allowed_origins: &[String]) -> bool {
    if allowed_origins.iter().any(|o| o == "*" || o == origin) {
        return true;
    }
    match url::Url::parse(origin) {
        Ok(url) => url
            .host_str()
            .is_some_and(|host| name_allowed(host.trim_matches(['[', ']']), allowed_hosts)),
        Err(_) => false,
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass_with_or_without_port() {
        for host in ["localhost", "127.0.0.1:8080", "[::1]:9", "LOCALHOST:1"] {
            assert!(host_allowed(host, &[]), "{host}");
        }
    }

    #[test]
    fn a_foreign_host_fails_unless_listed() {
        assert!(!host_allowed("evil.example:80", &[]));
        assert!(host_allowed("gw.internal:80", &["gw.internal".into()]));
        assert!(host_allowed("anything", &["*".into()]));
    }

    #[test]
    fn origins_follow_the_hosts_and_the_origin_list() {
        assert!(origin_allowed("http://localhost:6274", &[], &[]));
        assert!(origin_allowed("http://[::1]:3000", &[], &[]));
        assert!(!origin_allowed("https://evil.example", &[], &[]));
        assert!(!origin_allowed("null", &[], &[]));
        let listed = ["https://app.example".to_string()];
        assert!(origin_allowed("https://app.example", &[], &listed));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_no_token_matches_none() {
        let tokens = [SecretString::from("tok-A")];
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            let value = header::HeaderValue::from_str(value).unwrap();
            headers.insert(header::AUTHORIZATION, value);
            bearer_accepted(&headers, &tokens)
        };
        for accepted in ["Bearer tok-A", "bearer tok-A", "BEARER  tok-A"] {
            assert!(with(accepted), "{accepted}");
        }
        for refused in ["Bearer tok-B", "Basic tok-A", "tok-A", "Bearer ", "Bearer"] {
            assert!(!with(refused), "{refused}");
        }
        assert!(!bearer_accepted(&HeaderMap::new(), &tokens));
        // An empty configured token (refused by the settings) still matches nothing.
        let empty = [SecretString::from("")];
        assert!(!bearer_accepted(&HeaderMap::new(), &empty));
    }
}
