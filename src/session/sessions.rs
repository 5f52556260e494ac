//! The table of open sessions, by id. Sessions insert themselves when started by a transport and
//! remove themselves when they stop; transports look them up per request. When the table is
//! full, a new session takes the place of the Streamable HTTP session idle the longest, if one
//! has been idle past `server.evict_idle_after_ms` with no stream open; when its client has
//! `server.max_sessions_per_client` open, it takes the place of that client's own idlest one
//! by the same rule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::Addr;

use super::{EndSession, Session};

/// When a session's client was last heard from, and whether it holds a stream: what the table
/// needs to pick a session to end for room. Updated by the session.
#[derive(Debug)]
pub struct Presence {
    /// When the table was made; `seen_ms` counts from it.
    epoch: Instant,
    /// Milliseconds from `epoch` to the client's last message or stream change.
    seen_ms: AtomicU64,
    /// Whether a stream to the client is open.
    streaming: AtomicBool,
    /// Whether it may be ended for room at all (Streamable HTTP sessions only).
    evictable: bool,
}

impl Presence {
    /// The client was heard from now.
    pub fn seen(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.seen_ms.store(now, Ordering::Relaxed);
    }

    /// A stream to the client opened or closed.
    pub fn streaming(&self, open: bool) {
        self.streaming.store(open, Ordering::Relaxed);
        self.seen();
    }

    /// How long the client has been quiet with no stream open; `None` when it holds one or may
    /// not be ended for room.
    fn idle(&self) -> Option<Duration> {
        if !self.evictable || self.streaming.load(Ordering::Relaxed) {
            return None;
        }
        let seen = Duration::from_millis(self.seen_ms.load(Ordering::Relaxed));
        Some(self.epoch.elapsed().saturating_sub(seen))
    }
}

/// One open session.
struct Entry {
    addr: Addr<Session>,
    presence: Arc<Presence>,
    /// Who opened it ([`crate::transport::clients::ClientKeys::of`]), when known.
    client: Option<Arc<str>>,
    /// The virtual server it was opened on (`/servers/{name}/…`); none for the whole catalog.
    server: Option<Arc<str>>,
}

/// How many sessions the table takes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Sessions in all (`server.max_sessions`).
    pub max: usize,
    /// Sessions of one client (`server.max_sessions_per_client`; 0: no limit).
    pub per_client: usize,
    /// How long a session must have been idle to be ended for room; `None`: never.
    pub evict_after: Option<Duration>,
}

/// Open sessions by id; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<RwLock<HashMap<Arc<str>, Entry>>>,
    epoch: Instant,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            inner: Arc::default(),
            epoch: Instant::now(),
        }
    }
}

/// How a session was admitted.
pub(super) enum Admitted {
    /// There was room: the new session.
    Room(Addr<Session>),
    /// The new session took the place of the one idle the longest, which is told to end.
    InPlaceOf(Addr<Session>),
    /// The table is full of sessions in use.
    Full,
    /// The client's own sessions are as many as it may have, all in use.
    ClientFull,
}

/// What the table holds under an id, for the endpoints a request came to.
pub enum Found {
    /// The session, opened on these endpoints.
    Here(Addr<Session>),
    /// A session opened on another virtual server's endpoints (or the whole catalog's), or
    /// with another `Authorization` header.
    Elsewhere,
    /// No session: perhaps another gateway of the store holds it.
    Absent,
}

