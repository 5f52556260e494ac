//! Starting sessions: one entered in the session table (admitted while there is room, or in
//! the place of the session idle the longest), or the session of one stateless request, which
//! is in no table and ends with its request.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::sessions::{Admitted, Limits};
use super::{Exchange, Session, SessionsFull, Transport};
use crate::gateway::Gateway;
use crate::mcp::modern::{self, RequestMeta};
use crate::mcp::scope::Scope;

impl Session {
    /// A session not yet started: no revision, no capabilities, nothing under way.
    fn fresh(gateway: Arc<Gateway>, transport: Transport, scope: Scope) -> Session {
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        Session {
            client: id.clone(),
            id,
            transport,
            gateway,
            stream: None,
            version: None,
            client_capabilities: Arc::new(json!({})),
            log_level: None,
            last_seen: Instant::now(),
            in_flight: HashMap::new(),
            asked: HashMap::new(),
            next_ask: 1,
            scope,
            exchange: None,
            listen: None,
            subscribed: HashSet::new(),
            presence: None,
        }
    }

    /// Starts a session for `client` ([`crate::transport::clients::ClientKeys::of`]) and
    /// enters it in the session table; returns its id and address, or [`SessionsFull`] when
    /// `server.max_sessions` are open, or the client's `server.max_sessions_per_client`, and
    /// none can make room (counted in `mcpgate_sessions_refused_total`).
    pub fn start(
        gateway: Arc<Gateway>,
        (transport, client): (Transport, Option<String>),
        stream: Option<(mpsc::Sender<Bytes>, u64)>,
        scope: Scope,
    ) -> Result<(Arc<str>, Addr<Session>), SessionsFull> {
        let sessions = gateway.sessions.clone();
        let limits = Limits {
            max: gateway.server.max_sessions,
            per_client: gateway.server.max_sessions_per_client,
            evict_after: gateway.server.evict_idle_after(),
        };
        let metrics = gateway.metrics.clone();
        let presence = sessions.presence(transport == Transport::Streamable);
        let server = scope.server_name().map(Arc::from);
        let mut session = Session::fresh(gateway, transport, scope);
        session.stream = stream;
        session.presence = Some(presence.clone());
        let id = session.id.clone();
        let start = move || session.start();
        let keys = (id.clone(), client.map(Arc::from), server);
        let refused = |full: SessionsFull| {
            let refused = metrics
                .sessions_refused
                .with_label_values(&[transport.name()]);
            refused.inc();
            Err(full)
        };
        match sessions.admit(keys, limits, presence, start) {
            Admitted::Room(addr) => Ok((id, addr)),
            Admitted::InPlaceOf(addr) => {
                metrics.sessions_evicted.inc();
                Ok((id, addr))
            }
            Admitted::Full => refused(SessionsFull {
                max: limits.max,
                per_client: false,
            }),
            Admitted::ClientFull => refused(SessionsFull {
                max: limits.per_client,
                per_client: true,
            }),
        }
    }

    /// Starts the session of one stateless request: its revision, capabilities and log level
    /// are those of the request's `_meta`, backends' requests for the client go through
    /// `exchange`, and `client` names the principal it came from (empty for none). It is in no
    /// table; it ends with its request.
    pub fn start_stateless(
        gateway: Arc<Gateway>,
        scope: Scope,
        meta: &RequestMeta,
        exchange: Exchange,
        client: &str,
    ) -> Addr<Session> {
        let version = modern::VERSIONS
            .iter()
            .find(|v| **v == meta.version)
            .copied()
            .unwrap_or(modern::VERSIONS[0]);
        let mut session = Session::fresh(gateway, Transport::Stateless, scope);
        session.client = Arc::from(client);
        session.version = Some(version);
        session.client_capabilities = Arc::new(meta.capabilities.clone());
        session.log_level = meta.log_level;
        session.exchange = Some(exchange);
        session.start()
    }
}
