//! A target's live figures: what the trainer's window keeps of each signal, and the counts and
//! rates computed from it. Pure.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
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
    /// The uses by the version they were served: production, an experiment's arm, or 1 (the
    /// backend's own text) where the version could not be served. Uses from before the target
    /// had versions are in `uses` only.
    pub uses_by_version: BTreeMap<i64, usize>,
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

/// Whether `errors` of `uses` since a deploy show a failure rate above the rate `before` it
/// (its failures and uses) plus `margin`, at level `alpha` (`z`: the normal quantile that
/// leaves `alpha` above it). Both tests must find it: the exact test against the rate seen
/// before ([`above`]) and the Farrington–Manning score test, which counts the noise of that
/// rate too. Alone, the first rolls back more often than its level when few uses came before,
/// the second when few came after. With nothing before, the rate before is taken as 0.
pub(super) fn above_before(
    (errors, uses): (usize, usize),
    before: (usize, usize),
    margin: f64,
    (alpha, z): (f64, f64),
) -> bool {
    let rate = before.0 as f64 / before.1.max(1) as f64;
    if !above(errors, uses, rate + margin, alpha) {
        return false;
    }
    before.1 == 0 || score((errors, uses), before, margin) > z
}

/// The Farrington–Manning score statistic of "the rate of `a` exceeds that of `b` by more than
/// `delta`": the observed excess over `delta`, in standard errors taken at the two rates that
/// fit the counts best with an excess of exactly `delta` (the root of a cubic).
fn score((e1, n1): (usize, usize), (e2, n2): (usize, usize), delta: f64) -> f64 {
    let (n1, n2) = (n1.max(1) as f64, n2.max(1) as f64);
    let (p1, p2) = (e1 as f64 / n1, e2 as f64 / n2);
    let theta = n2 / n1;
    let a = 1.0 + theta;
    let b = -(1.0 + theta + p1 + theta * p2 + delta * (theta + 2.0));
    let c = delta * delta + delta * (2.0 * p1 + theta + 1.0) + p1 + theta * p2;
    let d = -p1 * delta * (1.0 + delta);
    let v = b.powi(3) / (27.0 * a.powi(3)) - b * c / (6.0 * a * a) + d / (2.0 * a);
    let u = (b * b / (9.0 * a * a) - c / (3.0 * a))
        .max(0.0)
        .sqrt()
        .copysign(v);
    if u == 0.0 {
        return 0.0;
    }
    let w = (std::f64::consts::PI + (v / u.powi(3)).clamp(-1.0, 1.0).acos()) / 3.0;
    let fit1 = (2.0 * u * w.cos() - b / (3.0 * a)).clamp(1e-9, 1.0 - 1e-9);
    let fit2 = (fit1 - delta).clamp(1e-9, 1.0 - 1e-9);
    let se = (fit1 * (1.0 - fit1) / n1 + fit2 * (1.0 - fit2) / n2).sqrt();
    (p1 - p2 - delta) / se
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
    /// The version it is about, if known ([`version_of`]).
    pub(super) version: Option<i64>,
    /// Its session, if known ([`session_key`]).
    pub(super) session: Option<u64>,
}

/// A session as [`Seen`] keeps it: a hash of its id, which is all the window needs to tell
/// sessions apart.
pub(super) fn session_key(session: Option<&str>) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    session?.hash(&mut hasher);
    Some(hasher.finish())
}

/// The version a signal about a target is about: the one it names; else, for a client's
/// feedback (`automatic` false) from a session, the one `last` gives for the session (what
/// the session's latest signal about the target was about). A prompt version is served only
/// to fetches it fits, so a session that rates a prompt after a fetch served the backend's
/// text rates that text, whatever is in production.
pub(super) fn version_of<S>(
    named: Option<i64>,
    automatic: bool,
    session: Option<S>,
    last: impl FnOnce(S) -> Option<i64>,
) -> Option<i64> {
    if named.is_some() || automatic {
        return named;
    }
    session.and_then(last)
}

