//! Sessions shared by the gateways of one PostgreSQL store (`server.advertise_url`): a session,
//! or a request of the stateless revision waiting for its client's input, lives in the process
//! that opened it, which notes itself in the store as its holder; a request for it that
//! reaches another gateway (a load balancer that does not keep clients on one gateway) is
//! forwarded to the holder as it came, and the holder's answer, a stream included, is passed
//! back as it goes. A forwarded request is marked, so it is never forwarded again; a holder
//! that cannot be reached has its note forgotten, and the client is answered as if it were
//! unknown (a session gets 404 and initializes again, as after any lost session). Each holder
//! keeps a presence lease in the store; what a holder whose presence ran out held (it died)
//! is forgotten by the others.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::gateway::Gateway;
use crate::store::{self, leases, session_holders, Pool};

/// The mark of a request one gateway forwarded to another.
const FORWARDED: &str = "mcpgate-forwarded";
/// How much longer than its own limit a forwarded request waits for the holder's answer to
/// start (the holder answers every request within `mcp.request_timeout_ms`).
const MARGIN: Duration = Duration::from_secs(5);

thread_local! {
    /// The client of this worker thread, whose connections to the other gateways are reused.
    /// Redirects are not followed: the client's headers go to the holder's URL only.
    static CLIENT: awc::Client = awc::Client::builder()
        .disable_redirects()
        .disable_timeout()
        .finish();
}

/// Holders remembered at most; past it, they are all forgotten (and read again as needed).
const MAX_REMEMBERED: usize = 10_000;
/// The lease that says a holder is alive (in the `leases` table): this, then the holder.
const PRESENCE: &str = "presence/";
/// Renewals a presence outlives: a holder that missed that many is gone, and what it held is
/// forgotten by the next gateway to look (each looks that often).
const PRESENCE_RENEWALS: u32 = 10;

/// This process as the holder of its sessions.
pub struct Holders {
    /// This process, as the store names it.
    holder: Arc<str>,
    /// Where the other gateways reach it.
    url: String,
    /// How long a forwarded request may wait for the holder's answer to start.
    timeout: Duration,
    /// The holder and its URL of what other gateways hold, by key, as read from the store:
    /// what is held never moves, and a holder that no longer has it answers 404 or cannot be
    /// reached, which forgets it here too.
    remembered: Mutex<HashMap<String, (String, String)>>,
}

impl Holders {
    /// `holder` reached at `url`, where every request is answered within `answered_within`.
    pub fn new(holder: Arc<str>, url: &str, answered_within: Duration) -> Holders {
        Holders {
            holder,
            url: url.trim_end_matches('/').to_string(),
            timeout: answered_within + MARGIN,
            remembered: Mutex::default(),
        }
    }

    /// The holder of `key` and its URL, as remembered.
    fn remembered(&self, key: &str) -> Option<(String, String)> {
        self.remembered.lock().ok()?.get(key).cloned()
    }

    /// Remembers (`Some`) or forgets (`None`) the holder of `key`.
    fn remember(&self, key: &str, holder: Option<(String, String)>) {
        let Ok(mut remembered) = self.remembered.lock() else {
            return;
        };
        match holder {
            Some(holder) => {
                if remembered.len() >= MAX_REMEMBERED {
                    remembered.clear();
                }
                remembered.insert(key.to_string(), holder);
            }
            None => {
                remembered.remove(key);
            }
        }
    }
}

/// What a process holds for a client.
#[derive(Debug, Clone, Copy)]
pub enum Held<'a> {
    /// The session with this id.
    Session(&'a str),
    /// The request waiting for input under this `requestState`.
    Request(&'a str),
}

impl Held<'_> {
    /// Its name in the store: a keyed hash, since ids and states are secrets.
    fn key(self, gateway: &Gateway) -> String {
        match self {
            Held::Session(id) => gateway.client_keys.of_session(id),
            Held::Request(state) => gateway.client_keys.of_request(state),
        }
    }
}

/// Notes in the store that this process holds `held`, to be awaited before its client may
/// use it elsewhere; a failed write is logged, and it is then served here only. A request's
/// note is forgotten after `keep` (a `requestState` is taken once, or expires).
pub fn hold(
    gateway: &Gateway,
    held: Held<'_>,
    keep: Option<Duration>,
) -> impl Future<Output = ()> + 'static {
    let noted = gateway.holders.as_ref().map(|holders| {
        let key = held.key(gateway);
        let (holder, url) = (holders.holder.to_string(), holders.url.clone());
        let (put_key, put_holder) = (key.clone(), holder.clone());
        let put = store::blocking(&gateway.pool, move |conn| {
            let now = crate::connector::now_ms();
            session_holders::put(conn, &put_key, (&put_holder, &url), now)
        });
        (put, (gateway.pool.clone(), key, holder))
    });
    async move {
        let Some((put, (pool, key, holder))) = noted else {
            return;
        };
        if let Err(err) = put.await {
            log::warn!(
                "a session or a waiting request was not shared with the other gateways: {err}"
            );
            return;
        }
        if let Some(keep) = keep {
            actix_rt::spawn(async move {
                actix_rt::time::sleep(keep).await;
                forget(&pool, key, holder);
            });
        }
    }
}

/// Forgets, in the store, that this process holds `held`; off the caller's time.
pub fn release(gateway: &Gateway, held: Held<'_>) {
    let Some(holders) = &gateway.holders else {
        return;
    };
    forget(&gateway.pool, held.key(gateway), holders.holder.to_string());
}

