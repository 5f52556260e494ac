//! Who a request comes from, for limits per client and for the versions a live experiment
//! serves: a key that stands for the client's bearer token, or its address. The keys are keyed
//! by the store's shared `client_key`, so every gateway on the store, and a gateway after a
//! restart, gives one client the same key; a token is neither kept nor logged as sent.

use std::hash::Hasher;

use actix_web::HttpRequest;
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::store::{self, installation, Pool};

/// The hash key of the keys that stand for tokens.
#[derive(Debug, Clone, Copy)]
pub struct ClientKeys {
    keys: (u64, u64),
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
        }
    }

    /// The key that stands for `principal` (an `Authorization` header).
    pub fn of_principal(&self, principal: &str) -> String {
        self.keyed("principal", principal)
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

    /// The client of `req`: its `Authorization` header's key, or else its peer's IP address;
    /// `None` when neither is known.
    pub fn of(&self, req: &HttpRequest) -> Option<String> {
        let authorization = req.headers().get("authorization");
        match authorization.and_then(|h| h.to_str().ok()) {
            Some(principal) => Some(self.of_principal(principal)),
            None => Some(format!("address-{}", req.peer_addr()?.ip())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_gives_one_principal_one_key_and_another_key_another() {
        let one = ClientKeys { keys: (1, 2) };
        let same = ClientKeys { keys: (1, 2) };
        let other = ClientKeys { keys: (3, 4) };

        let key = one.of_principal("Bearer a");
        assert_eq!(key, same.of_principal("Bearer a"));
        assert_ne!(key, one.of_principal("Bearer b"));
        assert_ne!(key, other.of_principal("Bearer a"));
        assert!(!key.contains("Bearer"), "{key}");
        assert_eq!(key.len(), "principal-".len() + 32);
    }
}
