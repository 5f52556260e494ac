//! The `Trainer` actor: learns from feedback on the tools and prompts the gateway serves.
//!
//! Owns the live view of every target's feedback (ratings, suggestions, tool-call outcomes with
//! their arguments, prompt fetches) over a sliding window, fed by [`RecordFeedback`] messages
//! that never hold up a request; the triggers that read it (error rate, mean rating, volume,
//! cooldown); the training runs it starts ([`run`]); and the watch over each version it
//! deployed, rolled back by itself when live results breach their threshold. It does not store
//! feedback (the feedback recorder does) and serves nothing (the served versions do).

pub mod approaches;
pub mod evaluate;
pub mod experiment;
pub mod llm;
pub mod run;
pub mod safety;
pub mod served;
mod stats;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::configuration::TrainerSettings;
use crate::registry::CatalogHandle;
use crate::store::feedback::NewFeedback;
use crate::store::Pool;
use approaches::Example;
use llm::Llm;
use served::ServedVersions;
pub use stats::TargetView;
use stats::{view_of, Seen};

/// Recorded uses kept per target for examples and evaluation.
const MAX_EXAMPLES: usize = 200;
/// Suggestions kept per target.
const MAX_SUGGESTIONS: usize = 50;

/// One piece of feedback or one automatic signal, with the call's arguments when it is one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordFeedback {
    /// The feedback.
    pub feedback: NewFeedback,
    /// The tool call's arguments (kept in memory for examples, never stored).
    pub arguments: Option<Value>,
}

/// Every target with its live figures, in kind and name order.
#[derive(Message)]
#[rtype(result = "Vec<TargetView>")]
pub struct ListTargets;

/// Starts a training run for one target now, whatever the triggers say; answers how it ended.
#[derive(Message)]
#[rtype(result = "Result<TrainingOutcome, String>")]
pub struct TrainNow {
    /// `tool` or `prompt`.
    pub kind: String,
    /// The target's name.
    pub target: String,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingOutcome {
    /// The approach.
    pub approach: String,
    /// Why.
    pub reason: String,
    /// `deployed`, `rejected` or `skipped`.
    pub outcome: String,
    /// The version deployed, if any.
    pub version: Option<i64>,
    /// The evaluation, if one ran.
    pub evaluation: Option<Value>,
}

/// A version the trainer deployed, watched against the one it replaced.
#[derive(Debug, Clone)]
struct Watch {
    version: i64,
    previous: i64,
    /// The error rate of the replaced version when it was replaced.
    baseline: f64,
}

/// What the trainer needs besides feedback.
pub struct TrainerDeps {
    /// The store (versions, runs).
    pub pool: Pool,
    /// The catalog (original texts, schemas).
    pub catalog: CatalogHandle,
    /// The served versions (reloaded after deploys and rollbacks).
    pub served: Arc<ServedVersions>,
}

/// The trainer actor.
pub struct Trainer {
    settings: TrainerSettings,
    /// How far back the live figures look.
    window: Duration,
    deps: TrainerDeps,
    llm: Option<Llm>,
    /// Signals per (kind, target), oldest first.
    seen: BTreeMap<(String, String), VecDeque<Seen>>,
    /// Recorded uses per (kind, target), oldest first.
    examples: HashMap<(String, String), VecDeque<Example>>,
    /// Suggestions per (kind, target), oldest first.
    suggestions: HashMap<(String, String), VecDeque<String>>,
    /// Targets with a run under way.
    running: HashSet<(String, String)>,
    /// When each target's last run started.
    last_run: HashMap<(String, String), Instant>,
    /// Versions deployed by the trainer, watched.
    watched: HashMap<(String, String), Watch>,
}

impl Trainer {
    /// A trainer whose live figures cover `window`.
    pub fn new(settings: TrainerSettings, window: Duration, deps: TrainerDeps) -> Self {
        let llm = (!settings.llm.base_url.is_empty()).then(|| Llm {
            base_url: settings.llm.base_url.clone(),
            model: settings.llm.model.clone(),
            api_key: std::env::var(&settings.llm.api_key_env)
                .ok()
                .filter(|_| !settings.llm.api_key_env.is_empty())
                .map(Into::into),
            timeout: Duration::from_millis(settings.llm.timeout_ms),
        });
        Trainer {
            settings,
            window,
            deps,
            llm,
            seen: BTreeMap::new(),
            examples: HashMap::new(),
            suggestions: HashMap::new(),
            running: HashSet::new(),
            last_run: HashMap::new(),
            watched: HashMap::new(),
        }
    }

