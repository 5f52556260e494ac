//! The `Trainer` actor: learns from feedback on the tools and prompts the gateway serves.
//!
//! Owns the live view of every target's feedback (ratings, suggestions, tool-call outcomes with
//! their arguments, prompt fetches) over a sliding window, fed by [`RecordFeedback`] messages
//! that never hold up a request; the triggers that read it (error rate, mean rating, thin
//! descriptions, volume, cooldown); the training runs it starts ([`run`], started and ended in
//! `running`, batched per backend in `batch`) within the LLM's budget; the watch over each
//! deployed version (`watch`), rolled back by itself when live results breach their
//! threshold; what it takes back from the store when it starts ([`restart`]); and, with
//! several gateways on one store, whether its triggers start runs ([`lease`]) and the feedback
//! the other gateways record ([`others`]). It does not store feedback (the feedback recorder
//! does) and serves nothing (the served versions do).

pub mod approaches;
pub mod arm;
pub mod arms;
mod batch;
mod draw;
pub mod evaluate;
mod examples;
pub mod experiment;
mod hidden;
pub mod inputs;
mod intake;
mod job;
pub mod joint;
pub mod lease;
pub mod live;
pub mod llm;
pub mod meta_prompt;
pub mod others;
pub mod prompt;
pub mod restart;
pub mod run;
mod running;
pub mod safety;
pub mod served;
mod stats;
mod tool;
pub mod topic;
mod triggers;
mod watch;
pub mod words;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::configuration::TrainerSettings;
use crate::metrics::Metrics;
use crate::registry::{CatalogHandle, Snapshot};
use crate::store::training_runs::NewRun;
use crate::store::Pool;
use approaches::Example;
pub use intake::RecordFeedback;
use llm::Llm;
use served::ServedVersions;
pub use stats::TargetView;
use stats::{view_of, Seen};
use watch::Watch;

/// Recorded uses kept per target for examples and evaluation.
const MAX_EXAMPLES: usize = 200;
/// Suggestions kept per target.
const MAX_SUGGESTIONS: usize = 50;
/// Signals kept per target in the window: the newest, whatever the window's length, so that
/// memory does not grow with the call rate (an hour of 10,000 calls/s would be 36 million).
const MAX_SEEN: usize = 10_000;
/// Other tools of the same backend whose texts a candidate is evaluated against.
const MAX_SIBLINGS: usize = 100;
/// Recent recorded calls of each sibling a candidate is evaluated on.
const SIBLING_CALLS: usize = 20;

/// What a prompt's backend rendered on a fetch, as a template (its arguments' values put back as
/// placeholders): the text a run for that prompt starts from.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PromptRendered {
    /// The prompt's name.
    pub target: String,
    /// The template.
    pub template: String,
}

/// Every target with its live figures, in kind and name order.
#[derive(Message)]
#[rtype(result = "Vec<TargetView>")]
pub struct ListTargets;

/// The prompts' texts learnt from their fetches (templates), by prompt.
#[derive(Message)]
#[rtype(result = "HashMap<String, String>")]
pub struct LearntTemplates;

/// Starts a training run for one target now, whatever the triggers say; answers how it ended.
#[derive(Message)]
#[rtype(result = "Result<TrainingOutcome, String>")]
pub struct TrainNow {
    /// `tool` or `prompt`.
    pub kind: String,
    /// The target's name.
    pub target: String,
}

/// Checks every trigger and every watched version now, as the periodic check does.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckNow;

/// How many runs, experiment conclusions and rollbacks are under way.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Pending;

/// Watch a version deployed by hand like one the trainer deployed: roll it back to `previous`
/// when its live results breach the threshold.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchDeploy {
    /// `tool` or `prompt`.
    pub kind: String,
    /// The target's name.
    pub target: String,
    /// The version deployed.
    pub version: i64,
    /// The production version it replaced.
    pub previous: i64,
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

/// What the trainer needs besides feedback.
pub struct TrainerDeps {
    /// The store (versions, runs).
    pub pool: Pool,
    /// The catalog (original texts, schemas).
    pub catalog: CatalogHandle,
    /// The served versions (reloaded after deploys and rollbacks).
    pub served: Arc<ServedVersions>,
    /// Counts training runs and LLM calls, and the operators' versions hiding a release.
    pub metrics: Arc<Metrics>,
}

impl TrainerDeps {
    /// What a rollback or an experiment's conclusion needs off the actor: the store, the
    /// served versions and the metrics.
    fn shared(&self) -> (Pool, Arc<ServedVersions>, Arc<Metrics>) {
        (self.pool.clone(), self.served.clone(), self.metrics.clone())
    }
}

