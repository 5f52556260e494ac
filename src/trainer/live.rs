//! Live experiments started (production beside a run's variant, and the rules' own candidate
//! when an LLM wrote the variant) and stored while they run, what their live results decide
//! (the best arm becomes production when it beats production by the margin), their end when
//! the backend's text their versions were made from is gone (as the watch of such a version
//! ends; for a tool, as soon as the catalog changes), and a deployed version rolled back when
//! the watch finds a breach.
//! Conclusions and rollbacks are recorded as training runs.

use std::sync::Arc;

use actix::prelude::*;
use actix_web::web;
use serde_json::{json, Value};

use super::arm::verdict;
use super::arms::stored_arms;
use super::evaluate;
use super::job::Job;
use super::prompt;
use super::run::{self, Writer};
use super::served::{Served, ServedVersions};
use super::Trainer;
use crate::metrics::Metrics;
use crate::registry::{CatalogChanged, Snapshot};
use crate::store::experiments::{self, Stored};
use crate::store::training_runs::NewRun;
use crate::store::{self, prompts, training_runs, Pool};

/// Starts a live experiment of `job`'s target: `production`, the stored `variant`, and the
/// rules' `alternative` when it passes the checks, differs from both, and (for a tool) tests no
/// worse offline than the text served now; it is then stored with the label `alternative` (the
/// run's `candidate` and `variant` stay on the stored variant). Returns the
/// versions served side by side, production first, and what the run's reason says of the
/// alternative.
pub(super) async fn start(
    job: &Job,
    production: i64,
    variant: Served,
    alternative: Option<(&'static str, String)>,
    pool: &Pool,
    served: &ServedVersions,
) -> (Vec<i64>, String) {
    // A prompt's baseline has no text: the backend renders it.
    let production = match job.kind.as_str() {
        "prompt" => Served {
            version: production,
            ..served.get(&job.kind, &job.target).unwrap_or_default()
        },
        _ => job.served(production, job.current.clone()),
    };
    let mut arms = vec![production, variant];
    let mut note = String::new();
    if let Some((approach, text)) = alternative {
        match third_arm(job, &text, &arms) {
            Err(why) => note = format!("; the {approach} candidate is not: {why}"),
            Ok(()) => {
                let now = crate::connector::now_ms();
                match run::store_candidate(pool, job, &text, approach, &["alternative"], now).await
                {
                    Ok((version, _)) => {
                        note = format!(", the last made by {approach} from the text served now");
                        arms.push(job.served(version, text));
                    }
                    Err(err) => note = format!("; storing the {approach} candidate failed: {err}"),
                }
            }
        }
    }
    let versions = arms.iter().map(|a| a.version).collect();
    let experiments = &served.experiments;
    let started_at_ms = experiments.start(&job.kind, &job.target, arms, job.canary_share);
    let started = experiments.arms(&job.kind, &job.target).map(|arms| Stored {
        target_kind: job.kind.clone(),
        target: job.target.clone(),
        arms: stored_arms(&arms),
        canary: job.canary_share,
        started_at_ms,
    });
    if let Some(started) = started {
        let put = move |conn: &mut store::AnyConnection| experiments::put(conn, &started);
        if let Err(err) = store::blocking(pool, put).await {
            log::error!(
                "storing the experiment of {} `{}` failed (a restart ends it): {err}",
                job.kind,
                job.target
            );
        }
    }
    (versions, note)
}

impl Trainer {
    /// Ends what the versions of `key` made from another text of its backend's than `now` (a
    /// tool's description, or the template a prompt's fetches teach, with the same
    /// placeholders), or for a tool's other input schema than `schema`, can no longer show, as
    /// they are not served: a live experiment of such versions (production stays, and the run
    /// says why), and the watch of such a version in production (it would see nothing, and
    /// hold back the target's triggers).
    pub(super) fn drop_stale(
        &mut self,
        key: &(String, String),
        now: &str,
        schema: Option<&Value>,
        ctx: &mut Context<Self>,
    ) {
        let stale = |served: &Served| match schema {
            Some(schema) => !served.made_for(now, schema),
            None => served
                .based_on
                .as_deref()
                .is_some_and(|made| made != now && prompt::same_placeholders(made, now)),
        };
        let what = match schema {
            Some(_) => "description or input schema",
            None => "text",
        };
        let arms = self.deps.served.experiments.arms(&key.0, &key.1);
        let made: Vec<String> = arms
            .unwrap_or_default()
            .iter()
            .skip(1)
            .filter(|a| stale(&a.served))
            .map(|a| a.served.version.to_string())
            .collect();
        if !made.is_empty() {
            let why = format!(
                "the backend's {what} is no longer the one versions {} were made from, so they cannot be served",
                made.join(", ")
            );
            self.end_experiment(key.clone(), Ending::Abandoned(why), ctx);
        }
        let watched = self.watched.get(key).map(|w| w.version);
        let production = self.deps.served.get(&key.0, &key.1);
        if production.is_some_and(|p| Some(p.version) == watched && stale(&p)) {
            self.watched.remove(key);
            let (kind, target) = key;
            log::info!("the watch of {kind} `{target}` ends: the backend's {what} is no longer the one its production version was made from, so that version is not served");
        }
    }

    /// Ends, for each tool in a live experiment or under watch, what [`Trainer::drop_stale`]
    /// says, against its backend's description in `snapshot`.
    pub(super) fn drop_stale_tools(&mut self, snapshot: &Snapshot, ctx: &mut Context<Self>) {
        let experiments = self.deps.served.experiments.targets();
        let tools: Vec<(String, String)> = experiments
            .into_iter()
            .chain(self.watched.keys().cloned())
            .filter(|(kind, _)| kind == "tool")
            .collect();
        for key in tools {
            if let Some(entry) = snapshot.catalog.tool(&key.1) {
                let own = entry.item["description"].as_str().unwrap_or_default();
                let schema = crate::catalog::input_schema(&entry.item);
                self.drop_stale(&key, own, Some(schema), ctx);
            }
        }
    }

    /// What a change of the catalog's tools ends or forgets at once, rather than at the next
    /// check: experiments and watches of stale tool versions ([`Trainer::drop_stale_tools`]),
    /// kept calls made for a tool's old schema ([`Trainer::follow_schemas`]), and the log of a
    /// release that an operator's version hides ([`Trainer::note_hidden_tools`]).
    pub(super) fn follow_catalog(&mut self, snapshot: &Arc<Snapshot>, ctx: &mut Context<Self>) {
        self.drop_stale_tools(snapshot, ctx);
        self.follow_schemas(snapshot);
        self.note_hidden_tools(snapshot);
    }

    /// Stores the sessions that joined live experiments since they were last stored, so that a
    /// restart keeps the sessions that made no call (what [`verdict`]'s uses per session count).
    pub(super) fn store_sessions(&mut self, ctx: &mut Context<Self>) {
        let Some(write) = store_sessions(&self.deps.pool, &self.deps.served) else {
            return;
        };
        self.pending += 1;
        ctx.spawn(write.into_actor(self).map(|stored, act, _| {
            act.pending -= 1;
            if let Err(err) = stored {
                log::warn!("storing the sessions of live experiments failed: {err}");
            }
        }));
    }
}

/// The write of the sessions that joined live experiments since they were last stored, if any
/// did: at each check, and at shutdown ([`super::restart::Flush`]).
pub(super) fn store_sessions(
    pool: &Pool,
    served: &ServedVersions,
) -> Option<impl std::future::Future<Output = Result<(), String>> + 'static> {
    let changed = served.experiments.to_store();
    if changed.is_empty() {
        return None;
    }
    Some(store::blocking(pool, move |conn| {
        for ((kind, target), started_at_ms, arms) in changed {
            experiments::set_arms(conn, (&kind, &target, started_at_ms), &arms)?;
        }
        Ok(())
    }))
}

