//! A connector's health as operators see it, and how one health check decides it. Pure.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::replicas::ReplicaView;
use super::ConnectorError;

/// How a connector is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not checked yet.
    Unknown,
    /// Every probed replica answers and the tool list loads.
    Healthy,
    /// It serves, but a replica fails or the tool list does not load.
    Degraded,
    /// No replica answers.
    Unhealthy,
}

/// What the registry and operators know of a connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorStatus {
    /// Its health.
    pub health: Health,
    /// Why, when not healthy.
    pub reason: Option<String>,
    /// When the health last changed, milliseconds since the Unix epoch.
    pub since_ms: i64,
    /// Whether its entries are in the catalog: some replica's circuit is not open. (Failed
    /// health probes count against the breakers, so a dead backend leaves after
    /// `breaker.consecutive_failures` checks, not on one lost probe.)
    pub available: bool,
    /// Its replicas.
    pub replicas: Vec<ReplicaView>,
    /// Its last failure, if any.
    pub last_error: Option<String>,
    /// What its `GET /info` said.
    pub info: Option<Value>,
}

impl ConnectorStatus {
    /// The status before the first check.
    pub fn unknown(replicas: Vec<ReplicaView>) -> Self {
        ConnectorStatus {
            health: Health::Unknown,
            reason: None,
            since_ms: now_ms(),
            available: true,
            replicas,
            last_error: None,
            info: None,
        }
    }

    /// Moves to `health` for `reason`, keeping `since_ms` when the health stays the same.
    pub fn set_health(&mut self, health: Health, reason: Option<String>) {
        if health != self.health {
            self.since_ms = now_ms();
        }
        if let Some(reason) = &reason {
            self.last_error = Some(reason.clone());
        }
        self.health = health;
        self.reason = reason;
    }
}

/// Decides the health from one check: each replica's probe (`None`: skipped, circuit open) and
/// whether the tool list loaded.
pub fn assess(
    probes: &[Option<Result<Value, ConnectorError>>],
    lists: Result<(), &ConnectorError>,
) -> (Health, Option<String>) {
    let answered = probes.iter().filter(|p| matches!(p, Some(Ok(_)))).count();
    let first_failure = probes.iter().find_map(|p| match p {
        Some(Err(err)) => Some(err.to_string()),
        None => Some("circuit open".to_string()),
        Some(Ok(_)) => None,
    });
    if answered == 0 {
        let reason = first_failure.unwrap_or_else(|| "no replica".to_string());
        return (Health::Unhealthy, Some(reason));
    }
    if let Err(err) = lists {
        return (
            Health::Degraded,
            Some(format!("tool list does not load: {err}")),
        );
    }
    match first_failure {
        Some(reason) if answered < probes.len() => (Health::Degraded, Some(reason)),
        _ => (Health::Healthy, None),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn down() -> ConnectorError {
        ConnectorError::Unreachable {
            connector: "c".into(),
            reason: "refused".into(),
        }
    }

    #[test]
    fn all_replicas_answering_and_lists_loading_is_healthy() {
        let probes = [Some(Ok(json!({}))), Some(Ok(json!({})))];
        assert_eq!(assess(&probes, Ok(())), (Health::Healthy, None));
    }

    #[test]
    fn one_replica_failing_is_degraded_with_its_reason() {
        let probes = [Some(Ok(json!({}))), Some(Err(down()))];
        let (health, reason) = assess(&probes, Ok(()));
        assert_eq!(health, Health::Degraded);
        assert!(reason.unwrap().contains("refused"));
    }

    #[test]
    fn a_tool_list_that_does_not_load_is_degraded() {
        let probes = [Some(Ok(json!({})))];
        let (health, reason) = assess(&probes, Err(&down()));
        assert_eq!(health, Health::Degraded);
        assert!(reason.unwrap().starts_with("tool list does not load"));
    }

    #[test]
    fn no_replica_answering_is_unhealthy() {
        let probes = [Some(Err(down())), None];
        assert_eq!(assess(&probes, Ok(())).0, Health::Unhealthy);
    }
}
