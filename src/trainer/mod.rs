//! The `Trainer` actor: learns from feedback on the tools and prompts the gateway serves.
//!
//! Owns the live view of every target's feedback: ratings, suggestions, tool-call outcomes and
//! prompt fetches over a sliding window, fed by [`RecordFeedback`] messages (never on a request's
//! time). This is what its triggers (error rate, mean rating, volume) read. It does not store
//! feedback (the feedback recorder does) and does not serve anything.

pub mod safety;
pub mod served;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;

use crate::store::feedback::NewFeedback;

/// One piece of feedback or one automatic signal.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordFeedback(pub NewFeedback);

/// Every target with its live figures, in kind and name order.
#[derive(Message)]
#[rtype(result = "Vec<TargetView>")]
pub struct ListTargets;

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

/// What the window keeps of one signal.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    signal: String,
    rating: Option<f64>,
}

/// The trainer actor.
pub struct Trainer {
    /// How far back the live figures look.
    window: Duration,
    /// Signals per (kind, target), oldest first.
    seen: BTreeMap<(String, String), VecDeque<Seen>>,
}

impl Trainer {
    /// A trainer whose live figures cover `window`.
    pub fn new(window: Duration) -> Self {
        Trainer {
            window,
            seen: BTreeMap::new(),
        }
    }

    fn view(kind: &str, target: &str, seen: &VecDeque<Seen>) -> TargetView {
        let ratings: Vec<f64> = seen.iter().filter_map(|s| s.rating).collect();
        let is_use = |s: &&Seen| {
            matches!(
                s.signal.as_str(),
                "success" | "tool_error" | "protocol_error" | "served"
            )
        };
        let uses = seen.iter().filter(is_use).count();
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
}

impl Actor for Trainer {
    type Context = Context<Self>;
}

impl Handler<RecordFeedback> for Trainer {
    type Result = ();

    fn handle(&mut self, msg: RecordFeedback, _ctx: &mut Self::Context) {
        let feedback = msg.0;
        let now = Instant::now();
        let key = (feedback.target_kind, feedback.target);
        let seen = self.seen.entry(key).or_default();
        seen.push_back(Seen {
            at: now,
            signal: feedback.signal,
            rating: feedback.rating,
        });
        while seen
            .front()
            .is_some_and(|s| now.duration_since(s.at) > self.window)
        {
            seen.pop_front();
        }
    }
}

impl Handler<ListTargets> for Trainer {
    type Result = MessageResult<ListTargets>;

    fn handle(&mut self, _msg: ListTargets, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.seen
                .iter()
                .map(|((kind, target), seen)| Trainer::view(kind, target, seen))
                .collect(),
        )
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
        let window: VecDeque<Seen> = [
            seen("success", None),
            seen("tool_error", None),
            seen("success", None),
            seen("protocol_error", None),
            seen("rating", Some(1.0)),
            seen("rating", Some(0.5)),
            seen("suggestion", None),
        ]
        .into();
        let view = Trainer::view("tool", "t", &window);
        assert_eq!((view.uses, view.errors, view.ratings), (4, 2, 2));
        assert_eq!(view.error_rate, 0.5);
        assert_eq!(view.mean_rating, Some(0.75));
        assert_eq!(view.suggestions, 1);
    }
}
