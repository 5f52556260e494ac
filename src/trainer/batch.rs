//! Batched meta-prompt runs: when a tool's description says little beyond its name, the other
//! tools of its backend whose descriptions are as thin are rewritten with it in one LLM call, so
//! that a backend's tools improve together (a well-described tool beside bare siblings takes
//! their requests) and the LLM budget goes further. Tools that never got traffic are reached
//! this way too.

use actix::prelude::*;

use super::{approaches, run, Trainer};
use crate::registry::Snapshot;

/// Tools rewritten in one call at most.
const MAX_BATCH: usize = 20;

impl Trainer {
    /// The thin tools of `key`'s backend that may join its batch: not running, not watched and
    /// not in a live experiment. One that ran before joins again without new evidence: in the
    /// same call, another rewrite costs the budget nothing.
    fn thin_siblings(&self, key: &(String, String), snapshot: &Snapshot) -> Vec<(String, String)> {
        let Some(entry) = snapshot.catalog.tool(&key.1) else {
            return Vec::new();
        };
        snapshot
            .catalog
            .tools
            .iter()
            .filter(|e| e.connector == entry.connector)
            .filter_map(|e| e.item["name"].as_str())
            .filter(|name| *name != key.1)
            .map(|name| ("tool".to_string(), name.to_string()))
            .filter(|k| !self.running.contains(k) && !self.watched.contains_key(k))
            .filter(|k| !self.in_experiment(k))
            .filter(|k| approaches::is_thin(&self.served_text(&k.0, &k.1, snapshot), &k.1))
            .take(MAX_BATCH - 1)
            .collect()
    }

    /// Starts one batched run for `key`, whose `trigger` fired, and its thin siblings.
    pub(super) fn start_batch(
        &mut self,
        key: (String, String),
        trigger: &str,
        snapshot: &Snapshot,
        ctx: &mut Context<Self>,
    ) {
        let mut keys = vec![key];
        keys.extend(self.thin_siblings(&keys[0], snapshot));
        let mut jobs = Vec::new();
        let mut started = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let trigger = if i == 0 { trigger } else { "thin_description" };
            let Ok(job) = self.job(&key, trigger) else {
                continue;
            };
            // The batch's one call is the first job's.
            let reserve = match (i, &job.llm) {
                (0, Some(_)) => job.llm_budget,
                _ => 0,
            };
            self.begin_run(&key, reserve);
            started.push((key, reserve));
            jobs.push(job);
        }
        if jobs.is_empty() {
            return;
        }
        let work = run::train_together(jobs, self.deps.pool.clone(), self.deps.served.clone());
        self.pending += 1;
        ctx.spawn(work.into_actor(self).map(move |finished, act, _| {
            act.pending -= 1;
            for ((key, reserved), done) in started.into_iter().zip(finished) {
                act.end_run(key, reserved.saturating_sub(done.llm_calls), done);
            }
        }));
    }
}
