//! One training run: choose an approach from the feedback pattern (or nothing, and say why),
//! make a candidate, check its safety, evaluate it against the deployed text, and deploy it only
//! when it is better by the margin. Every run is recorded, whatever its outcome.

use std::sync::Arc;

use actix_web::web;
use serde_json::{json, Value};

use super::approaches::{self, Example};
use super::evaluate;
use super::llm::Llm;
use super::safety;
use super::served::{Served, ServedVersions};
use crate::store::training_runs::NewRun;
use crate::store::{prompts, training_runs, Pool};

/// What a run needs to know, gathered by the trainer.
pub struct Job {
    /// `tool` or `prompt`.
    pub kind: String,
    /// The target's name.
    pub target: String,
    /// What started it.
    pub trigger: String,
    /// The text served now.
    pub current: String,
    /// The backend's own text (version 1).
    pub original: String,
    /// The tool's input schema (tools only).
    pub schema: Value,
    /// Recorded uses, newest last.
    pub examples: Vec<Example>,
    /// Suggestions received (data).
    pub suggestions: Vec<String>,
    /// The optimizer LLM, if one is set.
    pub llm: Option<Llm>,
    /// LLM calls allowed in this run.
    pub llm_budget: u32,
    /// The improvement's lower bound must beat this.
    pub margin: f64,
    /// Placeholders a prompt template must keep.
    pub placeholders: Vec<String>,
    /// Share of new sessions in a live experiment.
    pub canary_share: f64,
    /// Whether few-shot examples quote argument values (else only their shape).
    pub example_values: bool,
}

/// How a run ended, for the trainer's bookkeeping.
pub struct Finished {
    /// The recorded run.
    pub run: NewRun,
    /// The version deployed and the one it replaced, if the run deployed.
    pub deployed: Option<(i64, i64)>,
}

/// Runs `job` to the end and records it.
pub async fn train(job: Job, pool: Pool, served: Arc<ServedVersions>) -> Finished {
    let now = crate::connector::now_ms();
    let mut run = NewRun {
        target_kind: job.kind.clone(),
        target: job.target.clone(),
        trigger: job.trigger.clone(),
        approach: "none".into(),
        reason: String::new(),
        outcome: "skipped".into(),
        candidate_version: None,
        evaluation: None,
        started_at_ms: now,
    };
    let (approach, reason, candidate) = propose(&job).await;
    run.approach = approach.into();
    run.reason = reason;
    let mut deployed = None;
    if let Some(candidate) = candidate {
        match safety::check(&job.original, &candidate, &job.placeholders) {
            Err(problem) => {
                run.outcome = "rejected".into();
                run.reason = format!(
                    "{}; the candidate failed a safety check: {problem}",
                    run.reason
                );
            }
            Ok(()) => {
                let parameters: Vec<String> = job.schema["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                let result = evaluate::compare(
                    &job.current,
                    &candidate,
                    &job.examples,
                    &parameters,
                    job.margin,
                );
                run.evaluation = serde_json::to_string(&result).ok();
                if result.better {
                    match store_candidate(&pool, &job, &candidate, approach, "production", now)
                        .await
                    {
                        Ok((version, previous)) => {
                            run.outcome = "deployed".into();
                            run.candidate_version = Some(version);
                            deployed = Some((version, previous));
                            let (s, p) = (served.clone(), pool.clone());
                            let _ = web::block(move || s.reload(&p)).await;
                        }
                        Err(err) => {
                            run.outcome = "rejected".into();
                            run.reason =
                                format!("{}; storing the version failed: {err}", run.reason);
                        }
                    }
                } else if job.examples.len() >= 4 && result.improvement >= 0.0 {
                    match store_candidate(&pool, &job, &candidate, approach, "variant", now).await {
                        Ok((variant, production)) => {
                            let arms = vec![
                                Served {
                                    version: production,
                                    text: job.current.clone(),
                                },
                                Served {
                                    version: variant,
                                    text: candidate.clone(),
                                },
                            ];
                            served.experiments.start(
                                &job.kind,
                                &job.target,
                                arms,
                                job.canary_share,
                            );
                            run.approach = "reinforcement".into();
                            run.outcome = "experiment".into();
                            run.candidate_version = Some(variant);
                            run.reason = format!(
                                "{}; inconclusive offline (lower bound {:.3}): versions {production} and {variant} are served side by side",
                                run.reason, result.lower_bound
                            );
                        }
                        Err(err) => {
                            run.outcome = "rejected".into();
                            run.reason =
                                format!("{}; storing the variant failed: {err}", run.reason);
                        }
                    }
                } else {
                    run.outcome = "rejected".into();
                    run.reason = format!(
                        "{}; not better: improvement {:.3}, lower bound {:.3}, margin {:.3}",
                        run.reason, result.improvement, result.lower_bound, result.margin
                    );
                }
            }
        }
    }
    let stored = run.clone();
    let _ = web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        training_runs::insert(&mut conn, &stored).map_err(|e| e.to_string())
    })
    .await;
    log::info!(
        "training run for {} `{}`: {} ({}) — {}",
        run.target_kind,
        run.target,
        run.outcome,
        run.approach,
        run.reason
    );
    Finished { run, deployed }
}

