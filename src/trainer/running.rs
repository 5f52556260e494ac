//! Runs under way: starting one for a target (or recording why one a trigger started cannot
//! go on), the LLM calls reserved for it and given back when it ends, and what the trainer
//! keeps of it (the inputs the LLM wrote, the version it deployed, to watch).

use std::time::Instant;

use actix::prelude::*;

use super::{run, Trainer, TrainingOutcome};
use crate::store;
use crate::store::training_runs::{self, NewRun};

impl Trainer {
    /// Starts a run for `key`; `reply` hears how it ended.
    pub(super) fn start_run(
        &mut self,
        key: (String, String),
        trigger: &str,
        reply: Option<tokio::sync::oneshot::Sender<Result<TrainingOutcome, String>>>,
        ctx: &mut Context<Self>,
    ) {
        let job = match self.job(&key, trigger) {
            Ok(job) => job,
            Err(err) => {
                match reply {
                    Some(reply) => {
                        let _ = reply.send(Err(err));
                    }
                    None => self.record_skipped(key, trigger, err, ctx),
                }
                return;
            }
        };
        let reserved = job.llm.as_ref().map_or(0, |_| job.llm_budget);
        self.begin_run(&key, reserved);
        let work = run::train(job, self.deps.pool.clone(), self.deps.served.clone());
        self.pending += 1;
        ctx.spawn(work.into_actor(self).map(move |finished, act, _| {
            act.pending -= 1;
            let unused = reserved.saturating_sub(finished.llm_calls);
            let run = act.end_run(key, unused, finished);
            if let Some(reply) = reply {
                let _ = reply.send(Ok(TrainingOutcome {
                    approach: run.approach,
                    reason: run.reason,
                    outcome: run.outcome,
                    version: run.candidate_version,
                    evaluation: run.evaluation.and_then(|e| serde_json::from_str(&e).ok()),
                }));
            }
        }));
    }

    /// Records a run that a trigger started and that could not go on, with `why`; it counts as
    /// the target's last run, so the trigger fires again only on new evidence, after the
    /// cooldown (a run asked for by hand is answered instead).
    fn record_skipped(
        &mut self,
        key: (String, String),
        trigger: &str,
        why: String,
        ctx: &mut Context<Self>,
    ) {
        log::info!("training run for {} `{}`: skipped — {why}", key.0, key.1);
        self.last_run.insert(key.clone(), Instant::now());
        let run = NewRun {
            target_kind: key.0,
            target: key.1,
            trigger: trigger.into(),
            approach: "none".into(),
            reason: why,
            outcome: "skipped".into(),
            candidate_version: None,
            evaluation: None,
            started_at_ms: crate::connector::now_ms(),
            llm_calls: 0,
        };
        super::count_run(&self.deps.metrics, &run);
        let write = store::blocking(&self.deps.pool, move |conn| {
            training_runs::insert(conn, &run)
        });
        self.pending += 1;
        ctx.spawn(write.into_actor(self).map(|written, act, _| {
            act.pending -= 1;
            if let Err(err) = written {
                log::warn!("recording a skipped training run failed: {err}");
            }
        }));
    }

    /// Marks `key` as running; reserves the LLM calls the run may make.
    pub(super) fn begin_run(&mut self, key: &(String, String), reserve_llm: u32) {
        self.running.insert(key.clone());
        self.last_run.insert(key.clone(), Instant::now());
        self.rolled_back.remove(key);
        for _ in 0..reserve_llm {
            self.llm_calls.push_back(Instant::now());
        }
    }

    /// Bookkeeping after a run of `key`: no longer running, the `unused` LLM calls of its
    /// reservation given back, the inputs the LLM wrote kept, a deployed version watched.
    /// Returns the recorded run.
    pub(super) fn end_run(
        &mut self,
        key: (String, String),
        unused: u32,
        finished: run::Finished,
    ) -> NewRun {
        self.running.remove(&key);
        for _ in 0..unused {
            self.llm_calls.pop_back();
        }
        if let Some(inputs) = finished.inputs {
            self.inputs.insert(key.clone(), inputs);
        }
        if let Some((version, previous)) = finished.deployed {
            self.watch(key, version, previous);
        }
        super::count_run(&self.deps.metrics, &finished.run);
        finished.run
    }
}