/// Whether the rules' candidate `text` may join `arms` (see [`start`]), or why not.
fn third_arm(job: &Job, text: &str, arms: &[Served]) -> Result<(), String> {
    if text == job.current || arms.iter().any(|a| a.text == text) {
        return Err("it is the same as a version already served".into());
    }
    run::vet(job, text, Writer::Trainer)?;
    if job.kind == "tool" {
        let offline =
            evaluate::compare(&job.current, text, &job.examples, &job.context, job.margin);
        if offline.improvement < 0.0 {
            return Err(format!(
                "it tests worse offline (improvement {:.3})",
                offline.improvement
            ));
        }
    }
    Ok(())
}

/// How a live experiment ends.
pub enum Ending {
    /// Its live results decide, against this margin ([`verdict`]).
    Verdict(f64),
    /// It cannot go on, for this reason: production stays.
    Abandoned(String),
}

/// Ends a live experiment: the best arm becomes production when it beats production's success
/// rate by the margin without fewer successful uses per session ([`verdict`]), unless the
/// experiment is abandoned; the run is recorded either way. With several gateways serving it
/// (`shared`), the one whose conclusion takes the stored experiment out first concludes it;
/// the others only stop serving it.
pub async fn conclude(
    (pool, served, metrics): (Pool, Arc<ServedVersions>, Arc<Metrics>),
    (kind, target): (String, String),
    ending: Ending,
    shared: bool,
) -> Option<(i64, i64)> {
    let started_at_ms = served.experiments.started_at(&kind, &target);
    let arms = served.experiments.end(&kind, &target)?;
    let production = arms.first()?.clone();
    let (best, wins, reason, margin) = match ending {
        Ending::Verdict(margin) => {
            let (best, wins, reason) = verdict(&arms, margin)?;
            (best, wins, reason, Some(margin))
        }
        Ending::Abandoned(why) => (arms.get(1)?, false, why, None),
    };
    let best = best.clone();
    let figures: Vec<Value> = arms
        .iter()
        .map(|a| {
            json!({"version": a.served.version, "successes": a.successes,
            "failures": a.failures, "mean": a.mean(), "sessions": a.sessions,
            "successes_per_session": a.per_session()})
        })
        .collect();
    let now = crate::connector::now_ms();
    let run = NewRun {
        target_kind: kind.clone(),
        target: target.clone(),
        trigger: "experiment".into(),
        approach: "reinforcement".into(),
        reason,
        outcome: if wins { "deployed" } else { "kept" }.into(),
        candidate_version: Some(best.served.version),
        evaluation: Some(json!({ "arms": figures, "margin": margin }).to_string()),
        started_at_ms: now,
        llm_calls: 0,
    };
    let (version, previous) = (best.served.version, production.served.version);
    let experiment = format!("the live experiment of {kind} `{target}`");
    let mut counted = run.clone();
    let stored = web::block(move || {
        // Given back before the reload takes one: holding two at once deadlocks the pool when
        // several conclusions and rollbacks run together.
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        // One transaction: production moves only from the version the experiment ran
        // against, and the run is kept with the move.
        let moved = store::write(&mut conn, |conn| {
            match (shared, started_at_ms) {
                (true, Some(started_at_ms)) => {
                    let experiment = (kind.as_str(), target.as_str(), started_at_ms);
                    if experiments::remove_started(conn, experiment)? == 0 {
                        return Ok(None); // concluded by another gateway
                    }
                }
                _ => experiments::remove(conn, &kind, &target)?,
            }
            let unchanged = prompts::label(conn, &kind, &target, "production")? == Some(previous);
            let mut run = run;
            if wins && !unchanged {
                run.outcome = "kept".into();
                run.reason += "; production changed during the experiment, so it stays";
            }
            if wins && unchanged {
                prompts::move_label(
                    conn,
                    &kind,
                    &target,
                    "production",
                    version,
                    prompts::WON,
                    now,
                )?;
            }
            training_runs::insert(conn, &run)?;
            Ok(Some(wins && unchanged))
        });
        drop(conn);
        let moved = moved.map_err(|e| e.to_string())?;
        served.reload(&pool).map(|()| moved)
    })
    .await;
    match stored {
        Ok(Ok(None)) => {
            log::info!("{experiment} was concluded by another gateway");
            None
        }
        Ok(Ok(Some(moved))) => {
            // A winner not moved was recorded as kept (production changed meanwhile).
            counted.outcome = if moved { "deployed" } else { "kept" }.into();
            super::count_run(&metrics, &counted);
            moved.then_some((version, previous))
        }
        Ok(Err(err)) => {
            log::error!("concluding the experiment failed: {err}");
            None
        }
        Err(err) => {
            log::error!("concluding the experiment failed: {err}");
            None
        }
    }
}

