//! Connectors whose actor is gone without being retired (a panic in one of their handlers
//! drops the actor past its supervisor): started again from their settings.

use actix::prelude::*;

use super::{ConnectorRegistry, Slot};
use crate::connector::{ConnectorStatus, Health};

impl ConnectorRegistry {
    /// Starts again every connector whose actor is gone though it was not retired: a panic in
    /// one of its handlers drops it, supervisor and all. Until the new actor's first check it is
    /// unavailable, saying why, so that neither calls nor the ops API take it for what it was.
    pub(super) fn revive(&mut self, ctx: &mut Context<Self>) {
        let gone: Vec<String> = self
            .connectors
            .iter()
            .filter(|(_, slot)| !slot.addr.connected())
            .map(|(name, _)| name.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for name in gone {
            let Some(old) = self.connectors.remove(&name) else {
                continue;
            };
            log::error!("connector `{name}` stopped unexpectedly; starting it again");
            self.metrics
                .connector_restarts
                .with_label_values(&[&name])
                .inc();
            let reason = "it stopped unexpectedly and is starting again".to_string();
            let mut status = ConnectorStatus::unknown(Vec::new());
            status.set_health(Health::Unhealthy, Some(reason.clone()));
            status.available = false;
            status.last_error = Some(reason);
            self.metrics.connector_up.with_label_values(&[&name]).set(0);
            let slot = Slot {
                addr: self.spawn(&old.settings, &old.headers, ctx),
                status: Some(status),
                ..old
            };
            self.connectors.insert(name, slot);
        }
        self.publish();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use std::sync::Arc;
    use std::time::Duration;

    use super::super::*;

    /// What a bug in one of a connector's handlers does.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Crash;

    impl Handler<Crash> for Connector {
        type Result = ();

        fn handle(&mut self, _msg: Crash, _ctx: &mut Self::Context) {
            panic!("a bug in a connector's handler");
        }
    }

    /// The published address of `name` once `ready` holds of it, waiting up to 5 s.
    async fn published_when(
        published: &CatalogHandle,
        ready: impl Fn(&Addr<Connector>) -> bool,
    ) -> Addr<Connector> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let addr = published.load().connectors.get("c").cloned();
            match addr {
                Some(addr) if ready(&addr) => return addr,
                _ if Instant::now() > deadline => panic!("the published connector never got ready"),
                _ => actix_rt::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    #[actix_rt::test]
    async fn a_connector_whose_actor_panics_is_started_again_and_shown_unavailable_meanwhile() {
        // A backend that takes connections and never answers: the new actor's first check
        // stays under way, so what the registry shows meanwhile is its own.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let published = CatalogHandle::default();
        let metrics = Arc::new(Metrics::default());
        let registry = ConnectorRegistry::new("_".into(), published.clone(), metrics.clone());
        let registry = registry.start();
        let register = RegisterConnector {
            settings: Arc::new(serde_json::from_value(json!({"name": "c", "url": url})).unwrap()),
            headers: Arc::from(Vec::new()),
            source: Source::Api,
        };
        registry.send(register).await.unwrap().unwrap();
        let restarts = || metrics.connector_restarts.with_label_values(&["c"]).get();
        let before = registry.send(ListConnectors).await.unwrap();

        let first = published_when(&published, |_| true).await;
        first.do_send(Crash);
        let second = published_when(&published, |a| *a != first).await;
        let after = registry.send(ListConnectors).await.unwrap();
        second.do_send(Crash);
        let third = published_when(&published, |a| *a != second).await;

        assert!(before[0].status.available);
        assert!(!first.connected() && !second.connected());
        assert!(third.connected());
        assert_eq!(restarts(), 2);
        let status = &after[0].status;
        assert!(!status.available, "{status:?}");
        assert_eq!(
            status.reason.as_deref(),
            Some("it stopped unexpectedly and is starting again")
        );
        assert!(published.load().unavailable.contains_key("c"));
    }
}
