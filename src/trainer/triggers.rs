//! The periodic check: which targets' triggers fire (error rate, mean rating, thin
//! descriptions, each on the evidence since the target's last run), the watch over deployed
//! versions, and the conclusion of live experiments with enough uses.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::stats::view_of;
use super::{approaches, live, Trainer};

impl Trainer {
    /// Whether `key` has a live experiment (a run must wait until it is concluded).
    pub(super) fn in_experiment(&self, key: &(String, String)) -> bool {
        let experiments = &self.deps.served.experiments;
        !experiments.is_empty() && experiments.arms(&key.0, &key.1).is_some()
    }

    /// Starts runs whose triggers fire, busiest targets first (they get the LLM's budget first);
    /// rolls back watched versions that do worse, and stops watching a version once it has twice
    /// the minimum volume without a breach. Triggers read only the signals that came after a
    /// target's last run, so that a run needs new evidence.
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        let cooldown = Duration::from_millis(self.settings.cooldown_ms);
        let mut due = Vec::new();
        let snapshot = self.deps.catalog.load();
        for (key, seen) in &self.seen {
            let since = self.last_run.get(key);
            let view = view_of(
                &key.0,
                &key.1,
                seen.iter().filter(|s| since.is_none_or(|at| s.at >= *at)),
            );
            if self.watched.contains_key(key) || self.in_experiment(key) {
                continue;
            }
            if !self.settings.enabled || self.running.contains(key) {
                continue;
            }
            if self
                .last_run
                .get(key)
                .is_some_and(|at| at.elapsed() < cooldown)
            {
                continue;
            }
            let errors = view.uses >= self.settings.min_volume
                && view.error_rate >= self.settings.error_rate_threshold;
            let ratings = view.ratings >= self.settings.min_ratings
                && view
                    .mean_rating
                    .is_some_and(|m| m < self.settings.rating_threshold);
            let thin = || approaches::is_thin(&self.served_text(&key.0, &key.1, &snapshot), &key.1);
            if errors {
                due.push((key.clone(), "error_rate", view.uses));
            } else if ratings {
                due.push((key.clone(), "low_rating", view.uses));
            } else if key.0 == "tool"
                && view.uses
                    >= if since.is_none() {
                        1
                    } else {
                        self.settings.min_volume
                    }
                && snapshot.catalog.tool(&key.1).is_some()
                && thin()
            {
                due.push((key.clone(), "thin_description", view.uses));
            }
        }
        self.check_watches(ctx);
        due.sort_by_key(|(_, _, uses)| std::cmp::Reverse(*uses));
        for (key, trigger, _) in due {
            if self.running.contains(&key) {
                continue;
            }
            let thin = key.0 == "tool"
                && self.llm.is_some()
                && !self.llm_spent()
                && approaches::is_thin(&self.served_text(&key.0, &key.1, &snapshot), &key.1);
            match thin {
                true => self.start_batch(key, trigger, &snapshot, ctx),
                false => self.start_run(key, trigger, None, ctx),
            }
        }
        let needed = (self.settings.min_volume as u64 / 2).max(2);
        for key in self.deps.served.experiments.targets() {
            let arms = self
                .deps
                .served
                .experiments
                .arms(&key.0, &key.1)
                .unwrap_or_default();
            if arms.is_empty() || arms.iter().any(|a| a.uses() < needed) {
                continue;
            }
            let (pool, served) = (self.deps.pool.clone(), self.deps.served.clone());
            let margin = self.settings.margin;
            let done = live::conclude(pool, served, key.0.clone(), key.1.clone(), margin);
            self.pending += 1;
            ctx.spawn(done.into_actor(self).map(move |deployed, act, _| {
                act.pending -= 1;
                act.last_run.insert(key.clone(), Instant::now());
                if let Some((version, previous)) = deployed {
                    act.watch(key, version, previous);
                }
            }));
        }
    }
}
