//! Live experiments of the reinforcement approach: several versions of one target served side by
//! side. Each client session is assigned one version and keeps it (sticky); a new session gets
//! the version that wins a Thompson draw, each version's success rate sampled from its Beta
//! posterior, so the better versions serve more traffic as evidence comes in. An experiment is
//! stored while it runs ([`crate::store::experiments`], its arms as [`super::arms`] writes
//! them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::arm::Arm;
use super::arms::stored_arms;
use super::draw::beta;
use super::served::Served;

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

    /// When the running experiment of a target started, in milliseconds since the Unix epoch.
    pub fn started_at(&self, kind: &str, target: &str) -> Option<i64> {
        let map = self.inner.lock().ok()?;
        let experiment = map.get(&(kind.to_string(), target.to_string()))?;
        Some(experiment.started_at_ms)
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
            let arms = &mut experiment.arms;
            if let Some(arm) = arms.iter_mut().find(|a| a.served.version == version) {
                match success {
                    true => arm.successes += 1,
                    false => arm.failures += 1,
                }
            }
        });
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