/// Forgets every session this process holds, and its presence (it is stopping).
pub async fn release_all(gateway: &Gateway) {
    let Some(holders) = &gateway.holders else {
        return;
    };
    let holder = holders.holder.clone();
    let removed = store::blocking(&gateway.pool, move |conn| {
        leases::release(conn, &format!("{PRESENCE}{holder}"), &holder)?;
        session_holders::remove_all(conn, &holder)
    });
    if let Err(err) = removed.await {
        log::warn!("the sessions this gateway held were not forgotten: {err}");
    }
}

/// Says in the store that this process is alive, now and then every `every`, each time for
/// ten renewals; and, every ten, forgets what holders whose presence ran out held (they died
/// without forgetting it). Holds the gateway only weakly between renewals, so that shutting
/// down is not held up.
pub async fn keep_presence(gateway: &web::Data<Gateway>, every: Duration) {
    if gateway.holders.is_none() {
        return;
    }
    // Present before the first session is noted: a note without a presence is pruned.
    renew(gateway, every, false).await;
    let weak = Arc::downgrade(&gateway.clone().into_inner());
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        for renewal in 1u32.. {
            ticks.tick().await;
            let Some(gateway) = weak.upgrade() else {
                return;
            };
            renew(&gateway, every, renewal % PRESENCE_RENEWALS == 0).await;
        }
    });
}

/// Renews this process's presence for [`PRESENCE_RENEWALS`] periods of `every`, and forgets
/// what gone holders held when `prune`.
async fn renew(gateway: &Gateway, every: Duration, prune: bool) {
    let Some(holders) = &gateway.holders else {
        return;
    };
    let holder = holders.holder.to_string();
    let length = every.saturating_mul(PRESENCE_RENEWALS).as_millis() as i64;
    let renewed = store::blocking(&gateway.pool, move |conn| {
        let now = leases::now_ms(conn)?;
        let name = format!("{PRESENCE}{holder}");
        leases::take(conn, &name, &holder, now, now.saturating_add(length))?;
        match prune {
            true => session_holders::prune(conn, PRESENCE, now),
            false => Ok(0),
        }
    });
    match renewed.await {
        Ok(0) => {}
        Ok(pruned) => {
            log::info!("forgot {pruned} sessions or requests held by gateways that are gone")
        }
        Err(err) => log::warn!("this gateway's presence was not renewed: {err}"),
    }
}

/// Forgets that `holder` holds what `key` names; off the caller's time.
fn forget(pool: &Pool, key: String, holder: String) {
    let removed = store::blocking(pool, move |conn| {
        session_holders::remove(conn, &key, &holder)
    });
    actix_rt::spawn(async move {
        if let Err(err) = removed.await {
            log::warn!("a session's holder was not forgotten: {err}");
        }
    });
}

/// Forwards `req` (with `body`), for what this process does not hold, to the gateway that
/// does; none when sessions are not shared, the request was forwarded already, no other
/// gateway holds it, or its holder cannot be reached.
pub async fn forward(
    gateway: &Gateway,
    req: &HttpRequest,
    held: Held<'_>,
    body: Bytes,
) -> Option<HttpResponse> {
    let holders = gateway.holders.as_ref()?;
    if req.headers().contains_key(FORWARDED) {
        return None;
    }
    let key = held.key(gateway);
    let (holder, url) = match holders.remembered(&key) {
        Some(known) => known,
        None => {
            let asked = key.clone();
            let found =
                store::blocking(&gateway.pool, move |conn| session_holders::of(conn, &asked));
            match found.await {
                Ok(Some(found)) => {
                    holders.remember(&key, Some(found.clone()));
                    found
                }
                Ok(None) => return None,
                Err(err) => {
                    log::warn!("the store was not asked which gateway holds a session: {err}");
                    return None;
                }
            }
        }
    };
    if *holder == *holders.holder {
        // This process's own note of a session it no longer has.
        holders.remember(&key, None);
        forget(&gateway.pool, key, holder);
        return None;
    }
    let target = format!("{url}{}", req.uri());
    let mut request = CLIENT
        .with(|client| client.request(req.method().clone(), target))
        .timeout(holders.timeout)
        .no_decompress()
        .insert_header((FORWARDED, "1"));
    for (name, value) in req.headers() {
        if passes(name) {
            request = request.append_header((name.clone(), value.clone()));
        }
    }
    let forwarded = &gateway.metrics.sessions_forwarded;
    let response = match request.send_body(body).await {
        Ok(response) => response,
        Err(err) => {
            log::info!("the gateway holding a session is not reachable at {url} ({err}); the session is forgotten");
            forwarded.with_label_values(&["holder_unreachable"]).inc();
            holders.remember(&key, None);
            forget(&gateway.pool, key, holder);
            return None;
        }
    };
    forwarded.with_label_values(&["forwarded"]).inc();
    if response.status() == actix_web::http::StatusCode::NOT_FOUND {
        holders.remember(&key, None);
        forget(&gateway.pool, key, holder);
    }
    let mut answer = HttpResponse::build(response.status());
    for (name, value) in response.headers() {
        if passes(name) {
            answer.append_header((name.clone(), value.clone()));
        }
    }
    Some(answer.streaming(response))
}

/// Whether a header passes from one hop to the next: not those of the connection itself, nor
/// the body's framing, which each hop sets.
fn passes(name: &HeaderName) -> bool {
    ![
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        && name.as_str() != "keep-alive"
        && name.as_str() != FORWARDED
}
