//! The watch over deployed versions: every version the trainer deploys (or an operator deploys
//! through the API) is watched against the one it replaced, on the live results of its whole
//! backend (the target and its sibling tools): a description that takes its siblings' requests
//! shows as errors on the siblings, not on itself. A prompt is watched on its fetches and ratings
//! about the version (a version is served only to fetches it fits; the others get the backend's
//! text). Failed calls and bad ratings count as failures. The live results are tested at three
//! looks, when the uses since the deploy reach half the minimum volume, the minimum volume and
//! twice it; a breach at a look (a failure rate above the one before the deploy plus the rollback
//! margin, at levels of 0.5%, 1.5% and 3%, by both tests of [`above_before`], so that the three
//! looks together wrongly roll back a version no worse than that under 5% of the time with 20 uses
//! or more before; with fewer, and a backend that already fails most calls, up to 14.52% in
//! simulations) rolls production back; three looks without a breach end the watch.

use std::time::Instant;

use actix::prelude::*;
use actix_web::web;

use super::stats::{above_before, view_of, Seen};
use super::{evaluate, live, restart, run, Trainer};
use crate::store::prompts::{self, LIVE_BREACH};

/// A deployed version under watch.
#[derive(Debug, Clone)]
pub(super) struct Watch {
    pub(super) version: i64,
    pub(super) previous: i64,
    /// When it was deployed.
    pub(super) since: Instant,
    /// The target and its siblings, whose signals count.
    pub(super) group: Vec<(String, String)>,
    /// The group's failures and uses before the deploy.
    pub(super) baseline: (usize, usize),
    /// Looks taken so far (see [`LOOKS`]).
    pub(super) looks: usize,
}

/// Looks a watch takes, at these multiples of the minimum volume (in uses since the deploy),
/// and the level of each look's test with its one-sided normal quantile. The levels add up to
/// 5% (Bonferroni), spent mostly where the uses are most: a first look at a few uses rolls
/// back only what is plainly worse.
const LOOKS: [(f64, (f64, f64)); 3] = [
    (0.5, (0.005, 2.575_829)),
    (1.0, (0.015, 2.170_090)),
    (2.0, (0.03, 1.880_794)),
];

impl Trainer {
    /// `key` and the other tools of its backend (a prompt alone).
    fn group_of(&self, key: &(String, String)) -> Vec<(String, String)> {
        let snapshot = self.deps.catalog.load();
        let Some(entry) = snapshot.catalog.tool(&key.1).filter(|_| key.0 == "tool") else {
            return vec![key.clone()];
        };
        let mut group = vec![key.clone()];
        let siblings = snapshot
            .catalog
            .tools
            .iter()
            .filter(|e| e.connector == entry.connector);
        for name in siblings.filter_map(|e| e.item["name"].as_str()) {
            if name != key.1 {
                group.push(("tool".to_string(), name.to_string()));
            }
        }
        group
    }

    /// Outcomes of `group` since `since`, or before it: uses and ratings, and of those the
    /// failed uses and the bad ratings (under ½). Of a prompt, only those about `version` (or
    /// about no known version) count: fetches that the version did not fit were served the
    /// backend's text, and so were the ratings that followed them in their sessions.
    fn group_figures(
        &self,
        group: &[(String, String)],
        (since, after): (Instant, bool),
        version: i64,
    ) -> (usize, usize) {
        group.iter().fold((0, 0), |(uses, errors), key| {
            let Some(seen) = self.seen.get(key) else {
                return (uses, errors);
            };
            let about = |s: &&Seen| key.0 != "prompt" || s.version.is_none_or(|v| v == version);
            let signals = seen
                .iter()
                .filter(|s| (s.at >= since) == after)
                .filter(about);
            let view = view_of(&key.0, &key.1, signals.clone());
            let bad = signals
                .filter(|s| s.rating.is_some_and(|r| r < 0.5))
                .count();
            (uses + view.uses + view.ratings, errors + view.errors + bad)
        })
    }

