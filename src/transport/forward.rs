//! Sessions shared by the gateways of one PostgreSQL store (`server.advertise_url`): a session
//! lives in the process that opened it, which notes itself in the store as its holder; a
//! request for it that reaches another gateway (a load balancer that does not keep clients on
//! one gateway) is forwarded to the holder as it came, and the holder's answer, a stream
//! included, is passed back as it goes. A forwarded request is marked, so it is never forwarded
//! again; a holder that cannot be reached has its session forgotten, and the client gets 404
//! and initializes again, as after any lost session.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::gateway::Gateway;
use crate::store::{self, session_holders};

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

/// This process as the holder of its sessions.
pub struct Holders {
    /// This process, as the store names it.
    holder: Arc<str>,
    /// Where the other gateways reach it.
    url: String,
    /// How long a forwarded request may wait for the holder's answer to start.
    timeout: Duration,
}

impl Holders {
    /// `holder` reached at `url`, where every request is answered within `answered_within`.
    pub fn new(holder: Arc<str>, url: &str, answered_within: Duration) -> Holders {
        Holders {
            holder,
            url: url.trim_end_matches('/').to_string(),
            timeout: answered_within + MARGIN,
        }
    }
}

/// Notes in the store that this process holds the session `id`, before its client may use it
/// elsewhere; a failed write is logged, and the session is then served here only.
pub async fn hold(gateway: &Gateway, id: &str) {
    let Some(holders) = &gateway.holders else {
        return;
    };
    let key = gateway.client_keys.of_session(id);
    let (holder, url) = (holders.holder.clone(), holders.url.clone());
    let put = store::blocking(&gateway.pool, move |conn| {
        let now = crate::connector::now_ms();
        session_holders::put(conn, &key, (&holder, &url), now)
    });
    if let Err(err) = put.await {
        log::warn!("a session was not shared with the other gateways: {err}");
    }
}

/// Forgets, in the store, that this process holds the session `id`; off the caller's time.
pub fn release(gateway: &Gateway, id: &str) {
    let Some(holders) = &gateway.holders else {
        return;
    };
    let key = gateway.client_keys.of_session(id);
    forget(gateway, key, holders.holder.to_string());
}

/// Forgets every session this process holds (it is stopping).
pub async fn release_all(gateway: &Gateway) {
    let Some(holders) = &gateway.holders else {
        return;
    };
    let holder = holders.holder.clone();
    let removed = store::blocking(&gateway.pool, move |conn| {
        session_holders::remove_all(conn, &holder)
    });
    if let Err(err) = removed.await {
        log::warn!("the sessions this gateway held were not forgotten: {err}");
    }
}

/// Forgets that `holder` holds the session `key`; off the caller's time.
fn forget(gateway: &Gateway, key: String, holder: String) {
    let removed = store::blocking(&gateway.pool, move |conn| {
        session_holders::remove(conn, &key, &holder)
    });
    actix_rt::spawn(async move {
        if let Err(err) = removed.await {
            log::warn!("a session's holder was not forgotten: {err}");
        }
    });
}

/// Forwards `req` (with `body`), for the session `id` that this process does not hold, to the
/// gateway that does; none when sessions are not shared, the request was forwarded already,
/// no other gateway holds the session, or its holder cannot be reached.
pub async fn forward(
    gateway: &Gateway,
    req: &HttpRequest,
    id: &str,
    body: Bytes,
) -> Option<HttpResponse> {
    let holders = gateway.holders.as_ref()?;
    if req.headers().contains_key(FORWARDED) {
        return None;
    }
    let key = gateway.client_keys.of_session(id);
    let asked = key.clone();
    let found = store::blocking(&gateway.pool, move |conn| session_holders::of(conn, &asked));
    let (holder, url) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => return None,
        Err(err) => {
            log::warn!("the store was not asked which gateway holds a session: {err}");
            return None;
        }
    };
    if *holder == *holders.holder {
        // This process's own note of a session it no longer has.
        forget(gateway, key, holder);
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
            forget(gateway, key, holder);
            return None;
        }
    };
    forwarded.with_label_values(&["forwarded"]).inc();
    if response.status() == actix_web::http::StatusCode::NOT_FOUND {
        forget(gateway, key, holder);
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
