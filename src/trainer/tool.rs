//! Choosing the approach for a tool description's run and making its candidate: the
//! meta-prompt when the description is thin, most calls fail for want of saying what the tool
//! is for, or suggestions came in (and an LLM is set); else adversarial hardening against the
//! failing calls and the edge cases of the schema (from the rules, and from the LLM when one is
//! set); else few-shot examples from successful calls; else nothing, and why. Prompt templates
//! have their own in [`super::prompt`].

use super::approaches::{self, Example};
use super::job::Job;
use super::run::ground;
use super::{evaluate, inputs, meta_prompt};

/// Picks the approach from the feedback pattern and makes a candidate.
pub(super) async fn propose(job: &Job) -> (&'static str, String, Option<String>) {
    let failures: Vec<&Example> = job.examples.iter().filter(|e| !e.ok).collect();
    let misrouted = failures
        .iter()
        .filter(|f| f.error.as_deref().is_some_and(evaluate::misrouted))
        .count();
    let schema = &job.context.schema;
    // Whether the rules alone would harden the text decides between them and the meta-prompt.
    let hardened = (!failures.is_empty())
        .then(|| approaches::harden(&job.current, schema, &rule_cases(job)))
        .flatten();
    let thin = approaches::is_thin(&job.current, &job.target);
    let mostly_failing = failures.len() * 2 > job.examples.len().max(1);
    let why = if thin {
        Some("the description says little beyond the tool's name")
    } else if mostly_failing && (hardened.is_none() || misrouted * 2 > failures.len()) {
        Some("most calls fail, and the text does not say what the tool is for")
    } else if !job.suggestions.is_empty() && hardened.is_none() {
        Some("suggestions came in")
    } else {
        None
    };
    if let (Some(why), true) = (why, job.can_ask()) {
        let errors: Vec<String> = failures.iter().filter_map(|f| f.error.clone()).collect();
        let request =
            meta_prompt::request(&job.target, &job.current, schema, &errors, &job.suggestions);
        return match job
            .ask(&request)
            .await
            .unwrap_or(Err("no call is left".into()))
        {
            Ok(text) => {
                let (text, note) = ground(&text, job);
                let reason = format!("{why}, and an LLM is set{note}");
                ("meta-prompt", reason, Some(text))
            }
            Err(err) => ("meta-prompt", format!("{why}; the LLM failed: {err}"), None),
        };
    }
    if let Some((approach, reason, text)) = by_rules(job).await {
        return (approach, reason, Some(text));
    }
    let reason = match (&job.llm, job.llm_spent, why) {
        (None, true, Some(_)) => {
            "the meta-prompt is needed, but the LLM's daily call budget is spent"
        }
        (None, false, Some(_)) => "the meta-prompt is needed, and it is disabled without an LLM",
        _ => "not enough recorded interactions to learn from",
    };
    ("none", reason.into(), None)
}

/// What the approaches without an LLM make of the text served now, with the approach and why:
/// the text hardened against the failing calls and the edge cases of its schema (the rules',
/// and the inputs the LLM wrote when one is set), else few-shot examples from successful calls.
pub(super) async fn by_rules(job: &Job) -> Option<(&'static str, String, String)> {
    let schema = &job.context.schema;
    let failures = job.examples.iter().filter(|e| !e.ok).count();
    let successes = job.examples.len() - failures;
    if failures > 0 {
        let mut cases = rule_cases(job);
        let mut tested = "; the rules' edge cases were run".to_string();
        match inputs::generated(job).await {
            None => {}
            Some(Err(err)) => tested += &format!(" ({err})"),
            Some(Ok(given)) => {
                let broken = inputs::breaking(schema, &given);
                tested += &format!(
                    ", and {} of the LLM's {} inputs broke the schema",
                    broken.len(),
                    given.len()
                );
                cases.extend(broken);
            }
        }
        if let Some(text) = approaches::harden(&job.current, schema, &cases) {
            let reason = format!(
                "{failures} calls failed, and the text does not document the parameters they \
                 or edge cases break{tested}"
            );
            return Some(("adversarial", reason, text));
        }
    }
    if successes >= 2 {
        if let Some(text) = approaches::few_shot(&job.current, &job.examples, job.example_values) {
            let reason = format!("{successes} successful calls give examples");
            return Some(("few-shot", reason, text));
        }
    }
    None
}

/// The cases the rules harden a text against: the recorded calls (failing calls show that the
/// text breaks) and the edge cases of its schema (they show where else).
fn rule_cases(job: &Job) -> Vec<Example> {
    let mut cases = job.examples.clone();
    cases.extend(approaches::edge_cases(&job.context.schema));
    cases
}
