//! The periodic check: which targets' triggers fire (error rate, mean rating, thin
//! descriptions, each on the evidence since the target's last run; with none firing, thin
//! descriptions that never drew a call), the watch over deployed versions, and the conclusion
//! of live experiments with enough uses.

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

    /// A tool with a thin description that never had a run (nor a call to start one), or that
    /// the watch put back since its last run (once `cooldown_ms` has passed since that run):
    /// with nothing else to do, its backend's thin tools are rewritten, so that a backend whose
    /// bare names draw no calls is not left as it is for want of the calls it cannot draw.
    fn uncalled(&self, snapshot: &crate::registry::Snapshot) -> Option<(String, String)> {
        let cooldown = Duration::from_millis(self.settings.cooldown_ms);
        let due = |k: &(String, String)| match self.last_run.get(k) {
            None => true,
            Some(at) => self.rolled_back.contains(k) && at.elapsed() >= cooldown,
        };
        snapshot
            .catalog
            .tools
            .iter()
            .filter_map(|e| e.item["name"].as_str())
            .map(|name| ("tool".to_string(), name.to_string()))
            .filter(|k| due(k) && !self.running.contains(k))
            .find(|k| approaches::is_thin(&self.served_text(&k.0, &k.1, snapshot), &k.1))
    }

    /// Starts runs whose triggers fire, busiest targets first (they get the LLM's budget first);
    /// rolls back watched versions that do worse, and stops watching a version once it has twice
    /// the minimum volume without a breach; follows the catalog as a catalog change does
    /// ([`Trainer::follow_catalog`]). Triggers read only the signals that came after a
    /// target's last run, so that a run needs new evidence.
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        let cooldown = Duration::from_millis(self.settings.cooldown_ms);
        let mut due = Vec::new();
        let snapshot = self.deps.catalog.load();
        self.follow_catalog(&snapshot, ctx);
        for (key, seen) in &self.seen {
            if self.watched.contains_key(key) || self.in_experiment(key) {
                continue;
            }
            if !self.settings.enabled || !self.leading || self.running.contains(key) {
                continue;
            }
            let since = self.last_run.get(key);
            if since.is_some_and(|at| at.elapsed() < cooldown) {
                continue;
            }
            let view = view_of(
                &key.0,
                &key.1,
                seen.iter().filter(|s| since.is_none_or(|at| s.at >= *at)),
            );
            let errors = view.uses >= self.settings.min_volume
                && view.error_rate >= self.settings.error_rate_threshold;
            let ratings = view.ratings >= self.settings.min_ratings
                && view
                    .mean_rating
                    .is_some_and(|m| m < self.settings.rating_threshold);
            let thin = key.0 == "tool"
                && snapshot.catalog.tool(&key.1).is_some()
                && approaches::is_thin(&self.served_text(&key.0, &key.1, &snapshot), &key.1);
            // A thin description's first run needs one use, as does one a rollback put back
            // (the run's text did worse live); later ones need new evidence.
            let thin_volume = match since {
                Some(_) if !self.rolled_back.contains(key) => self.settings.min_volume,
                _ => 1,
            };
            let trigger = if errors {
                "error_rate"
            } else if ratings {
                "low_rating"
            } else if thin && view.uses >= thin_volume {
                "thin_description"
            } else {
                continue;
            };
            due.push((key.clone(), trigger, view.uses, thin));
        }
        self.check_watches(ctx);
        due.sort_by_key(|(_, _, uses, _)| std::cmp::Reverse(*uses));
        let idle = due.is_empty();
        for (key, trigger, _, thin) in due {
            if self.running.contains(&key) {
                continue;
            }
            match thin && self.llm.is_some() && self.llm_left() > 0 {
                true => self.start_batch(key, trigger, &snapshot, ctx),
                false => self.start_run(key, trigger, None, ctx),
            }
        }
        let uncalled = self.settings.enabled && self.leading && self.settings.rewrite_uncalled;
        if idle && uncalled && self.llm.is_some() && self.llm_left() > 0 {
            if let Some(key) = self.uncalled(&snapshot) {
                self.start_batch(key, "thin_uncalled", &snapshot, ctx);
            }
        }
        self.store_sessions(ctx);
        self.store_templates(ctx);
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
            let ending = live::Ending::Verdict(self.settings.margin);
            self.end_experiment(key, ending, ctx);
        }
    }

    /// Ends the live experiment of `key` as `ending` says; a version it deploys is watched. The
    /// end counts as the target's last run from when it starts: evidence that comes while it
    /// is stored counts for the next run.
    pub(super) fn end_experiment(
        &mut self,
        key: (String, String),
        ending: live::Ending,
        ctx: &mut Context<Self>,
    ) {
        if let Some(started_at_ms) = self.deps.served.experiments.started_at(&key.0, &key.1) {
            self.concluded.insert((key.clone(), started_at_ms));
        }
        let shared = self.others.is_some();
        let done = live::conclude(self.deps.shared(), key.clone(), ending, shared);
        self.last_run.insert(key.clone(), Instant::now());
        self.pending += 1;
        ctx.spawn(done.into_actor(self).map(move |deployed, act, _| {
            act.pending -= 1;
            if let Some((version, previous)) = deployed {
                act.watch(key, version, previous);
            }
        }));
    }
}