/// The version the latest signal of `session` in `seen` (oldest first) is about, if any.
pub(super) fn last_version(seen: Option<&VecDeque<Seen>>, session: u64) -> Option<i64> {
    let latest = seen?.iter().rev().find(|s| s.session == Some(session))?;
    latest.version
}

/// The figures of a run of signals.
pub(super) fn view_of<'a>(
    kind: &str,
    target: &str,
    seen: impl Iterator<Item = &'a Seen>,
) -> TargetView {
    let seen: Vec<&Seen> = seen.collect();
    let ratings: Vec<f64> = seen.iter().filter_map(|s| s.rating).collect();
    let used: Vec<&&Seen> = seen
        .iter()
        .filter(|s| {
            matches!(
                s.signal.as_str(),
                "success" | "tool_error" | "protocol_error" | "served"
            )
        })
        .collect();
    let uses = used.len();
    let mut uses_by_version = BTreeMap::new();
    for version in used.iter().filter_map(|s| s.version) {
        *uses_by_version.entry(version).or_default() += 1;
    }
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
        uses_by_version,
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
            version: None,
            session: None,
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
        assert!(view.uses_by_version.is_empty(), "no version was served");
    }

    #[test]
    fn a_view_counts_the_uses_of_each_version_served() {
        let of = |signal: &str, version| Seen {
            version,
            ..seen(signal, None)
        };
        let window = [
            of("served", Some(2)),
            of("served", Some(1)),
            of("served", Some(2)),
            of("success", Some(3)),
            of("tool_error", Some(3)),
            of("served", None),
            of("rating", Some(2)),
        ];

        let view = view_of("prompt", "p", window.iter());

        assert_eq!(view.uses, 6);
        let by_version: Vec<(i64, usize)> = view.uses_by_version.into_iter().collect();
        assert_eq!(by_version, [(1, 1), (2, 2), (3, 2)], "a rating is no use");
    }

    #[test]
    fn a_clients_feedback_naming_no_version_is_about_what_its_sessions_latest_signal_was_about() {
        let about = |version, session| Seen {
            version,
            session: Some(session),
            ..seen("served", None)
        };
        let window = VecDeque::from([about(Some(2), 7), about(Some(1), 7), about(Some(2), 8)]);
        let last = |session| last_version(Some(&window), session);

        assert_eq!(version_of(None, false, Some(7), last), Some(1));
        assert_eq!(version_of(None, false, Some(8), last), Some(2));
        assert_eq!(version_of(Some(3), false, Some(7), last), Some(3), "named");
        assert_eq!(version_of(None, true, Some(7), last), None, "automatic");
        assert_eq!(version_of(None, false, Some(9), last), None, "no signal");
        assert_eq!(version_of(None, false, None, last), None, "no session");
        assert_eq!(session_key(Some("a")), session_key(Some("a")));
        assert_ne!(session_key(Some("a")), session_key(Some("b")));
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

    #[test]
    fn the_score_statistic_matches_its_closed_form() {
        // Reference values from the same formulas in double precision, checked against a
        // grid search of the likelihood under the null.
        assert!((score((400, 1000), (200, 1000), 0.1) - 4.932_877).abs() < 1e-5);
        assert!((score((30, 100), (10, 100), 0.1) - 1.818_239).abs() < 1e-5);
        assert!((score((4, 4), (0, 4), 0.2) - 2.309_401).abs() < 1e-5);
        assert!(score((1, 10), (1, 10), 0.1) < 0.0);
    }

    #[test]
    fn a_breach_needs_both_tests() {
        let level = (0.015, 2.170_090);
        // 6 of 10 failures against 0 of 100 before: plain for both.
        assert!(above_before((6, 10), (0, 100), 0.1, level));
        // 12 of 20 against 2 of 10: over the limit of 0.3 by the exact test, but the rate
        // before rests on ten uses.
        assert!(above(12, 20, 0.3, 0.015));
        assert!(!above_before((12, 20), (2, 10), 0.1, level));
        assert!(above_before((12, 20), (20, 100), 0.1, level));
        // Nothing before: the exact test alone, against the margin.
        assert!(above_before((4, 4), (0, 0), 0.2, level));
        assert!(!above_before((1, 4), (0, 0), 0.2, level));
    }
}