    fn view(kind: &str, target: &str, seen: &VecDeque<Seen>) -> TargetView {
        view_of(kind, target, seen.iter())
    }

    /// What a run for `key` needs, or why it cannot run.
    fn job(&self, key: &(String, String), trigger: &str) -> Result<run::Job, String> {
        let snapshot = self.deps.catalog.load();
        let (kind, target) = key;
        let entry = match kind.as_str() {
            "tool" => snapshot.catalog.tool(target),
            "prompt" => snapshot.catalog.prompt(target),
            _ => None,
        }
        .ok_or_else(|| format!("no {kind} is named `{target}`"))?;
        let original = match kind.as_str() {
            "tool" => entry.item["description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        let current = self
            .deps
            .served
            .get(kind, target)
            .map_or_else(|| original.clone(), |s| s.text);
        let placeholders = crate::catalog::required_arguments(&entry.item);
        Ok(run::Job {
            kind: kind.clone(),
            target: target.clone(),
            trigger: trigger.into(),
            current,
            original,
            schema: entry.item.get("inputSchema").cloned().unwrap_or_default(),
            examples: self
                .examples
                .get(key)
                .map(|e| e.iter().cloned().collect())
                .unwrap_or_default(),
            suggestions: self
                .suggestions
                .get(key)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
            llm: self.llm.clone(),
            llm_budget: self.settings.llm.max_calls_per_run,
            margin: self.settings.margin,
            placeholders,
            canary_share: self.settings.canary_share,
            example_values: self.settings.example_values,
        })
    }

    /// Starts a run for `key`; `reply` hears how it ended.
    fn start_run(
        &mut self,
        key: (String, String),
        trigger: &str,
        reply: Option<tokio::sync::oneshot::Sender<Result<TrainingOutcome, String>>>,
        ctx: &mut Context<Self>,
    ) {
        let job = match self.job(&key, trigger) {
            Ok(job) => job,
            Err(err) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(err));
                }
                return;
            }
        };
        let baseline = self
            .seen
            .get(&key)
            .map_or(0.0, |s| Self::view(&key.0, &key.1, s).error_rate);
        self.running.insert(key.clone());
        self.last_run.insert(key.clone(), Instant::now());
        let work = run::train(job, self.deps.pool.clone(), self.deps.served.clone());
        ctx.spawn(work.into_actor(self).map(move |finished, act, _| {
            act.running.remove(&key);
            if let Some((version, previous)) = finished.deployed {
                act.watched.insert(
                    key.clone(),
                    Watch {
                        version,
                        previous,
                        baseline,
                    },
                );
            }
            if let Some(reply) = reply {
                let run = finished.run;
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

    /// Starts runs whose triggers fire, rolls back watched versions that do worse, and stops
    /// watching a version once it has twice the minimum volume without a breach.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let cooldown = Duration::from_millis(self.settings.cooldown_ms);
        let mut due = Vec::new();
        let mut rollbacks = Vec::new();
        let mut proven = Vec::new();
        for (key, seen) in &self.seen {
            let view = Self::view(&key.0, &key.1, seen);
            if let Some(watch) = self.watched.get(key) {
                let live = view_of(
                    &key.0,
                    &key.1,
                    seen.iter().filter(|s| s.version == Some(watch.version)),
                );
                let breached = live.error_rate > watch.baseline + self.settings.rollback_margin;
                if live.uses >= self.settings.min_volume.max(2) / 2 && breached {
                    rollbacks.push((key.clone(), watch.clone(), live.error_rate));
                } else if live.uses >= self.settings.min_volume.max(2) * 2 && !breached {
                    proven.push(key.clone());
                }
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
            if errors {
                due.push((key.clone(), "error_rate"));
            } else if ratings {
                due.push((key.clone(), "low_rating"));
            }
        }
        for key in proven {
            self.watched.remove(&key);
        }
        for (key, watch, live) in rollbacks {
            self.watched.remove(&key);
            let reason = format!(
                "version {} had a live error rate of {live:.2}, over {:.2} before it",
                watch.version, watch.baseline
            );
            let (pool, served) = (self.deps.pool.clone(), self.deps.served.clone());
            let undo = run::roll_back(pool, served, key.0, key.1, watch.previous, reason);
            ctx.spawn(undo.into_actor(self));
        }
        for (key, trigger) in due {
            self.start_run(key, trigger, None, ctx);
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
            let done = run::conclude(pool, served, key.0.clone(), key.1.clone(), margin);
            ctx.spawn(done.into_actor(self).map(move |deployed, act, _| {
                act.last_run.insert(key.clone(), Instant::now());
                if let Some((version, previous, baseline)) = deployed {
                    act.watched.insert(
                        key,
                        Watch {
                            version,
                            previous,
                            baseline,
                        },
                    );
                }
            }));
        }
    }
}

impl Actor for Trainer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = Duration::from_millis(self.settings.check_interval_ms.max(10));
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
    }
}

impl Handler<RecordFeedback> for Trainer {
    type Result = ();

    fn handle(&mut self, msg: RecordFeedback, _ctx: &mut Self::Context) {
        let feedback = msg.feedback;
        let now = Instant::now();
        let key = (feedback.target_kind.clone(), feedback.target.clone());
        if let Some(version) = feedback.version {
            let outcome = match (feedback.signal.as_str(), feedback.rating) {
                ("success", _) => Some(true),
                ("tool_error" | "protocol_error" | "error", _) => Some(false),
                (_, Some(rating)) => Some(rating >= 0.5),
                _ => None,
            };
            if let Some(success) = outcome {
                self.deps
                    .served
                    .experiments
                    .record(&key.0, &key.1, version, success);
            }
        }
        if let Some(arguments) = msg.arguments {
            let examples = self.examples.entry(key.clone()).or_default();
            examples.push_back(Example {
                arguments,
                ok: feedback.signal == "success",
                error: feedback.error.clone(),
            });
            if examples.len() > MAX_EXAMPLES {
                examples.pop_front();
            }
        }
        if let Some(suggestion) = &feedback.suggestion {
            let suggestions = self.suggestions.entry(key.clone()).or_default();
            suggestions.push_back(suggestion.clone());
            if suggestions.len() > MAX_SUGGESTIONS {
                suggestions.pop_front();
            }
        }
        let seen = self.seen.entry(key).or_default();
        seen.push_back(Seen {
            at: now,
            signal: feedback.signal,
            rating: feedback.rating,
            version: feedback.version,
        });
        while seen
            .front()
            .is_some_and(|s| now.duration_since(s.at) > self.window)
        {
            seen.pop_front();
        }
    }
}

impl Handler<TrainNow> for Trainer {
    type Result = ResponseFuture<Result<TrainingOutcome, String>>;

    fn handle(&mut self, msg: TrainNow, ctx: &mut Self::Context) -> Self::Result {
        let key = (msg.kind, msg.target);
        if self.running.contains(&key) {
            return Box::pin(async { Err("a run for this target is under way".to_string()) });
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.start_run(key, "manual", Some(reply), ctx);
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err("the run was dropped".into()))
        })
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