    /// Watches `version` of `key`, deployed in place of `previous` just now.
    pub(super) fn watch(&mut self, key: (String, String), version: i64, previous: i64) {
        let now = Instant::now();
        self.deploys_known.insert((key.clone(), version), now);
        let watch = self.watch_since(&key, version, previous, now);
        self.watched.insert(key, watch);
    }

    /// Takes up `deploys` (the store read at `read`) to watch once the catalog is loaded: those
    /// made before a restart, and, with several gateways, those another gateway made. A deploy
    /// is taken up once; those older than the window are forgotten, as their signals are.
    pub(super) fn resume(&mut self, deploys: Vec<restart::Deploy>, read: Instant) {
        let window = self.window;
        self.deploys_known
            .retain(|_, at| read.saturating_duration_since(*at) <= window);
        for deploy in deploys {
            let (key, version, _, at) = &deploy;
            if self.deploys_known.contains_key(&(key.clone(), *version)) {
                continue;
            }
            self.deploys_known.insert((key.clone(), *version), *at);
            self.resuming.push((deploy, read));
        }
    }

    /// The watch of `version` of `key`, deployed in place of `previous` at `since`.
    fn watch_since(
        &self,
        key: &(String, String),
        version: i64,
        previous: i64,
        since: Instant,
    ) -> Watch {
        let group = self.group_of(key);
        let (uses, errors) = self.group_figures(&group, (since, false), previous);
        Watch {
            version,
            previous,
            since,
            group,
            baseline: (errors, uses),
            looks: 0,
        }
    }

    /// Watches, once the catalog is loaded, the versions taken up ([`Trainer::resume`]), and
    /// gives back those to roll back. The uses between the deploy and the read of the store
    /// count: the last look they reached is taken on them now (a check may not have come
    /// between that look and a restart, or the gateway that deployed may have stopped), the
    /// looks before it count as taken (the version is still in production, so none of them
    /// rolled it back), and a version past its last look is not watched. A version deployed
    /// after the one watched here, by another gateway, takes its place.
    fn resume_watches(&mut self) -> Vec<Breach> {
        if self.resuming.is_empty() || !self.deps.catalog.load().loaded {
            return Vec::new();
        }
        let volume = self.settings.min_volume;
        let mut breaches = Vec::new();
        for ((key, version, previous, since), restart) in std::mem::take(&mut self.resuming) {
            if self.watched.get(&key).is_some_and(|w| w.since >= since) {
                continue;
            }
            let mut watch = self.watch_since(&key, version, previous, since);
            let (used, failed) = self.group_figures(&watch.group, (since, true), version);
            let (used_after, failed_after) =
                self.group_figures(&watch.group, (restart, true), version);
            let before = (
                failed.saturating_sub(failed_after),
                used.saturating_sub(used_after),
            );
            let reached = LOOKS
                .iter()
                .take_while(|(at, _)| reached(before.1, *at, volume))
                .count();
            let margin = self.settings.rollback_margin;
            let last = reached.checked_sub(1);
            let found = last.map(|look_at| look(look_at, before, watch.baseline, margin, volume));
            watch.looks = reached;
            if found == Some(Look::Breach) {
                breaches.push((key, watch, before.0 as f64 / before.1 as f64));
            } else if watch.looks < LOOKS.len() {
                self.watched.insert(key, watch);
            } else {
                self.watched.remove(&key);
            }
        }
        breaches
    }

