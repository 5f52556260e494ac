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

/// Whether `errors` out of `uses` show, at 95% confidence (one-sided binomial z-test), an error
/// rate above `limit`.
pub(super) fn above(errors: usize, uses: usize, limit: f64) -> bool {
    if uses == 0 {
        return false;
    }
    let p0 = limit.clamp(0.01, 0.99);
    let rate = errors as f64 / uses as f64;
    (rate - p0) / (p0 * (1.0 - p0) / uses as f64).sqrt() > 1.645
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
}