/// Returns production from `from` to `previous`, unless `from` is no longer production, and
/// records why as a run started by `trigger`; says whether it rolled back.
pub async fn roll_back(
    (pool, served, metrics): (Pool, Arc<ServedVersions>, Arc<Metrics>),
    (kind, target): (String, String),
    (from, previous): (i64, i64),
    trigger: &'static str,
    reason: String,
) -> bool {
    let now = crate::connector::now_ms();
    let run = NewRun {
        target_kind: kind.clone(),
        target: target.clone(),
        trigger: trigger.into(),
        approach: "none".into(),
        reason: reason.clone(),
        outcome: "rolled_back".into(),
        candidate_version: Some(previous),
        evaluation: Some(json!({"restored": previous}).to_string()),
        started_at_ms: now,
        llm_calls: 0,
    };
    let named = format!("{kind} `{target}`");
    let counted = run.clone();
    let result = web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        // One transaction: a deploy or another rollback between the check and the move
        // must not be undone by this one.
        let moved = store::write(&mut conn, |conn| {
            if prompts::label(conn, &kind, &target, "production")? != Some(from) {
                return Ok(false);
            }
            prompts::move_label(
                conn,
                &kind,
                &target,
                "production",
                previous,
                &run.reason,
                now,
            )?;
            training_runs::insert(conn, &run)?;
            Ok(true)
        });
        drop(conn);
        if !moved.map_err(|e| e.to_string())? {
            return Ok(false);
        }
        served.reload(&pool).map(|()| true)
    })
    .await;
    match result {
        Ok(Ok(true)) => {
            super::count_run(&metrics, &counted);
            log::warn!(
                "rolled back {named} from version {from} to {previous} ({trigger}): {reason}"
            );
            return true;
        }
        Ok(Ok(false)) => {
            log::info!("version {from} of {named} is no longer production; no rollback")
        }
        Ok(Err(err)) => log::error!("rollback of {named} to version {previous} failed: {err}"),
        Err(err) => log::error!("rollback of {named} to version {previous} failed: {err}"),
    }
    false
}

impl Handler<CatalogChanged> for Trainer {
    type Result = ();

    fn handle(&mut self, msg: CatalogChanged, ctx: &mut Self::Context) {
        if msg.0.tools {
            let snapshot = self.deps.catalog.load();
            self.follow_catalog(&snapshot, ctx);
        }
    }
}
