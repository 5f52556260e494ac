//! One training run: get a candidate (from `super::tool` or [`super::prompt`], which choose
//! the approach from the feedback pattern, or nothing, and say why), check its safety, evaluate
//! it against the deployed text, and deploy it only when it is better by the margin; or, for
//! thin descriptions, one LLM call for a backend's tools, judged together. Every run is
//! recorded, whatever its outcome.

use std::sync::Arc;

use actix_web::web;
use serde_json::Value;

use super::approaches;
use super::evaluate;
pub use super::job::Job;
use super::safety;
use super::served::ServedVersions;
use super::{inputs, joint, live, meta_prompt, prompt, tool, topic};
use crate::store::training_runs::NewRun;
use crate::store::{self, prompts, training_runs, Pool};

/// What a run proposes: the approach, why, its candidate, and (when an LLM wrote the
/// candidate) the one the approaches without an LLM make, tried live beside it.
pub struct Proposal {
    /// The approach chosen.
    pub approach: &'static str,
    /// Why.
    pub reason: String,
    /// The candidate, if one was made.
    pub candidate: Option<String>,
    /// The rules' candidate and its approach.
    pub alternative: Option<(&'static str, String)>,
}

/// How a run ended, for the trainer's bookkeeping.
pub struct Finished {
    /// The recorded run.
    pub run: NewRun,
    /// The version deployed and the one it replaced, if the run deployed.
    pub deployed: Option<(i64, i64)>,
    /// LLM calls the run made.
    pub llm_calls: u32,
    /// Adversarial inputs the LLM wrote in this run, for the trainer to keep.
    pub inputs: Option<(String, Vec<Value>)>,
}

/// Runs `job` to the end and records it.
pub async fn train(job: Job, pool: Pool, served: Arc<ServedVersions>) -> Finished {
    let (approach, reason, candidate) = match job.kind.as_str() {
        "prompt" => prompt::propose(&job).await,
        _ => tool::propose(&job).await,
    };
    // Beside an LLM's text, what the rules make of the text served now is tried live too.
    let alternative = match (approach, &candidate, job.kind.as_str()) {
        ("meta-prompt", Some(_), "prompt") => prompt::by_rules(&job).await,
        ("meta-prompt", Some(_), _) => tool::by_rules(&job).await,
        _ => None,
    };
    let alternative = alternative.map(|(approach, _, text)| (approach, text));
    let proposal = Proposal {
        approach,
        reason,
        candidate,
        alternative,
    };
    let mut done = settle(&job, proposal, None, pool.clone(), served.clone()).await;
    (done.llm_calls, done.inputs) = job.spent();
    if let Some(written) = &done.inputs {
        inputs::store(&job, written, &pool).await;
    }
    serve_deployed(&[&done], pool, served).await;
    done
}

/// Serves what `finished` deployed, once their runs are kept: who sees a new text sees why.
async fn serve_deployed(finished: &[&Finished], pool: Pool, served: Arc<ServedVersions>) {
    if finished.iter().all(|f| f.deployed.is_none()) {
        return;
    }
    match web::block(move || served.reload(&pool)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => log::error!("serving the deployed versions failed: {err}"),
        Err(err) => log::error!("serving the deployed versions failed: {err}"),
    }
}

/// Runs the jobs of several tools of one backend whose descriptions say little, with one LLM
/// call that rewrites them all (the meta-prompt, batched); each candidate is then checked,
/// evaluated, deployed or not, and recorded on its own. The first job's LLM is asked.
pub async fn train_together(
    jobs: Vec<Job>,
    pool: Pool,
    served: Arc<ServedVersions>,
) -> Vec<Finished> {
    let why = "the descriptions of this backend's tools say little beyond their names";
    let tools: Vec<(&str, &str, &Value)> = jobs
        .iter()
        .map(|j| (j.target.as_str(), j.current.as_str(), &j.context.schema))
        .collect();
    let request = meta_prompt::batch_request(&tools);
    let asked = match jobs.first() {
        Some(first) => first.ask(&request).await,
        None => None,
    };
    let answer = match asked {
        Some(answer) => answer,
        None if jobs.first().is_some_and(|j| j.llm_spent) => {
            Err("the LLM's daily call budget is spent".to_string())
        }
        None => Err("no LLM is set".to_string()),
    };
    let texts: Result<serde_json::Map<String, Value>, String> = answer.and_then(|a| {
        meta_prompt::batch_answer(&a)
            .ok_or_else(|| "the LLM's answer is not a JSON object of descriptions".into())
    });
    let mut candidates: Vec<(String, Option<String>)> = Vec::with_capacity(jobs.len());
    for job in &jobs {
        candidates.push(match &texts {
            Err(err) => (format!("{why}; {err}"), None),
            Ok(map) => match map.get(&job.target).and_then(Value::as_str) {
                Some(text) => {
                    let (text, note) = ground(text, job);
                    let reason = format!(
                        "{why}, and an LLM is set (one call for {} tools){note}",
                        jobs.len()
                    );
                    (reason, Some(text))
                }
                None => (
                    format!("{why}; the LLM's answer has no description for it"),
                    None,
                ),
            },
        });
    }
    let verdict = jobs
        .first()
        .map(|first| judge_together(first, &jobs, &candidates));
    let mut finished = Vec::with_capacity(jobs.len());
    for (i, (job, (reason, candidate))) in jobs.iter().zip(candidates).enumerate() {
        let given = verdict.as_ref().map(|v| (v.evaluation.clone(), v.kept[i]));
        let (pool, served) = (pool.clone(), served.clone());
        let proposal = Proposal {
            approach: "meta-prompt",
            reason,
            candidate,
            alternative: None,
        };
        let mut done = settle(job, proposal, given, pool, served).await;
        (done.llm_calls, done.inputs) = job.spent();
        finished.push(done);
    }
    // The set is served at once, after all its runs are kept.
    serve_deployed(&finished.iter().collect::<Vec<_>>(), pool, served).await;
    finished
}

/// The joint verdict on the safe candidates of `jobs`, whose first job's backend they all
/// belong to; `kept` is indexed like `jobs`.
fn judge_together(
    first: &Job,
    jobs: &[Job],
    candidates: &[(String, Option<String>)],
) -> joint::Verdict {
    let safe = |i: usize| {
        let text = candidates[i].1.as_deref()?;
        let job = &jobs[i];
        vet(job, text, Writer::Llm).is_ok().then_some(text)
    };
    let in_batch = |name: &str| jobs.iter().position(|j| j.target == name);
    let mut members = vec![joint::Member {
        deployed: &first.current,
        candidate: safe(0),
        schema: &first.context.schema,
        calls: &first.examples,
    }];
    let mut index = vec![Some(0)];
    for sibling in &first.context.siblings {
        let job = in_batch(&sibling.name);
        members.push(joint::Member {
            deployed: &sibling.text,
            candidate: job.and_then(safe),
            schema: &sibling.schema,
            calls: &sibling.calls,
        });
        index.push(job);
    }
    let verdict = joint::compare_together(&members, first.margin);
    let mut kept = vec![false; jobs.len()];
    for (member, job) in index.iter().enumerate() {
        if let Some(job) = job {
            kept[*job] = verdict.kept[member];
        }
    }
    joint::Verdict {
        evaluation: verdict.evaluation,
        kept,
    }
}

/// An LLM's text without its sentences that say nothing of the tool (see [`topic::grounded`]),
/// and what the run's reason says of them.
pub(super) fn ground(text: &str, job: &Job) -> (String, String) {
    let (text, dropped) = topic::grounded(text.trim(), &job.context);
    let note = match dropped {
        0 => String::new(),
        n => format!("; {n} of its sentences said nothing of the tool and were left out"),
    };
    (text, note)
}

/// Who wrote a candidate, for the checks it must pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Writer {
    /// The LLM: held to every check of [`topic::off_topic`].
    Llm,
    /// An operator, through the API: a text that describes a sibling fails, but the
    /// shared-words rule, made for LLM text, does not apply.
    Operator,
    /// The trainer's few-shot or hardening: the current text with the tool's own facts added.
    Trainer,
}

