//! One arm of a live experiment: the version it serves and what it has earned, what a signal
//! counts for it ([`outcome`]), and how an experiment's arms decide it ([`verdict`]). Pure.

use super::served::Served;

/// One version in an experiment and what it has earned.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    /// The version served.
    pub served: Served,
    /// Successful uses and good ratings.
    pub successes: u64,
    /// Failed uses and bad ratings.
    pub failures: u64,
    /// Sessions assigned to it.
    pub sessions: u64,
}

impl Arm {
    /// An arm serving `served`, with `sessions` given to it and nothing counted yet.
    pub fn new(served: Served, sessions: u64) -> Self {
        Arm {
            served,
            successes: 0,
            failures: 0,
            sessions,
        }
    }

    /// The posterior mean success rate.
    pub fn mean(&self) -> f64 {
        (self.successes + 1) as f64 / (self.successes + self.failures + 2) as f64
    }

    /// The variance of its Beta(successes + 1, failures + 1) posterior.
    pub fn variance(&self) -> f64 {
        let (a, b) = ((self.successes + 1) as f64, (self.failures + 1) as f64);
        a * b / ((a + b).powi(2) * (a + b + 1.0))
    }

    /// Uses counted so far.
    pub fn uses(&self) -> u64 {
        self.successes + self.failures
    }

    /// Successes per session assigned: a text can raise its success rate by making models
    /// call its tool less, even where the call was right; this rate then falls.
    pub fn per_session(&self) -> f64 {
        self.successes as f64 / self.sessions.max(1) as f64
    }
}

/// How an experiment ends: whether its best arm replaces production, and why. The best arm
/// wins only when the one-sided 95% lower bound of its advantage over production (the
/// difference of the arms' posterior means, with the normal approximation of their Beta
/// posteriors) is above `margin`, and it has no fewer successes per session.
pub fn verdict(arms: &[Arm], margin: f64) -> Option<(&Arm, bool, String)> {
    let production = arms.first()?;
    let best = arms.iter().max_by(|a, b| a.mean().total_cmp(&b.mean()))?;
    let lower =
        best.mean() - production.mean() - 1.645 * (best.variance() + production.variance()).sqrt();
    let mut reason = format!(
        "live results: version {} {:.2} against production {} {:.2} (lower bound of the \
         difference {lower:.3}, margin {margin:.3})",
        best.served.version,
        best.mean(),
        production.served.version,
        production.mean()
    );
    let better = best.served.version != production.served.version && lower > margin;
    let used_less = best.per_session() < production.per_session();
    if better && used_less {
        reason += &format!(
            ", but {:.2} successful uses per session against {:.2}: it may do better only \
             because models call it less",
            best.per_session(),
            production.per_session()
        );
    }
    Some((best, better && !used_less, reason))
}

/// What a signal counts for its arm: a use that went through or a good rating (½ or more) a
/// success, a failed use or a bad rating a failure; anything else nothing.
pub fn outcome(signal: &str, rating: Option<f64>) -> Option<bool> {
    match (signal, rating) {
        ("success", _) => Some(true),
        ("tool_error" | "protocol_error" | "error", _) => Some(false),
        (_, Some(rating)) => Some(rating >= 0.5),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(version: i64, (successes, failures, sessions): (u64, u64, u64)) -> Arm {
        let served = Served {
            version,
            text: format!("v{version}"),
            ..Default::default()
        };
        Arm {
            served,
            successes,
            failures,
            sessions,
        }
    }

    #[test]
    fn a_better_success_rate_wins_unless_the_version_is_used_less_per_session() {
        let production = arm(1, (30, 20, 50));
        let used_as_much = arm(2, (45, 5, 50));
        let arms = [production.clone(), used_as_much];
        let (best, wins, _) = verdict(&arms, 0.05).unwrap();
        assert_eq!((best.served.version, wins), (2, true));

        let called_less = arm(2, (15, 0, 50));
        let arms = [production, called_less];
        let (best, wins, reason) = verdict(&arms, 0.05).unwrap();
        assert_eq!((best.served.version, wins), (2, false));
        assert!(
            reason.contains("0.30 successful uses per session against 0.60"),
            "{reason}"
        );
    }

    #[test]
    fn a_lead_in_few_uses_does_not_win() {
        let production = arm(1, (6, 4, 10));
        let ahead = arm(2, (9, 1, 10));

        let arms = [production, ahead];
        let (best, wins, reason) = verdict(&arms, 0.05).unwrap();

        assert_eq!((best.served.version, wins), (2, false), "{reason}");
        assert!(
            reason.contains("lower bound of the difference -0.03"),
            "{reason}"
        );
    }
}
