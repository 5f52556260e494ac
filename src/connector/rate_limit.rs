//! A token bucket: `rate_per_sec` tokens flow in, at most `burst` are held, each call takes one.
//! Plain data over instants, no I/O.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The limit of one connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Calls per second allowed on average.
    pub rate_per_sec: f64,
    /// Calls allowed at once after a quiet spell.
    pub burst: u32,
}

/// A token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(settings: &RateLimitSettings, now: Instant) -> Self {
        let burst = f64::from(settings.burst.max(1));
        TokenBucket {
            rate: settings.rate_per_sec,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // At most an hour: a rate so small that the wait overflows a `Duration` waits that.
            let wait = Duration::try_from_secs_f64((1.0 - self.tokens) / self.rate);
            Err(wait.map_or(MAX_WAIT, |wait| wait.min(MAX_WAIT)))
        }
    }
}

/// The longest wait a refused call is told of.
const MAX_WAIT: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(now: Instant) -> TokenBucket {
        let settings = RateLimitSettings {
            rate_per_sec: 10.0,
            burst: 3,
        };
        TokenBucket::new(&settings, now)
    }

    #[test]
    fn a_burst_passes_then_calls_wait_for_tokens() {
        let t = Instant::now();
        let mut b = bucket(t);
        for _ in 0..3 {
            assert!(b.take(t).is_ok());
        }
        let wait = b.take(t).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
    }

    #[test]
    fn tokens_come_back_at_the_rate_up_to_the_burst() {
        let t = Instant::now();
        let mut b = bucket(t);
        for _ in 0..3 {
            b.take(t).unwrap();
        }
        assert!(b.take(t + Duration::from_millis(100)).is_ok());
        assert!(b.take(t + Duration::from_millis(100)).is_err());
        let much_later = t + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take(much_later).is_ok());
        }
        assert!(b.take(much_later).is_err());
    }

    #[test]
    fn a_rate_too_small_for_a_duration_waits_an_hour_rather_than_panicking() {
        let t = Instant::now();
        let settings = RateLimitSettings {
            rate_per_sec: 1e-300,
            burst: 1,
        };
        let mut b = TokenBucket::new(&settings, t);
        b.take(t).unwrap();
        assert_eq!(b.take(t + Duration::from_secs(1)), Err(MAX_WAIT));
    }
}