/// The checks a candidate passes before it is evaluated: the safety checks, and that a text
/// written anew is about its own tool (see [`topic::off_topic`]).
pub(super) fn vet(job: &Job, candidate: &str, writer: Writer) -> Result<(), String> {
    safety::check(&job.original, candidate, &job.placeholders)?;
    // A version is served only to fetches with an argument for each placeholder: one the
    // trainer's text adds would keep it from the fetches it was learnt from.
    if job.kind == "prompt" && !matches!(writer, Writer::Operator) {
        let mut names = prompt::placeholders(candidate).into_iter();
        if let Some(added) = names.find(|name| !job.placeholders.contains(name)) {
            return Err(format!(
                "it adds the placeholder `{{{{{added}}}}}`, for which the fetches its text was learnt from give no argument"
            ));
        }
    }
    let problem = match writer {
        Writer::Llm => topic::off_topic(candidate, &job.context, true).or_else(|| {
            let other = topic::copied(candidate, &job.context)?;
            Some(format!(
                "the text is the description of `{other}`, another tool"
            ))
        }),
        Writer::Operator => topic::off_topic(candidate, &job.context, false),
        Writer::Trainer => None,
    };
    match problem {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// What an LLM's text of a tool is deployed as, and whether it differs: the text with the
/// parameters that the edge cases of the schema break stated after it (see
/// [`approaches::stated`]), as the adversarial approach states them. The LLM's words alone are
/// checked and evaluated: the statement, which the schema gives any text of the tool, would
/// make every text look better than its words are.
fn deployable(job: &Job, candidate: &str, writer: Writer) -> (String, bool) {
    let stated = (writer == Writer::Llm && job.kind == "tool")
        .then(|| {
            let schema = &job.context.schema;
            approaches::stated(candidate, schema, &job.original, &job.placeholders)
        })
        .flatten();
    match stated {
        Some(stated) => (stated, true),
        None => (candidate.to_string(), false),
    }
}

/// Checks, evaluates, deploys (or tries live, or rejects) a run's candidate, and records the
/// run; the caller serves what it deployed ([`serve_deployed`]). `given` is the evaluation of a
/// candidate judged with others (and whether it was kept), which is then deployed or rejected,
/// never tried live.
async fn settle(
    job: &Job,
    proposal: Proposal,
    given: Option<(evaluate::Evaluation, bool)>,
    pool: Pool,
    served: Arc<ServedVersions>,
) -> Finished {
    let Proposal {
        approach,
        reason,
        candidate,
        alternative,
    } = proposal;
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
        llm_calls: 0,
    };
    run.approach = approach.into();
    run.reason = reason;
    let mut deployed = None;
    let mut stated = false;
    if let Some(candidate) = candidate {
        let writer = match approach {
            "meta-prompt" => Writer::Llm,
            _ => Writer::Trainer,
        };
        match vet(job, &candidate, writer) {
            Err(problem) => {
                run.outcome = "rejected".into();
                run.reason = format!(
                    "{}; the candidate failed a safety check: {problem}",
                    run.reason
                );
            }
            Ok(()) => {
                let deployed_text;
                (deployed_text, stated) = deployable(job, &candidate, writer);
                // A prompt's effect shows only in what models do with it: it is tried live.
                let live = given.is_none() && (job.kind == "prompt" || job.examples.len() >= 4);
                let (result, kept) = match &given {
                    Some((evaluation, kept)) => (evaluation.clone(), *kept),
                    None if job.kind == "prompt" => (evaluate::live_only(job.margin), true),
                    None => {
                        let own = evaluate::compare(
                            &job.current,
                            &candidate,
                            &job.examples,
                            &job.context,
                            job.margin,
                        );
                        (own, true)
                    }
                };
                run.evaluation = serde_json::to_string(&result).ok();
                if !kept {
                    run.outcome = "rejected".into();
                    run.reason = format!(
                        "{}; dropped from the backend's set: the set scores higher without it",
                        run.reason
                    );
                } else if result.better {
                    match store_candidate(&pool, job, &deployed_text, approach, DEPLOYED, now).await
                    {
                        Ok((version, previous)) => {
                            run.outcome = "deployed".into();
                            run.candidate_version = Some(version);
                            deployed = Some((version, previous));
                        }
                        Err(err) => {
                            run.outcome = "rejected".into();
                            run.reason =
                                format!("{}; storing the version failed: {err}", run.reason);
                        }
                    }
                } else if live && result.improvement >= 0.0 {
                    match store_candidate(&pool, job, &deployed_text, approach, TRIED, now).await {
                        Ok((variant, production)) => {
                            let variant = job.served(variant, deployed_text.clone());
                            let (arms, others) =
                                live::start(job, production, variant, alternative, &pool, &served)
                                    .await;
                            run.approach = "reinforcement".into();
                            run.outcome = "experiment".into();
                            run.candidate_version = arms.get(1).copied();
                            let why = match job.kind.as_str() {
                                "prompt" => "only ratings show what a prompt is worth".into(),
                                _ => format!(
                                    "inconclusive offline (lower bound {:.3})",
                                    result.lower_bound
                                ),
                            };
                            let listed: Vec<String> = arms.iter().map(i64::to_string).collect();
                            run.reason = format!(
                                "{}; {why}: versions {} are served side by side{others}",
                                run.reason,
                                listed.join(", ")
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
    if stated && matches!(run.outcome.as_str(), "deployed" | "experiment") {
        run.reason += "; the parameters that edge cases of its schema break are stated after it";
    }
    run.llm_calls = i32::try_from(job.calls_made()).unwrap_or(i32::MAX);
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
    Finished {
        run,
        deployed,
        llm_calls: 0,
        inputs: None,
    }
}

/// The labels of a run's candidate deployed at once.
const DEPLOYED: &[&str] = &["candidate", "production"];
/// The labels of a run's candidate tried live beside production.
const TRIED: &[&str] = &["candidate", "variant"];

/// Stores the candidate as a new version with `labels`; with `production` among them it is
/// deployed. Returns it and the production version it is measured against.
pub(super) async fn store_candidate(
    pool: &Pool,
    job: &Job,
    candidate: &str,
    approach: &str,
    labels: &'static [&'static str],
    now: i64,
) -> Result<(i64, i64), String> {
    let (pool, kind, target) = (pool.clone(), job.kind.clone(), job.target.clone());
    let (original, candidate) = (job.original.clone(), candidate.to_string());
    let based_on = job.based_on.clone();
    let based_on_schema = job.based_on_schema.as_ref().map(Value::to_string);
    let approach = approach.to_string();
    let reason = format!("{} ({approach})", prompts::TRAINED);
    web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        // One transaction: a version is never kept without its labels.
        store::write(&mut conn, |conn| {
            let schema = based_on_schema.as_deref();
            let production =
                prompts::ensure_baseline(conn, &kind, &target, &original, schema, now)?;
            let new = prompts::NewVersion {
                text: &candidate,
                approach: &approach,
                reason: &reason,
                based_on: based_on.as_deref(),
                based_on_schema: schema,
                ..Default::default()
            };
            let version = prompts::add_version(conn, &kind, &target, new, now)?;
            for label in labels {
                prompts::move_label(conn, &kind, &target, label, version, &reason, now)?;
            }
            Ok((version, production))
        })
        .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}
