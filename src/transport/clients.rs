//! Who a request comes from, for limits per client and for the versions a live experiment
//! serves: a key that stands for the client's bearer token, or its address (the one a trusted
//! proxy names in `X-Forwarded-For`, else the connection's). The keys are keyed by the store's
//! shared `client_key`, so every gateway on the store, and a gateway after a restart, gives one
//! client the same key; a token is neither kept nor logged as sent.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpRequest;
use ipnet::IpNet;
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::store::{self, installation, Pool};

/// What the key of a client known by its `Authorization` header starts with.
pub const PRINCIPAL: &str = "principal";

/// The hash key of the keys that stand for tokens, and the proxies trusted to name clients.
#[derive(Debug, Clone)]
pub struct ClientKeys {
    keys: (u64, u64),
    trusted: Arc<[IpNet]>,
}

/// A trusted proxy as `server.trusted_proxies` gives it (an address or a CIDR block), if it is
/// one.
pub fn proxy(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The client's address: `peer`'s, unless `peer` is a `trusted` proxy, in which case the
/// rightmost address of `forwarded_for` (the `X-Forwarded-For` values, in order) that is not a
/// trusted proxy, or the leftmost when all are.
fn address(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let named: Vec<IpAddr> = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    let untrusted = named.iter().rev().find(|ip| !is_trusted(ip));
    untrusted.or(named.first()).copied().unwrap_or(peer)
}

impl ClientKeys {
    /// The key shared through `pool`'s store, made by the first gateway that needs it; a random
    /// one for this process alone when the store cannot give it.
    pub async fn load(pool: &Pool) -> ClientKeys {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let offered = fresh.clone();
        let stored = store::blocking(pool, move |conn| {
            installation::value_or(conn, "client_key", &offered)
        })
        .await
        .and_then(|value| u128::from_str_radix(&value, 16).map_err(|e| e.to_string()));
        let key = stored.unwrap_or_else(|err| {
            log::warn!("the store's client key is not readable ({err}); this process uses its own");
            u128::from_str_radix(&fresh, 16).unwrap_or_default()
        });
        ClientKeys {
            keys: ((key >> 64) as u64, key as u64),
            trusted: Arc::from([]),
        }
    }

    /// These keys, trusting `proxies` to name their clients (see [`proxy`]; others are left
    /// out, as validation refused them).
    pub fn trusting(self, proxies: &[String]) -> ClientKeys {
        let trusted: Vec<IpNet> = proxies.iter().filter_map(|p| proxy(p)).collect();
        ClientKeys {
            trusted: trusted.into(),
            ..self
        }
    }

    /// The key that stands for `principal` (an `Authorization` header).
    pub fn of_principal(&self, principal: &str) -> String {
        self.keyed(PRINCIPAL, principal)
    }

    /// The key that stands for the session `id` in the store (the id is a secret).
    pub fn of_session(&self, id: &str) -> String {
        self.keyed("session", id)
    }

    /// The key that stands for a request's `requestState` in the store (a secret too).
    pub fn of_request(&self, state: &str) -> String {
        self.keyed("request", state)
    }

    /// `kind`, then the keyed hash of `text`.
    fn keyed(&self, kind: &str, text: &str) -> String {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        hasher.write(text.as_bytes());
        format!("{kind}-{:032x}", hasher.finish128().as_u128())
    }

    /// The client of `req`: its `Authorization` header's key, or else its IP address (see
    /// [`ClientKeys::trusting`]); `None` when neither is known.
    pub fn of(&self, req: &HttpRequest) -> Option<String> {
        let authorization = req.headers().get("authorization");
        if let Some(principal) = authorization.and_then(|h| h.to_str().ok()) {
            return Some(self.of_principal(principal));
        }
        let peer = req.peer_addr()?.ip();
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|h| h.to_str().ok())
            .collect();
        Some(format!(
            "address-{}",
            address(peer, &forwarded, &self.trusted)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_gives_one_principal_one_key_and_another_key_another() {
        let keys = |keys| ClientKeys {
            keys,
            trusted: Arc::from([]),
        };
        let (one, same, other) = (keys((1, 2)), keys((1, 2)), keys((3, 4)));

        let key = one.of_principal("Bearer a");
        assert_eq!(key, same.of_principal("Bearer a"));
        assert_ne!(key, one.of_principal("Bearer b"));
        assert_ne!(key, other.of_principal("Bearer a"));
        assert!(!key.contains("Bearer"), "{key}");
        assert_eq!(key.len(), "principal-".len() + 32);
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_an_untrusted_peer_is_the_client() {
        let trusted: Vec<IpNet> = ["10.0.0.0/8", "192.168.1.5"]
            .iter()
            .filter_map(|p| proxy(p))
            .collect();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();

        let direct = address(ip("203.0.113.9"), &["198.51.100.1"], &trusted);
        let through = address(ip("10.1.2.3"), &["198.51.100.1, 10.9.9.9"], &trusted);
        let spoofed = address(ip("10.1.2.3"), &["1.1.1.1, 198.51.100.2"], &trusted);
        let two_headers = address(ip("192.168.1.5"), &["198.51.100.3", "10.0.0.1"], &trusted);
        let all_trusted = address(ip("10.1.2.3"), &["10.0.0.7, 10.0.0.8"], &trusted);
        let none_named = address(ip("10.1.2.3"), &["garbage"], &trusted);

        assert_eq!(direct, ip("203.0.113.9"), "an untrusted peer is the client");
        assert_eq!(through, ip("198.51.100.1"));
        assert_eq!(
            spoofed,
            ip("198.51.100.2"),
            "what the client itself wrote is not trusted"
        );
        assert_eq!(two_headers, ip("198.51.100.3"));
        assert_eq!(all_trusted, ip("10.0.0.7"));
        assert_eq!(none_named, ip("10.1.2.3"));
        assert!(proxy("not an address").is_none());
    }
}
