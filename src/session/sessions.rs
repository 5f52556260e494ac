//! The table of open sessions, by id. Sessions insert themselves when started by a transport and
//! remove themselves when they stop; transports look them up per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::Addr;

use super::Session;

/// Open sessions by id; cheap to clone.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<RwLock<HashMap<Arc<str>, Addr<Session>>>>,
}

impl Sessions {
    /// The session with `id`, if it is open.
    pub fn get(&self, id: &str) -> Option<Addr<Session>> {
        self.inner.read().ok()?.get(id).cloned()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.inner.read().map(|map| map.len()).unwrap_or(0)
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Enters the session that `start` starts, unless `max` sessions are open already; the
    /// count and the entry are one step, so concurrent starts cannot pass `max` together.
    pub(super) fn admit(
        &self,
        id: Arc<str>,
        max: usize,
        start: impl FnOnce() -> Addr<Session>,
    ) -> Option<Addr<Session>> {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= max {
            return None;
        }
        let addr = start();
        map.insert(id, addr.clone());
        Some(addr)
    }

    /// Forgets the session with `id`; later requests for it get 404.
    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.inner.write() {
            map.remove(id);
        }
    }
}
