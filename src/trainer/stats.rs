//! A target's live figures: what the trainer's window keeps of each signal, and the counts and
//! rates computed from it. Pure.

use std::time::Instant;

use serde::Serialize;

/// A target's live figures over the trainer's window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetView {
    /// `tool` or `prompt`.
    pub kind: String,
    /// Its name as clients see it.
    pub target: String,
    /// Ratings received.
    pub ratings: usize,
    /// Their mean, 0–1, if any.
    pub mean_rating: Option<f64>,
    /// Suggestions received.
    pub suggestions: usize,
    /// Tool calls (or prompt fetches) seen.
    pub uses: usize,
    /// Of those, how many failed (tool error, protocol error, reported error).
    pub errors: usize,
    /// `errors / uses` (0 without uses).
    pub error_rate: f64,
}

impl TargetView {
    /// The figures of a target with no signal in the window.
    pub fn quiet(kind: &str, target: &str) -> Self {
        view_of(kind, target, std::iter::empty())
    }
}

/// Whether `errors` out of `uses` show an error rate above `limit` at level `alpha`: an exact
/// one-sided binomial test (the chance of `errors` or more at the rate `limit` is under
/// `alpha`). Exact, because with the few uses a watch looks at, the normal approximation
/// rolls back more often than its level says.
pub(super) fn above(errors: usize, uses: usize, limit: f64, alpha: f64) -> bool {
    let p = limit.clamp(0.01, 0.99);
    if uses == 0 || errors as f64 <= uses as f64 * p {
        return false;
    }
    upper_tail(errors, uses, p) < alpha
}

/// The chance of `k` or more successes in `n` draws at the rate `p`, for `k` above the mean.
fn upper_tail(k: usize, n: usize, p: f64) -> f64 {
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    // ln of the chance of exactly k, then of each next count in turn.
    let mut ln = (1..=k)
        .map(|i| ((n - k + i) as f64 / i as f64).ln())
        .sum::<f64>()
        + k as f64 * ln_p
        + (n - k) as f64 * ln_q;
    let mut total = 0.0;
    for j in k..=n {
        let term = ln.exp();
        total += term;
        if term <= total * 1e-12 {
            break;
        }
        ln += ((n - j) as f64 / (j + 1) as f64).ln() + ln_p - ln_q;
    }
    total.min(1.0)
}

/// What the window keeps of one signal.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) at: Instant,
    pub(super) signal: String,
    pub(super) rating: Option<f64>,
}

/// The figures of a run of signals.
pub(super) fn view_of<'a>(
    kind: &str,
    target: &str,
    seen: impl Iterator<Item = &'a Seen>,
) -> TargetView {
    let seen: Vec<&Seen> = seen.collect();
    let ratings: Vec<f64> = seen.iter().filter_map(|s| s.rating).collect();
    let uses = seen
        .iter()
        .filter(|s| {
            matches!(
                s.signal.as_str(),
                "success" | "tool_error" | "protocol_error" | "served"
            )
        })
        .count();
    let errors = seen
        .iter()
        .filter(|s| matches!(s.signal.as_str(), "tool_error" | "protocol_error" | "error"))
        .count();
    TargetView {
        kind: kind.to_string(),
        target: target.to_string(),
        ratings: ratings.len(),
        mean_rating: (!ratings.is_empty())
            .then(|| ratings.iter().sum::<f64>() / ratings.len() as f64),
        suggestions: seen.iter().filter(|s| s.signal == "suggestion").count(),
        uses,
        errors,
        error_rate: if uses == 0 {
            0.0
        } else {
            errors as f64 / uses as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(signal: &str, rating: Option<f64>) -> Seen {
        Seen {
            at: Instant::now(),
            signal: signal.into(),
            rating,
        }
    }

    #[test]
    fn a_view_counts_ratings_uses_and_errors() {
        let window: Vec<Seen> = vec![
            seen("success", None),
            seen("tool_error", None),
            seen("success", None),
            seen("protocol_error", None),
            seen("rating", Some(1.0)),
            seen("rating", Some(0.5)),
            seen("suggestion", None),
        ];
        let view = view_of("tool", "t", window.iter());
        assert_eq!((view.uses, view.errors, view.ratings), (4, 2, 2));
        assert_eq!(view.error_rate, 0.5);
        assert_eq!(view.mean_rating, Some(0.75));
        assert_eq!(view.suggestions, 1);
    }

    #[test]
    fn the_binomial_tail_is_exact_and_holds_for_large_counts() {
        // P(X >= 5) for X ~ Binomial(10, 0.2) = 0.032793...
        assert!((upper_tail(5, 10, 0.2) - 0.032_793_6).abs() < 1e-6);
        assert!((upper_tail(10, 10, 0.5) - 0.5f64.powi(10)).abs() < 1e-12);
        // A million uses: no underflow, and a rate just over the limit is not yet a breach.
        assert!(above(210_000, 1_000_000, 0.2, 0.05));
        assert!(!above(200_100, 1_000_000, 0.2, 0.05));
        assert!(!above(1, 10, 0.2, 0.05), "under the mean");
        assert!(!above(0, 0, 0.2, 0.05));
    }
}
