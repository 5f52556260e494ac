//! The circuit breaker of one replica: a plain state machine over results and instants, no I/O.
//!
//! Closed: requests pass; it opens after `consecutive_failures` failures in a row, or when at
//! least `min_calls` results in the last `window_ms` show an error rate of `error_rate` or more.
//! Open: requests are refused at once until `open_ms` has passed. Half-open: one probe passes; its
//! success closes the breaker, its failure opens it again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Thresholds of a breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Failures in a row that open the breaker.
    pub consecutive_failures: u32,
    /// Share of failures in the window that opens the breaker (0–1).
    pub error_rate: f64,
    /// Results needed in the window before the error rate counts.
    pub min_calls: u32,
    /// Length of the error-rate window.
    pub window_ms: u64,
    /// How long an open breaker refuses before letting a probe through.
    pub open_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            error_rate: 0.5,
            min_calls: 20,
            window_ms: 30_000,
            open_ms: 5_000,
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests pass.
    Closed,
    /// Requests are refused.
    Open,
    /// One probe may pass.
    HalfOpen,
}

impl BreakerState {
    /// 0 closed, 1 half-open, 2 open: for a gauge.
    pub fn as_number(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

/// A circuit breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    consecutive: u32,
    window: VecDeque<(Instant, bool)>,
    opened_at: Option<Instant>,
    probing: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Breaker {
            settings,
            state: BreakerState::Closed,
            consecutive: 0,
            window: VecDeque::new(),
            opened_at: None,
            probing: false,
        }
    }

    /// The current state (an open breaker past its wait still says open until asked to allow).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a request may go now; if not, how long until a probe may.
    pub fn allow(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => {
                let open_for = Duration::from_millis(self.settings.open_ms);
                let since = self.opened_at.map_or(open_for, |at| now.duration_since(at));
                if since >= open_for {
                    self.state = BreakerState::HalfOpen;
                    self.probing = true;
                    Ok(())
                } else {
                    Err(open_for - since)
                }
            }
            BreakerState::HalfOpen if self.probing => Err(Duration::from_millis(100)),
            BreakerState::HalfOpen => {
                self.probing = true;
                Ok(())
            }
        }
    }

    /// Records a result; returns the new state if it changed.
    pub fn record(&mut self, now: Instant, success: bool) -> Option<BreakerState> {
        let before = self.state;
        self.window.push_back((now, success));
        let window = Duration::from_millis(self.settings.window_ms);
        while let Some(&(at, _)) = self.window.front() {
            if now.duration_since(at) > window {
                self.window.pop_front();
            } else {
                break;
            }
        }
        match (self.state, success) {
            (BreakerState::HalfOpen, true) => self.close(),
            (BreakerState::HalfOpen, false) => self.open(now),
            (BreakerState::Closed, true) => self.consecutive = 0,
            (BreakerState::Closed, false) => {
                self.consecutive += 1;
                if self.consecutive >= self.settings.consecutive_failures || self.rate_exceeded() {
                    self.open(now);
                }
            }
            (BreakerState::Open, _) => {}
        }
        (self.state != before).then_some(self.state)
    }

    /// The probe let through in half-open ended without a result (its caller left, or it
    /// was cancelled): the next request may probe instead.
    pub fn abandon_probe(&mut self) {
        if self.state == BreakerState::HalfOpen {
            self.probing = false;
        }
    }

    /// Whether the request just allowed is the half-open probe.
    pub fn is_probing(&self) -> bool {
        self.state == BreakerState::HalfOpen && self.probing
    }

    fn rate_exceeded(&self) -> bool {
        let calls = self.window.len();
        if calls == 0 || calls < self.settings.min_calls as usize {
            return false;
        }
        let failures = self.window.iter().filter(|(_, ok)| !ok).count();
        failures as f64 / calls as f64 >= self.settings.error_rate
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.probing = false;
    }

    fn close(&mut self) {
        self.state = BreakerState::Closed;
        self.consecutive = 0;
        self.window.clear();
        self.probing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings {
            consecutive_failures: 3,
            error_rate: 0.5,
            min_calls: 4,
            window_ms: 1_000,
            open_ms: 500,
        })
    }

    #[test]
    fn three_consecutive_failures_open_the_circuit() {
        let mut b = breaker();
        let t = Instant::now();
        assert_eq!(b.record(t, false), None);
        assert_eq!(b.record(t, false), None);
        assert_eq!(b.record(t, false), Some(BreakerState::Open));
        assert!(b.allow(t).is_err());
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let mut b = Breaker::new(BreakerSettings {
            min_calls: 100,
            ..breaker().settings
        });
        let t = Instant::now();
        b.record(t, false);
        b.record(t, false);
        b.record(t, true);
        b.record(t, false);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_error_rate_over_the_threshold_opens_once_enough_calls_were_seen() {
        let mut b = breaker();
        let t = Instant::now();
        for ok in [true, false, true] {
            b.record(t, ok);
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "three calls are below min_calls"
        );
        assert_eq!(b.record(t, false), Some(BreakerState::Open));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut b = breaker();
        let t = Instant::now();
        b.record(t, false);
        b.record(t, true);
        let later = t + Duration::from_millis(1_500);
        b.record(later, true);
        b.record(later, false);
        b.record(later, true);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_open_breaker_refuses_until_its_wait_passes_then_lets_one_probe_through() {
        let mut b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(t, false);
        }
        let wait = b.allow(t + Duration::from_millis(100)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(400));
        assert!(b.allow(t + Duration::from_millis(500)).is_ok());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(
            b.allow(t + Duration::from_millis(501)).is_err(),
            "one probe at a time"
        );
    }

    #[test]
    fn a_successful_probe_closes_and_a_failed_one_reopens() {
        let mut b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(t, false);
        }
        let probe = t + Duration::from_millis(600);
        b.allow(probe).unwrap();
        assert_eq!(b.record(probe, false), Some(BreakerState::Open));
        let second = probe + Duration::from_millis(600);
        b.allow(second).unwrap();
        assert_eq!(b.record(second, true), Some(BreakerState::Closed));
        assert!(b.allow(second).is_ok());
    }
}
