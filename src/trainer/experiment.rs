//! Live experiments of the reinforcement approach: several versions of one target served side by
//! side. Each client session is assigned one version and keeps it (sticky); a new session gets
//! the version that wins a Thompson draw, each version's success rate sampled from its Beta
//! posterior, so the better versions serve more traffic as evidence comes in. An experiment is
//! stored while it runs ([`crate::store::experiments`], its arms as [`super::arms`] writes
//! them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::arms::stored_arms;
use super::draw::beta;
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

/// Experiments by (kind, target), with their sticky assignments.
#[derive(Default)]
pub struct Experiments {
    inner: Mutex<HashMap<(String, String), Experiment>>,
    /// How many experiments run: lets the hot path skip the lock when none does.
    running: AtomicUsize,
    /// The draws' source (seeded at random unless [`Experiments::seed`] says otherwise).
    rng: Mutex<fastrand::Rng>,
}

#[derive(Debug, Default)]
struct Experiment {
    arms: Vec<Arm>,
    /// Share of new sessions that join the draw; the others get the first arm (production).
    canary: f64,
    /// Session id → index of its arm.
    assigned: HashMap<String, usize>,
    /// Sessions assigned when its arms were last stored.
    stored_sessions: u64,
    /// When it started, milliseconds since the Unix epoch (names it in the store).
    started_at_ms: i64,
}

impl Experiments {
    /// Makes the draws repeatable from `seed` on.
    pub fn seed(&self, seed: u64) {
        if let Ok(mut rng) = self.rng.lock() {
            rng.seed(seed);
        }
    }

    /// Starts (or replaces) an experiment over `versions`, the first being production; a
    /// `canary` share of new sessions join the draw, the others get production. Returns when
    /// it started, in milliseconds since the Unix epoch.
    pub fn start(&self, kind: &str, target: &str, versions: Vec<Served>, canary: f64) -> i64 {
        let arms = versions.into_iter().map(|v| Arm::new(v, 0)).collect();
        let now = crate::connector::now_ms();
        self.resume((kind, target, now), (arms, HashMap::new()), canary);
        now
    }

    /// Goes on with the experiment of a target that started at `started_at_ms`, whose `arms`
    /// (production first) and sessions `assigned` to them were taken back after a restart
    /// ([`super::arms::rebuilt`]).
    pub fn resume(
        &self,
        (kind, target, started_at_ms): (&str, &str, i64),
        (arms, assigned): (Vec<Arm>, HashMap<String, usize>),
        canary: f64,
    ) {
        if let Ok(mut map) = self.inner.lock() {
            let experiment = Experiment {
                stored_sessions: arms.iter().map(|a| a.sessions).sum(),
                arms,
                canary,
                assigned,
                started_at_ms,
            };
            map.insert((kind.into(), target.into()), experiment);
            self.running.store(map.len(), Ordering::Release);
        }
    }

    /// The experiments that sessions joined since their arms were last taken to be stored,
    /// with when they started and their arms as [`stored_arms`] writes them; counts them as
    /// stored.
    pub fn to_store(&self) -> Vec<((String, String), i64, String)> {
        let Ok(mut map) = self.inner.lock() else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for (key, experiment) in map.iter_mut() {
            let sessions = experiment.arms.iter().map(|a| a.sessions).sum();
            if sessions != experiment.stored_sessions {
                experiment.stored_sessions = sessions;
                let arms = stored_arms(&experiment.arms);
                changed.push((key.clone(), experiment.started_at_ms, arms));
            }
        }
        changed
    }

    /// Whether no experiment runs.
    pub fn is_empty(&self) -> bool {
        self.running.load(Ordering::Acquire) == 0
    }