/// Counts a recorded training run in the gateway's metrics.
fn count_run(metrics: &Metrics, run: &NewRun) {
    let (kind, approach) = (run.target_kind.as_str(), run.approach.as_str());
    metrics.training_run(kind, approach, &run.outcome, run.llm_calls);
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
    /// The input schema each tool's recorded calls were made for.
    schemas: examples::Schemas,
    /// Suggestions per (kind, target), oldest first.
    suggestions: HashMap<(String, String), VecDeque<String>>,
    /// Targets with a run under way.
    running: HashSet<(String, String)>,
    /// When each target's last run started.
    last_run: HashMap<(String, String), Instant>,
    /// Versions deployed by the trainer, watched.
    watched: HashMap<(String, String), Watch>,
    /// Targets the watch rolled back since their last run (a thin description put back may be
    /// rewritten again without waiting for new evidence).
    rolled_back: HashSet<(String, String)>,
    /// Runs, conclusions and rollbacks under way.
    pending: usize,
    /// When each LLM call of the last 24 hours was made (or reserved by a run under way).
    llm_calls: VecDeque<Instant>,
    /// The catalog's generic words, and the snapshot they were counted on.
    generic: Option<(Arc<Snapshot>, Arc<HashSet<String>>)>,
    /// Each prompt's text as its backend last rendered it, as a template.
    templates: HashMap<String, String>,
    /// The prompts whose template changed since the trainer last stored them (at each check:
    /// a backend whose text differs on each fetch costs one write per check, not per fetch).
    unstored_templates: HashSet<String>,
    /// The adversarial inputs the LLM wrote for each target, and what they were asked for
    /// (see [`inputs::basis`]).
    inputs: HashMap<(String, String), (String, Vec<Value>)>,
    /// Versions deployed before a restart or by another gateway, to watch once the catalog is
    /// loaded (their groups need it), each with when the store was read ([`watch`]).
    resuming: Vec<(restart::Deploy, Instant)>,
    /// The deploys (target, version) watched here or taken up to be, and when each was made:
    /// each is taken up once ([`watch`]).
    deploys_known: HashMap<((String, String), i64), Instant>,
    /// When each prompt's learnt text last changed to another with the same placeholders (its
    /// backend's text changed): the latest [`job::MAX_TEXT_CHANGES`] times.
    text_changes: HashMap<String, VecDeque<Instant>>,
    /// Operators' production versions (kind, target, version) whose backend's text a release
    /// has changed since they were written, logged once ([`hidden`]).
    hidden: HashSet<(String, String, i64)>,
    /// This gateway's claim on the store's trainer lease; none when every trainer leads.
    lease: Option<lease::Lease>,
    /// Whether this trainer starts runs by itself ([`lease`]).
    leading: bool,
    /// Where reading the other gateways' feedback has got to; none with one gateway.
    others: Option<others::Others>,
    /// Live experiments this trainer ended (and when each started) that may still be stored:
    /// not to be taken up again from the store ([`others`]).
    concluded: HashSet<((String, String), i64)>,
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
            window,
            deps,
            llm,
            seen: BTreeMap::new(),
            examples: HashMap::new(),
            schemas: Default::default(),
            suggestions: HashMap::new(),
            running: HashSet::new(),
            last_run: HashMap::new(),
            watched: HashMap::new(),
            rolled_back: HashSet::new(),
            pending: 0,
            llm_calls: VecDeque::new(),
            generic: None,
            templates: HashMap::new(),
            unstored_templates: HashSet::new(),
            inputs: HashMap::new(),
            resuming: Vec::new(),
            deploys_known: HashMap::new(),
            text_changes: HashMap::new(),
            hidden: HashSet::new(),
            lease: lease::Lease::new(settings.lease_ms),
            leading: settings.lease_ms == 0,
            others: None,
            concluded: HashSet::new(),
            settings,
        }
    }

    fn view(kind: &str, target: &str, seen: &VecDeque<Seen>) -> TargetView {
        view_of(kind, target, seen.iter())
    }
}

impl Actor for Trainer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = Duration::from_millis(self.settings.check_interval_ms.max(10));
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
        self.keep_lease(ctx);
        self.keep_following(ctx);
    }
}

impl Handler<PromptRendered> for Trainer {
    type Result = ();

    fn handle(&mut self, msg: PromptRendered, ctx: &mut Self::Context) {
        let before = self.templates.get(&msg.target);
        if before != Some(&msg.template) {
            if before.is_some_and(|t| prompt::same_placeholders(t, &msg.template)) {
                let now = Instant::now();
                let changes = self.text_changes.entry(msg.target.clone()).or_default();
                changes.push_back(now);
                if changes.len() > job::MAX_TEXT_CHANGES {
                    changes.pop_front();
                }
            }
            let key = ("prompt".to_string(), msg.target.clone());
            self.drop_stale(&key, &msg.template, None, ctx);
            self.note_hidden_prompt(&msg.target, &msg.template);
            self.unstored_templates.insert(msg.target.clone());
            self.templates.insert(msg.target, msg.template);
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

impl Handler<LearntTemplates> for Trainer {
    type Result = MessageResult<LearntTemplates>;

    fn handle(&mut self, _msg: LearntTemplates, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.templates.clone())
    }
}

impl Handler<CheckNow> for Trainer {
    type Result = ();

    fn handle(&mut self, _msg: CheckNow, ctx: &mut Self::Context) {
        self.tick(ctx);
    }
}

impl Handler<Pending> for Trainer {
    type Result = usize;

    fn handle(&mut self, _msg: Pending, _ctx: &mut Self::Context) -> usize {
        self.pending
    }
}

impl Handler<WatchDeploy> for Trainer {
    type Result = ();

    fn handle(&mut self, msg: WatchDeploy, ctx: &mut Self::Context) {
        let key = (msg.kind, msg.target);
        self.watch(key.clone(), msg.version, msg.previous);
        if self.settings.check_manual_deploys {
            self.check_deploy(key, (msg.version, msg.previous), ctx);
        }
    }
}