impl Sessions {
    /// The session with `id`, if it is open and was opened on the endpoints of `server` (a
    /// virtual server's name; none for the whole catalog's): a session is not served on
    /// another's endpoints, as its id would then reach a scope it was not opened for.
    ///
    /// A session opened with an `Authorization` header is bound to it: `client` (the key of the
    /// request's, [`crate::transport::clients::ClientKeys::of`]) must be the same, so that an
    /// id seen by one token holder does not open the session to another.
    pub fn get(&self, id: &str, server: Option<&str>, client: Option<&str>) -> Found {
        let Ok(map) = self.inner.read() else {
            return Found::Absent;
        };
        let Some(entry) = map.get(id) else {
            return Found::Absent;
        };
        let bound = entry
            .client
            .as_deref()
            .filter(|owner| owner.starts_with(crate::transport::clients::PRINCIPAL));
        match bound {
            Some(owner) if client != Some(owner) => Found::Elsewhere,
            _ if entry.server.as_deref() == server => Found::Here(entry.addr.clone()),
            _ => Found::Elsewhere,
        }
    }

    /// Ends every session opened on the virtual server `server`, whose rules changed or which
    /// is gone: a session keeps the rules it was opened with, so its client must open another
    /// (its next request gets 404: the table forgets it at once, before it has stopped).
    pub fn end_on_server(&self, server: &str) -> usize {
        let Ok(mut map) = self.inner.write() else {
            return 0;
        };
        let mut on_it = Vec::new();
        map.retain(|_, entry| {
            let keep = entry.server.as_deref() != Some(server);
            if !keep {
                on_it.push(entry.addr.clone());
            }
            keep
        });
        drop(map);
        for addr in &on_it {
            addr.do_send(EndSession);
        }
        on_it.len()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.inner.read().map(|map| map.len()).unwrap_or(0)
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A presence for a new session, heard from now.
    pub(super) fn presence(&self, evictable: bool) -> Arc<Presence> {
        let presence = Presence {
            epoch: self.epoch,
            seen_ms: AtomicU64::new(0),
            streaming: AtomicBool::new(false),
            evictable,
        };
        presence.seen();
        Arc::new(presence)
    }

    /// Enters the session that `start` starts for `client`, unless `limits` are reached and no
    /// session they count has been idle long enough to make room; the count and the entry are
    /// one step, so concurrent starts cannot pass a limit together. A session ended for room
    /// leaves the table at once (its requests get 404) and is told to end.
    pub(super) fn admit(
        &self,
        (id, client, server): (Arc<str>, Option<Arc<str>>, Option<Arc<str>>),
        limits: Limits,
        presence: Arc<Presence>,
        start: impl FnOnce() -> Addr<Session>,
    ) -> Admitted {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut room = None;
        if let (Some(client), 1..) = (&client, limits.per_client) {
            let own = || {
                map.iter()
                    .filter(|(_, e)| e.client.as_ref() == Some(client))
            };
            if own().count() >= limits.per_client {
                match idlest(own(), limits.evict_after) {
                    Some(id) => room = Some(id),
                    None => return Admitted::ClientFull,
                }
            }
        }
        if room.is_none() && map.len() >= limits.max {
            match idlest(map.iter(), limits.evict_after) {
                Some(id) => room = Some(id),
                None => return Admitted::Full,
            }
        }
        let evicted = room.and_then(|id| map.remove(&id)).map(|e| e.addr);
        let addr = start();
        let entry = Entry {
            addr: addr.clone(),
            presence,
            client,
            server,
        };
        map.insert(id, entry);
        drop(map);
        match evicted {
            Some(old) => {
                old.do_send(EndSession);
                Admitted::InPlaceOf(addr)
            }
            None => Admitted::Room(addr),
        }
    }

    /// Forgets the session with `id`; later requests for it get 404.
    pub fn remove(&self, id: &str) {
        if let Ok(mut map) = self.inner.write() {
            map.remove(id);
        }
    }
}

/// The id of the session of `entries` idle the longest, if it has been idle `after`.
fn idlest<'a>(
    entries: impl Iterator<Item = (&'a Arc<str>, &'a Entry)>,
    after: Option<Duration>,
) -> Option<Arc<str>> {
    let after = after?;
    let idle = entries.filter_map(|(id, e)| Some((e.presence.idle()?, id)));
    let (idle, id) = idle.max_by_key(|(idle, _)| *idle)?;
    (idle >= after).then(|| id.clone())
}