    /// Targets with a running experiment.
    pub fn targets(&self) -> Vec<(String, String)> {
        self.inner
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Ends an experiment; returns its arms.
    pub fn end(&self, kind: &str, target: &str) -> Option<Vec<Arm>> {
        let mut map = self.inner.lock().ok()?;
        let ended = map.remove(&(kind.to_string(), target.to_string()));
        self.running.store(map.len(), Ordering::Release);
        ended.map(|e| e.arms)
    }

    /// The arms of a running experiment.
    pub fn arms(&self, kind: &str, target: &str) -> Option<Vec<Arm>> {
        let map = self.inner.lock().ok()?;
        map.get(&(kind.to_string(), target.to_string()))
            .map(|e| e.arms.clone())
    }

    /// The version `session` is served, assigning one by a Thompson draw the first time it
    /// `fits` the use: a drawn version that does not fit is given back but not assigned (the
    /// session is not served it, so it does not count among the arm's sessions), and the
    /// session's next use draws again. Says whether the session joined an arm now.
    pub fn serve(
        &self,
        kind: &str,
        target: &str,
        session: &str,
        fits: impl Fn(&Served) -> bool,
    ) -> Option<(Served, bool)> {
        if self.is_empty() {
            return None;
        }
        let mut map = self.inner.lock().ok()?;
        let experiment = map.get_mut(&(kind.to_string(), target.to_string()))?;
        if let Some(&arm) = experiment.assigned.get(session) {
            return Some((experiment.arms[arm].served.clone(), false));
        }
        let mut rng = self.rng.lock().ok()?;
        let arm = match rng.f64() < experiment.canary {
            true => thompson(&experiment.arms, &mut rng)?,
            false => 0,
        };
        if !fits(&experiment.arms[arm].served) {
            return Some((experiment.arms[arm].served.clone(), false));
        }
        experiment.assigned.insert(session.to_string(), arm);
        experiment.arms[arm].sessions += 1;
        Some((experiment.arms[arm].served.clone(), true))
    }

    /// Counts `session`, which another gateway assigned the arm serving `version`, among that
    /// arm's sessions, once.
    pub fn joined_elsewhere(&self, kind: &str, target: &str, session: &str, version: i64) {
        self.with(kind, target, |experiment| {
            let arm = experiment
                .arms
                .iter()
                .position(|a| a.served.version == version);
            if let Some(arm) = arm.filter(|_| !experiment.assigned.contains_key(session)) {
                experiment.assigned.insert(session.to_string(), arm);
                experiment.arms[arm].sessions += 1;
            }
        });
    }

    /// Runs `change` on the running experiment of a target, if there is one.
    fn with(&self, kind: &str, target: &str, change: impl FnOnce(&mut Experiment)) {
        if self.is_empty() {
            return;
        }
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        if let Some(experiment) = map.get_mut(&(kind.to_string(), target.to_string())) {
            change(experiment);
        }
    }

    /// Each running experiment and when it started, in milliseconds since the Unix epoch.
    pub fn started(&self) -> HashMap<(String, String), i64> {
        let Ok(map) = self.inner.lock() else {
            return HashMap::new();
        };
        map.iter()
            .map(|(key, e)| (key.clone(), e.started_at_ms))
            .collect()
    }

    /// The version `session` was assigned, if it was (assigns none).
    pub fn assigned(&self, kind: &str, target: &str, session: &str) -> Option<i64> {
        if self.is_empty() {
            return None;
        }
        let map = self.inner.lock().ok()?;
        let experiment = map.get(&(kind.to_string(), target.to_string()))?;
        let arm = *experiment.assigned.get(session)?;
        Some(experiment.arms[arm].served.version)
    }

    /// Counts an outcome for the arm serving `version`.
    pub fn record(&self, kind: &str, target: &str, version: i64, success: bool) {
        self.with(kind, target, |experiment| {
            let arms = experiment.arms.iter_mut();
            if let Some(arm) = arms.into_iter().find(|a| a.served.version == version) {
                match success {
                    true => arm.successes += 1,
                    false => arm.failures += 1,
                }
            }
        });
    }
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

/// The arm whose Beta(successes + 1, failures + 1) draw is highest.
fn thompson(arms: &[Arm], rng: &mut fastrand::Rng) -> Option<usize> {
    (0..arms.len())
        .map(|i| {
            let arm = &arms[i];
            (
                i,
                beta(arm.successes as f64 + 1.0, arm.failures as f64 + 1.0, rng),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::arms::read_arms;

    fn served(version: i64) -> Served {
        Served {
            version,
            text: format!("v{version}"),
            ..Default::default()
        }
    }

    #[test]
    fn a_session_keeps_its_version() {
        let experiments = Experiments::default();
        experiments.start("tool", "t", vec![served(1), served(2)], 1.0);
        let (first, joined) = experiments.serve("tool", "t", "s", |_| true).unwrap();
        assert!(joined, "the first use joins an arm");
        for _ in 0..20 {
            assert_eq!(
                experiments.serve("tool", "t", "s", |_| true).unwrap(),
                (first.clone(), false)
            );
        }
    }

    #[test]
    fn a_session_that_joined_elsewhere_counts_once_for_its_arm() {
        let experiments = Experiments::default();
        experiments.start("tool", "t", vec![served(1), served(2)], 1.0);
        let (here, _) = experiments.serve("tool", "t", "local", |_| true).unwrap();

        experiments.joined_elsewhere("tool", "t", "far", 2);
        experiments.joined_elsewhere("tool", "t", "far", 2);
        experiments.joined_elsewhere("tool", "t", "local", 1);
        experiments.joined_elsewhere("tool", "t", "other", 9);

        let sessions: Vec<u64> = experiments
            .arms("tool", "t")
            .unwrap()
            .iter()
            .map(|a| a.sessions)
            .collect();
        let mut expected = vec![0, 1];
        expected[(here.version - 1) as usize] += 1;
        assert_eq!(sessions, expected);
        assert_eq!(experiments.assigned("tool", "t", "far"), Some(2));
    }

    fn arm(version: i64, (successes, failures, sessions): (u64, u64, u64)) -> Arm {
        Arm {
            served: served(version),
            successes,
            failures,
            sessions,
        }
    }

    #[test]
    fn sessions_are_counted_for_the_arm_they_are_assigned() {
        let experiments = Experiments::default();
        experiments.start("tool", "t", vec![served(1), served(2)], 1.0);
        for i in 0..30 {
            experiments.serve("tool", "t", &format!("s{i}"), |_| true);
            experiments.serve("tool", "t", &format!("s{i}"), |_| true);
        }
        let arms = experiments.arms("tool", "t").unwrap();
        assert_eq!(arms.iter().map(|a| a.sessions).sum::<u64>(), 30);
    }

    #[test]
    fn a_session_joins_only_an_arm_that_fits_its_use() {
        let experiments = Experiments::default();
        experiments.seed(7);
        experiments.start("prompt", "p", vec![served(1), served(2)], 1.0);
        let only_v1 = |s: &Served| s.version == 1;
        let drawn: Vec<i64> = (0..20)
            .filter_map(|i| experiments.serve("prompt", "p", &format!("s{i}"), only_v1))
            .map(|(s, _)| s.version)
            .collect();
        let on_v1 = drawn.iter().filter(|&&v| v == 1).count() as u64;
        let Some(unfit) = drawn.iter().position(|&v| v == 2) else {
            panic!("version 2 is never drawn: {drawn:?}");
        };
        let session = format!("s{unfit}");
        let unassigned = experiments.assigned("prompt", "p", &session);
        // Not assigned, the session draws again at its next use, until a version fits.
        let mut redrawn = 2;
        for _ in 0..200 {
            let served = experiments.serve("prompt", "p", &session, only_v1);
            redrawn = served.map_or(0, |(s, _)| s.version);
            if redrawn == 1 {
                break;
            }
        }

        assert_eq!(unassigned, None);
        assert_eq!(redrawn, 1);
        assert_eq!(experiments.assigned("prompt", "p", &session), Some(1));
        let arms = experiments.arms("prompt", "p").unwrap();
        let sessions: Vec<u64> = arms.iter().map(|a| a.sessions).collect();
        assert_eq!(sessions, [on_v1 + 1, 0]);
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

    #[test]
    fn the_better_arm_wins_most_new_sessions() {
        let experiments = Experiments::default();
        experiments.start("tool", "t", vec![served(1), served(2)], 1.0);
        for _ in 0..40 {
            experiments.record("tool", "t", 1, false);
            experiments.record("tool", "t", 2, true);
        }
        let wins = (0..200)
            .filter(|i| {
                experiments
                    .serve("tool", "t", &format!("s{i}"), |_| true)
                    .unwrap()
                    .0
                    .version
                    == 2
            })
            .count();
        assert!(wins > 190, "{wins}");
    }

    #[test]
    fn outside_the_canary_share_new_sessions_get_production() {
        let experiments = Experiments::default();
        experiments.start("tool", "t", vec![served(1), served(2)], 0.0);
        for _ in 0..40 {
            experiments.record("tool", "t", 2, true);
        }
        let production = (0..50)
            .filter(|i| {
                experiments
                    .serve("tool", "t", &format!("s{i}"), |_| true)
                    .unwrap()
                    .0
                    .version
                    == 1
            })
            .count();
        assert_eq!(production, 50);
    }

    #[test]
    fn sessions_joined_since_the_last_store_are_given_once() {
        let experiments = Experiments::default();
        let started = experiments.start("tool", "t", vec![served(1), served(2)], 1.0);
        assert!(experiments.to_store().is_empty());
        experiments.serve("tool", "t", "s1", |_| true);
        experiments.serve("tool", "t", "s1", |_| true);

        let stored = experiments.to_store();

        assert_eq!(stored.len(), 1);
        let (key, at, arms) = &stored[0];
        assert_eq!((key.1.as_str(), *at), ("t", started));
        let sessions: u64 = read_arms(arms).unwrap().iter().map(|a| a.1).sum();
        assert_eq!(sessions, 1);
        assert!(experiments.to_store().is_empty());
    }
}
