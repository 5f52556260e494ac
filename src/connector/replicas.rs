//! The replicas of one connector: choosing one per request, a breaker each, and retries.
//!
//! Lives on its connector's actor thread (shared through `Rc`, never sent elsewhere). A request
//! goes to a replica whose breaker allows it, chosen in turn or by fewest requests under way; a
//! backend failure counts against that replica alone, and a safe request is tried again on the
//! next allowed replica with exponential backoff and jitter, within the attempts and the total
//! deadline. When every breaker is open the request fails at once.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::backend::Backend;
use super::breaker::{Breaker, BreakerState};
use super::headers::redact_url;
use super::settings::{Balance, ConnectorSettings, RetrySettings};
use super::ConnectorError;

/// One request to a replica just allowed by its breaker; a call is counted in `inflight`
/// until it is dropped. A request whose future is dropped mid-way (its client left, or it was
/// cancelled) is uncounted too, and if it was the breaker's half-open probe, the breaker lets
/// the next request probe.
struct Attempt<'a> {
    breaker: &'a RefCell<Breaker>,
    inflight: Option<&'a Cell<usize>>,
    probe: bool,
}

impl<'a> Attempt<'a> {
    /// A request `breaker` just allowed, counted in `inflight` if given (a health check is not).
    fn start(breaker: &'a RefCell<Breaker>, inflight: Option<&'a Cell<usize>>) -> Self {
        if let Some(inflight) = inflight {
            inflight.set(inflight.get() + 1);
        }
        let probe = breaker.borrow().is_probing();
        Attempt {
            breaker,
            inflight,
            probe,
        }
    }

    /// The request ended with a result, which the caller records.
    fn finish(mut self) {
        self.probe = false;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(inflight) = self.inflight {
            inflight.set(inflight.get().saturating_sub(1));
        }
        if self.probe {
            self.breaker.borrow_mut().abandon_probe();
        }
    }
}

/// One replica.
pub struct Member {
    /// Its base URL without user information.
    pub url: String,
    backend: Backend,
    breaker: RefCell<Breaker>,
    inflight: Cell<usize>,
    last_error: RefCell<Option<String>>,
}

/// What an operator sees of a replica.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplicaView {
    /// Its base URL without user information.
    pub url: String,
    /// Its breaker's state.
    pub breaker: BreakerState,
    /// Requests under way.
    pub inflight: usize,
    /// The last failure it had, if any.
    pub last_error: Option<String>,
}

/// The replicas of one connector.
pub struct Replicas {
    connector: String,
    members: Vec<Member>,
    balance: Balance,
    next: Cell<usize>,
    retry: RetrySettings,
    on_change: Box<dyn Fn()>,
}

impl Replicas {
    /// The replicas `members` (each a URL or a process, and its client); `on_change` runs
    /// whenever a breaker changes state.
    pub fn new(
        settings: &ConnectorSettings,
        members: Vec<(String, Backend)>,
        on_change: Box<dyn Fn()>,
    ) -> Self {
        let members = members
            .into_iter()
            .map(|(url, backend)| Member {
                backend,
                url: redact_url(&url),
                breaker: RefCell::new(Breaker::new(settings.breaker.clone())),
                inflight: Cell::new(0),
                last_error: RefCell::new(None),
            })
            .collect();
        Replicas {
            connector: settings.name.clone(),
            members,
            balance: settings.balance,
            next: Cell::new(0),
            retry: settings.retry.clone(),
            on_change,
        }
    }

    /// Every replica's client.
    pub fn backends(&self) -> impl Iterator<Item = &Backend> {
        self.members.iter().map(|m| &m.backend)
    }

    /// Ends the MCP sessions and processes of every replica.
    pub fn shutdown(&self) {
        for backend in self.backends() {
            if let Backend::Mcp(mcp) = backend {
                mcp.client.disconnect();
            }
        }
    }