    /// Checks `version` of `key`, deployed through the API in place of `previous`, as a
    /// candidate is checked: it is rolled back at once when it fails a check (safety, about its
    /// own tool) or when `previous` tests better than it on the recorded calls (the lower
    /// confidence bound of its advantage above zero; the margin is what a candidate must beat,
    /// not what shields a worse deploy).
    pub(super) fn check_deploy(
        &mut self,
        key: (String, String),
        (version, previous): (i64, i64),
        ctx: &mut Context<Self>,
    ) {
        let Ok(job) = self.job(&key, "manual_deploy") else {
            return;
        };
        let shared = self.deps.shared();
        let pool = shared.0.clone();
        let watched = key.clone();
        let work = async move {
            let (k, t) = (key.0.clone(), key.1.clone());
            let store = pool.clone();
            let texts = web::block(move || {
                let mut conn = store.get().map_err(|e| e.to_string())?;
                prompts::versions(&mut conn, &k, &t).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string());
            let versions = match texts.and_then(|r| r) {
                Ok(versions) => versions,
                Err(err) => {
                    log::error!("checking the deploy of version {version} failed: {err}");
                    return false;
                }
            };
            let text = |v: i64| versions.iter().find(|x| x.version == v).map(|x| &x.text);
            let (Some(new), Some(old)) = (text(version), text(previous)) else {
                return false;
            };
            // Version 1 is the backend's own text, served whenever no version is: going back
            // to it is not vetted as a new text (an empty description would fail).
            let vetted = match version {
                1 => Ok(()),
                _ => run::vet(&job, new, run::Writer::Operator),
            };
            let problem = match vetted {
                Err(problem) => Some(format!("version {version} fails a check: {problem}")),
                Ok(()) => {
                    let back = evaluate::compare(new, old, &job.examples, &job.context, 0.0);
                    back.better.then(|| {
                        format!(
                            "version {previous}, which it replaced, tests better on the recorded calls (lower bound of its advantage {:.3})",
                            back.lower_bound
                        )
                    })
                }
            };
            let Some(reason) = problem else {
                return false;
            };
            let versions = (version, previous);
            live::roll_back(shared, key, versions, "manual_deploy", reason).await
        };
        self.pending += 1;
        ctx.spawn(work.into_actor(self).map(move |rolled_back, act, _| {
            act.pending -= 1;
            let ours = act
                .watched
                .get(&watched)
                .is_some_and(|w| w.version == version);
            if rolled_back && ours {
                act.watched.remove(&watched);
            }
        }));
    }

    /// Takes the next look at every watched version whose backend's live results reached it:
    /// rolls back those that breach, and ends the watch of those proven at the last look.
    pub(super) fn check_watches(&mut self, ctx: &mut Context<Self>) {
        let mut rollbacks = self.resume_watches();
        let volume = self.settings.min_volume;
        let mut proven = Vec::new();
        let mut looked = Vec::new();
        for (key, watch) in &self.watched {
            let (uses, errors) =
                self.group_figures(&watch.group, (watch.since, true), watch.version);
            let margin = self.settings.rollback_margin;
            match look(watch.looks, (errors, uses), watch.baseline, margin, volume) {
                Look::NotYet => {}
                Look::Breach => {
                    let rate = errors as f64 / uses as f64;
                    rollbacks.push((key.clone(), watch.clone(), rate));
                }
                Look::Passed => looked.push(key.clone()),
                Look::Proven => proven.push(key.clone()),
            }
        }
        for key in looked {
            if let Some(watch) = self.watched.get_mut(&key) {
                watch.looks += 1;
            }
        }
        for key in proven {
            self.watched.remove(&key);
        }
        for (key, _, _) in &rollbacks {
            self.watched.remove(key);
        }
        let watched = self.watched.len() as i64;
        self.deps.metrics.versions_watched.set(watched);
        for (key, watch, live) in rollbacks {
            self.rolled_back.insert(key.clone());
            let on = match key.0.as_str() {
                "prompt" => "in its ratings",
                _ => "on its backend's tools",
            };
            let (failed, used) = watch.baseline;
            let reason = format!(
                "version {} {LIVE_BREACH} {live:.2} {on}, over {:.2} before it ({failed} of {used})",
                watch.version,
                failed as f64 / used.max(1) as f64
            );
            let shared = self.deps.shared();
            let versions = (watch.version, watch.previous);
            let undo = live::roll_back(shared, key, versions, "live_results", reason);
            self.pending += 1;
            ctx.spawn(undo.into_actor(self).map(|_, act, _| act.pending -= 1));
        }
    }
}

/// A watch to roll back: the target, the watch, and the live error rate that breached.
type Breach = ((String, String), Watch, f64);

/// What a check of a watch finds.
#[derive(Debug, PartialEq)]
enum Look {
    /// The uses since the deploy have not reached the next look.
    NotYet,
    /// The failure rate is above the rate before plus the margin: roll back.
    Breach,
    /// No breach at a look before the last.
    Passed,
    /// No breach at the last look: the watch ends.
    Proven,
}

/// Whether `uses` since a deploy reach the look at `at` times `min_volume` (at least 2).
fn reached(uses: usize, at: f64, min_volume: usize) -> bool {
    uses as f64 >= (min_volume.max(2) as f64 * at).ceil()
}

/// The check of a watch that took `looks` looks, now at `errors` failures of `uses`, against
/// the failures and uses `before` the deploy plus `margin`, with looks at multiples of
/// `min_volume` (at least 2).
fn look(
    looks: usize,
    (errors, uses): (usize, usize),
    before: (usize, usize),
    margin: f64,
    min_volume: usize,
) -> Look {
    let Some((at, level)) = LOOKS.get(looks) else {
        return Look::Proven;
    };
    if !reached(uses, *at, min_volume) {
        return Look::NotYet;
    }
    if above_before((errors, uses), before, margin, *level) {
        Look::Breach
    } else if looks + 1 == LOOKS.len() {
        Look::Proven
    } else {
        Look::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Share of simulated watches rolled back when checked after every use, with `before` uses
    /// failing at `rate_before` ahead of the deploy and failures drawn at `rate` after it; a
    /// margin of 0.1 and a minimum volume of 20.
    fn rolled_back((before, rate_before): (usize, f64), rate: f64, seed: u64) -> f64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let watches = 4000;
        let mut breaches = 0;
        for _ in 0..watches {
            let failed = (0..before).filter(|_| rng.f64() < rate_before).count();
            let (mut looks, mut errors) = (0, 0);
            for uses in 1.. {
                errors += usize::from(rng.f64() < rate);
                match look(looks, (errors, uses), (failed, before), 0.1, 20) {
                    Look::NotYet => {}
                    Look::Passed => looks += 1,
                    Look::Breach => {
                        breaches += 1;
                        break;
                    }
                    Look::Proven => break,
                }
            }
        }
        breaches as f64 / watches as f64
    }

    #[test]
    fn a_version_at_its_limit_is_rolled_back_at_most_one_time_in_twenty_however_often_checked() {
        // Few uses before the deploy make the rate before noisy: taken as known, it rolled
        // back 9.9% of these watches at 0.1 -> 0.2 (a simulation of the earlier test).
        for (before, rate_before) in [(20, 0.1), (20, 0.3), (100, 0.1), (1000, 0.01)] {
            let wrongly = rolled_back((before, rate_before), rate_before + 0.1, 7);
            assert!(wrongly <= 0.05, "{before} uses at {rate_before}: {wrongly}");
        }
    }

    #[test]
    fn a_version_well_over_its_limit_is_rolled_back_nearly_always() {
        let rightly = rolled_back((200, 0.1), 0.6, 7);
        assert!(rightly >= 0.95, "{rightly}");
    }

    #[test]
    fn looks_come_at_half_the_volume_the_volume_and_twice_it() {
        let before = (0, 100);
        assert_eq!(look(0, (9, 9), before, 0.2, 20), Look::NotYet);
        assert_eq!(look(0, (0, 10), before, 0.2, 20), Look::Passed);
        assert_eq!(look(1, (0, 19), before, 0.2, 20), Look::NotYet);
        assert_eq!(look(1, (0, 20), before, 0.2, 20), Look::Passed);
        assert_eq!(look(2, (0, 40), before, 0.2, 20), Look::Proven);
        assert_eq!(look(2, (30, 40), before, 0.2, 20), Look::Breach);
        assert_eq!(look(3, (0, 0), before, 0.2, 20), Look::Proven);
    }
}