/// Picks the approach from the feedback pattern and makes a candidate.
async fn propose(job: &Job) -> (&'static str, String, Option<String>) {
    let failures: Vec<&Example> = job.examples.iter().filter(|e| !e.ok).collect();
    let successes = job.examples.len() - failures.len();
    if !job.suggestions.is_empty() || failures.len() * 2 > job.examples.len().max(1) {
        if let (Some(llm), true) = (&job.llm, job.llm_budget > 0) {
            let errors: Vec<String> = failures.iter().filter_map(|f| f.error.clone()).collect();
            let request = approaches::meta_prompt_request(&job.current, &errors, &job.suggestions);
            return match llm.complete(&request).await {
                Ok(text) => (
                    "meta-prompt",
                    "suggestions or failures, and an LLM is set".into(),
                    Some(text),
                ),
                Err(err) => ("meta-prompt", format!("the LLM failed: {err}"), None),
            };
        }
    }
    if !failures.is_empty() && job.kind == "tool" {
        if let Some(text) = approaches::harden(&job.current, &job.schema, &job.examples) {
            let reason = format!(
                "{} failing calls name parameters the text does not document",
                failures.len()
            );
            return ("adversarial", reason, Some(text));
        }
    }
    if successes >= 2 && job.kind == "tool" {
        if let Some(text) = approaches::few_shot(&job.current, &job.examples, job.example_values) {
            let reason = format!("{successes} successful calls give examples");
            return ("few-shot", reason, Some(text));
        }
    }
    let reason = match (&job.llm, job.suggestions.is_empty()) {
        (None, false) => "suggestions need the meta-prompt, which is disabled without an LLM",
        _ => "not enough recorded interactions to learn from",
    };
    ("none", reason.into(), None)
}

/// Stores the candidate as a new version labelled `label` (and `candidate`); when `label` is
/// `production` it is deployed. Returns it and the production version it is measured against.
async fn store_candidate(
    pool: &Pool,
    job: &Job,
    candidate: &str,
    approach: &str,
    label: &'static str,
    now: i64,
) -> Result<(i64, i64), String> {
    let (pool, kind, target) = (pool.clone(), job.kind.clone(), job.target.clone());
    let (original, candidate) = (job.original.clone(), candidate.to_string());
    let approach = approach.to_string();
    let reason = format!("trained ({approach})");
    web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        let conn = &mut conn;
        let err = |e: diesel::result::Error| e.to_string();
        let production =
            prompts::ensure_baseline(conn, &kind, &target, &original, now).map_err(err)?;
        let version =
            prompts::add_version(conn, &kind, &target, &candidate, &approach, &reason, now)
                .map_err(err)?;
        prompts::move_label(conn, &kind, &target, "candidate", version, &reason, now)
            .map_err(err)?;
        if label != "candidate" {
            prompts::move_label(conn, &kind, &target, label, version, &reason, now).map_err(err)?;
        }
        Ok((version, production))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Ends a live experiment: the best arm becomes production when it beats production's success
/// rate by `margin`; the run is recorded either way.
pub async fn conclude(
    pool: Pool,
    served: Arc<ServedVersions>,
    kind: String,
    target: String,
    margin: f64,
) -> Option<(i64, i64, f64)> {
    let arms = served.experiments.end(&kind, &target)?;
    let production = arms.first()?.clone();
    let best = arms
        .iter()
        .max_by(|a, b| a.mean().total_cmp(&b.mean()))?
        .clone();
    let figures: Vec<Value> = arms
        .iter()
        .map(|a| {
            json!({"version": a.served.version, "successes": a.successes,
            "failures": a.failures, "mean": a.mean()})
        })
        .collect();
    let wins = best.served.version != production.served.version
        && best.mean() - production.mean() > margin;
    let now = crate::connector::now_ms();
    let run = NewRun {
        target_kind: kind.clone(),
        target: target.clone(),
        trigger: "experiment".into(),
        approach: "reinforcement".into(),
        reason: format!(
            "live results: version {} {:.2} against production {} {:.2}",
            best.served.version,
            best.mean(),
            production.served.version,
            production.mean()
        ),
        outcome: if wins { "deployed" } else { "kept" }.into(),
        candidate_version: Some(best.served.version),
        evaluation: Some(json!({ "arms": figures, "margin": margin }).to_string()),
        started_at_ms: now,
    };
    let (version, previous) = (best.served.version, production.served.version);
    let baseline = production.failures as f64 / production.uses().max(1) as f64;
    let stored = web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        if wins {
            prompts::move_label(
                &mut conn,
                &kind,
                &target,
                "production",
                version,
                "won the live experiment",
                now,
            )
            .map_err(|e| e.to_string())?;
        }
        training_runs::insert(&mut conn, &run).map_err(|e| e.to_string())?;
        served.reload(&pool)
    })
    .await;
    if let Ok(Err(err)) = &stored {
        log::error!("concluding the experiment failed: {err}");
    }
    wins.then_some((version, previous, baseline))
}

/// Returns production to `previous` because live results breached their thresholds.
pub async fn roll_back(
    pool: Pool,
    served: Arc<ServedVersions>,
    kind: String,
    target: String,
    previous: i64,
    reason: String,
) {
    let now = crate::connector::now_ms();
    let run = NewRun {
        target_kind: kind.clone(),
        target: target.clone(),
        trigger: "live_results".into(),
        approach: "none".into(),
        reason: reason.clone(),
        outcome: "rolled_back".into(),
        candidate_version: Some(previous),
        evaluation: Some(json!({"restored": previous}).to_string()),
        started_at_ms: now,
    };
    let result = web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        prompts::move_label(
            &mut conn,
            &kind,
            &target,
            "production",
            previous,
            &reason,
            now,
        )
        .map_err(|e| e.to_string())?;
        training_runs::insert(&mut conn, &run).map_err(|e| e.to_string())?;
        served.reload(&pool)
    })
    .await;
    match result {
        Ok(Ok(())) => log::warn!("rolled back to version {previous}: live results breached"),
        Ok(Err(err)) => log::error!("rollback to version {previous} failed: {err}"),
        Err(err) => log::error!("rollback to version {previous} failed: {err}"),
    }
}