    /// Whether some replica's breaker is not open.
    pub fn available(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.breaker.borrow().state() != BreakerState::Open)
    }

    /// Each replica as operators see it.
    pub fn views(&self) -> Vec<ReplicaView> {
        self.members
            .iter()
            .map(|m| ReplicaView {
                url: m.url.clone(),
                breaker: m.breaker.borrow().state(),
                inflight: m.inflight.get(),
                last_error: m.last_error.borrow().clone(),
            })
            .collect()
    }

    /// Runs `op` on a replica; retries backend failures on the next replica when `retry` holds.
    /// `healthy` says whether a successful answer still speaks of a healthy backend.
    pub async fn call<T, F, Fut>(
        &self,
        retry: bool,
        healthy: impl Fn(&T) -> bool,
        op: F,
    ) -> Result<T, ConnectorError>
    where
        F: Fn(Backend) -> Fut,
        Fut: Future<Output = Result<T, ConnectorError>>,
    {
        let attempts = if retry { self.retry.attempts.max(1) } else { 1 };
        let deadline = Instant::now() + Duration::from_millis(self.retry.deadline_ms);
        let mut backoff = Duration::from_millis(self.retry.initial_backoff_ms);
        let mut attempt = 1;
        loop {
            let index = self.pick()?;
            let member = &self.members[index];
            let under_way = Attempt::start(&member.breaker, Some(&member.inflight));
            let result = op(member.backend.clone()).await;
            under_way.finish();
            let failure = match &result {
                Ok(value) => (!healthy(value)).then(|| "answered with a server error".to_string()),
                Err(err) if err.is_backend_failure() => Some(err.to_string()),
                Err(_) => None,
            };
            self.record(index, failure);
            match result {
                Err(err) if err.is_backend_failure() && attempt < attempts => {
                    let wait = jitter(backoff);
                    if Instant::now() + wait >= deadline {
                        return Err(err);
                    }
                    actix_rt::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_millis(self.retry.max_backoff_ms));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Probes every replica whose breaker allows it with `GET /info`; returns per replica the
    /// info body (`None` when skipped because its breaker is open) or the failure.
    pub async fn probe(&self, timeout: Duration) -> Vec<Option<Result<Value, ConnectorError>>> {
        let now = Instant::now();
        let allowed: Vec<bool> = self
            .members
            .iter()
            .map(|m| m.breaker.borrow_mut().allow(now).is_ok())
            .collect();
        let probes = self
            .members
            .iter()
            .zip(&allowed)
            .map(|(m, &allowed)| async move {
                if !allowed {
                    return None;
                }
                let under_way = Attempt::start(&m.breaker, None);
                let result = m.backend.probe(timeout).await;
                under_way.finish();
                Some(result)
            });
        let results = futures_util::future::join_all(probes).await;
        for (index, result) in results.iter().enumerate() {
            if let Some(result) = result {
                self.record(index, result.as_ref().err().map(ToString::to_string));
            }
        }
        results
    }

    /// The replica for the next request.
    fn pick(&self) -> Result<usize, ConnectorError> {
        let now = Instant::now();
        let start = self.next.get();
        self.next.set(start.wrapping_add(1));
        let inflight: Vec<usize> = self.members.iter().map(|m| m.inflight.get()).collect();
        let order = preference(self.balance, start, &inflight);
        let mut soonest = Duration::MAX;
        for index in order {
            let mut breaker = self.members[index].breaker.borrow_mut();
            let before = breaker.state();
            match breaker.allow(now) {
                Ok(()) => {
                    let changed = breaker.state() != before;
                    drop(breaker);
                    if changed {
                        (self.on_change)();
                    }
                    return Ok(index);
                }
                Err(wait) => soonest = soonest.min(wait),
            }
        }
        Err(ConnectorError::CircuitOpen {
            connector: self.connector.clone(),
            retry_after_ms: soonest.as_millis() as u64,
        })
    }

    fn record(&self, index: usize, failure: Option<String>) {
        let member = &self.members[index];
        let changed = member
            .breaker
            .borrow_mut()
            .record(Instant::now(), failure.is_none());
        if let Some(error) = failure {
            *member.last_error.borrow_mut() = Some(error);
        }
        if let Some(state) = changed {
            log::warn!(
                "connector `{}` replica {}: circuit {}",
                self.connector,
                member.url,
                match state {
                    BreakerState::Open => "opened",
                    BreakerState::HalfOpen => "half-open",
                    BreakerState::Closed => "closed",
                }
            );
            (self.on_change)();
        }
    }
}

/// The order in which replicas are tried: in turn from `start`, or fewest requests under way
/// first (ties in turn from `start`, so equal replicas share the load).
fn preference(balance: Balance, start: usize, inflight: &[usize]) -> Vec<usize> {
    let count = inflight.len();
    let mut order: Vec<usize> = (0..count).map(|i| (start + i) % count).collect();
    if balance == Balance::LeastInflight {
        order.sort_by_key(|&i| inflight[i]);
    }
    order
}

/// `base` scaled by a random factor in [0.5, 1.0).
fn jitter(base: Duration) -> Duration {
    base.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_starts_at_the_next_replica_and_wraps() {
        assert_eq!(preference(Balance::RoundRobin, 4, &[0, 9, 0]), [1, 2, 0]);
    }

    #[test]
    fn a_call_dropped_mid_way_is_no_longer_counted_in_flight_nor_the_probe() {
        let settings = crate::connector::breaker::BreakerSettings {
            consecutive_failures: 1,
            open_ms: 0,
            ..Default::default()
        };
        let breaker = RefCell::new(Breaker::new(settings));
        breaker.borrow_mut().record(Instant::now(), false);
        assert_eq!(breaker.borrow_mut().allow(Instant::now()), Ok(()));
        assert_eq!(breaker.borrow().state(), BreakerState::HalfOpen);
        let counter = Cell::new(0);
        let call = async {
            let _under_way = Attempt::start(&breaker, Some(&counter));
            std::future::pending::<()>().await;
        };
        let mut call = Box::pin(call);
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(call.as_mut().poll(&mut cx).is_pending());
        assert_eq!(counter.get(), 1);
        assert!(breaker.borrow_mut().allow(Instant::now()).is_err());

        drop(call);

        assert_eq!(counter.get(), 0);
        assert_eq!(breaker.borrow_mut().allow(Instant::now()), Ok(()));
    }

    #[test]
    fn least_inflight_prefers_the_idlest_and_breaks_ties_in_turn() {
        assert_eq!(preference(Balance::LeastInflight, 0, &[3, 0, 1]), [1, 2, 0]);
        assert_eq!(preference(Balance::LeastInflight, 1, &[0, 2, 0]), [2, 0, 1]);
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(50) && d < Duration::from_millis(100));
        }
    }
}
