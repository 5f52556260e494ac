//! Feedback collection: what a client, a model or an operator says about a tool or a prompt the
//! gateway served, and the signals recorded automatically for every tool call and prompt fetch.
//!
//! Owns validation (every problem named by field) and the hand-off: each piece of feedback goes
//! to the [`Trainer`] as a message and to the store through a batch
//! [`Recorder`], never on the request's time. Suggestions are kept as data; nothing here reads
//! them as instructions.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Addr;
use serde::Deserialize;
use serde_json::Value;

use crate::metrics::Metrics;
use crate::recorder::{scrub, Record, Recorder};
use crate::registry::Snapshot;
use crate::store::feedback::{self, NewFeedback};
use crate::store::AnyConnection;
use crate::trainer::{PromptRendered, RecordFeedback, Trainer};

/// Longest suggestion or error text kept.
const MAX_TEXT: usize = 2000;

impl Record for NewFeedback {
    const WHAT: &'static str = "feedback records";

    fn insert(conn: &mut AnyConnection, rows: &[Self]) -> diesel::QueryResult<usize> {
        feedback::insert(conn, rows)
    }

    fn scrub(&mut self) {
        scrub(&mut self.target_kind);
        scrub(&mut self.target);
        scrub(&mut self.signal);
        scrub(&mut self.source);
        let optional = [
            &mut self.session_id,
            &mut self.suggestion,
            &mut self.error,
            &mut self.origin,
        ];
        optional.into_iter().flatten().for_each(scrub);
    }
}

/// Where feedback goes: the trainer and the store.
#[derive(Clone)]
pub struct FeedbackSink {
    /// Writes feedback in batches.
    pub recorder: Recorder<NewFeedback>,
    /// Learns from it.
    pub trainer: Addr<Trainer>,
    /// Counts it.
    pub metrics: Arc<Metrics>,
    /// This gateway process, as the rows it records name it.
    pub origin: Arc<str>,
}

impl FeedbackSink {
    /// Hands one piece of feedback on; never waits.
    pub fn record(&self, feedback: NewFeedback) {
        self.record_call(feedback, None);
    }

    /// Hands on a tool call's signal with its arguments (kept by the trainer, never stored).
    pub fn record_call(&self, mut feedback: NewFeedback, arguments: Option<serde_json::Value>) {
        feedback.origin = Some(self.origin.to_string());
        let labels = [feedback.target_kind.as_str(), feedback.signal.as_str()];
        self.metrics.feedback.with_label_values(&labels).inc();
        self.trainer.do_send(RecordFeedback {
            feedback: feedback.clone(),
            arguments,
        });
        self.recorder.record(feedback);
    }

    /// Hands on a prompt fetch's signal with its arguments, and the backend's text as a
    /// template if it had one (kept by the trainer as the text to train from, never stored).
    pub fn record_prompt(
        &self,
        feedback: NewFeedback,
        arguments: serde_json::Value,
        template: Option<String>,
    ) {
        if let Some(template) = template {
            self.trainer.do_send(PromptRendered {
                target: feedback.target.clone(),
                template,
            });
        }
        self.record_call(feedback, Some(arguments));
    }
}

/// Feedback as the API and the built-in tool take it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    /// `tool` or `prompt` (required; empty when not given, so that the other fields are still
    /// checked).
    #[serde(default)]
    pub target_kind: String,
    /// The name as clients see it (`github_search`; required, as `target_kind`).
    #[serde(default)]
    pub target: String,
    /// The version that was served, if the client knows it.
    #[serde(default)]
    pub version: Option<i64>,
    /// 1–5, or `"up"` / `"down"`.
    #[serde(default)]
    pub rating: Option<Value>,
    /// Free text: what would have been better.
    #[serde(default)]
    pub suggestion: Option<String>,
    /// An error the client saw.
    #[serde(default)]
    pub error: Option<String>,
    /// The client session (the built-in tool fills it in).
    #[serde(default)]
    pub session_id: Option<String>,
}

impl FeedbackInput {
    /// Checks the input against the catalog; returns the row or every problem by field.
    pub fn validate(
        self,
        snapshot: &Snapshot,
        source: &str,
        now_ms: i64,
    ) -> Result<NewFeedback, BTreeMap<String, String>> {
        let mut problems = BTreeMap::new();
        let mut problem = |field: &str, text: String| {
            problems.insert(field.to_string(), text);
        };
        if self.target.is_empty() {
            problem("target", "is required".into());
        }
        match self.target_kind.as_str() {
            "" => problem("target_kind", "is required".into()),
            "tool" | "prompt" if self.target.is_empty() => {}
            "tool" if snapshot.catalog.tool(&self.target).is_none() => {
                problem("target", format!("unknown tool `{}`", self.target))
            }
            "prompt" if snapshot.catalog.prompt(&self.target).is_none() => {
                problem("target", format!("unknown prompt `{}`", self.target))
            }
            "tool" | "prompt" => {}
            _ => problem("target_kind", "must be `tool` or `prompt`".into()),
        }
        let rating = match &self.rating {
            None => None,
            Some(value) => match parse_rating(value) {
                Some(rating) => Some(rating),
                None => {
                    problem(
                        "rating",
                        "must be an integer 1-5, \"up\" or \"down\"".into(),
                    );
                    None
                }
            },
        };
        for (field, text) in [("suggestion", &self.suggestion), ("error", &self.error)] {
            if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT) {
                problem(field, format!("must be at most {MAX_TEXT} characters"));
            }
        }
        let texts = [
            ("suggestion", &self.suggestion),
            ("error", &self.error),
            ("session_id", &self.session_id),
        ];
        for (field, text) in texts {
            if text.as_ref().is_some_and(|t| t.contains('\0')) {
                problem(field, crate::api::NO_NUL.into());
            }
        }
        if self.version.is_some_and(|v| v < 1) {
            problem("version", "must be 1 or more".into());
        }
        if self.rating.is_none() && self.suggestion.is_none() && self.error.is_none() {
            problem("rating", "give a rating, a suggestion or an error".into());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let signal = match (&rating, &self.suggestion) {
            (Some(_), _) => "rating",
            (None, Some(_)) => "suggestion",
            (None, None) => "error",
        };
        Ok(NewFeedback {
            target_kind: self.target_kind,
            target: self.target,
            version: self.version,
            session_id: self.session_id,
            signal: signal.into(),
            rating,
            suggestion: self.suggestion,
            error: self.error,
            latency_ms: None,
            source: source.into(),
            created_at_ms: now_ms,
            origin: None,
        })
    }
}

/// A rating normalized to 0–1: stars 1–5 → 0, 0.25, …, 1; up → 1, down → 0.
fn parse_rating(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) if s == "up" => Some(1.0),
        Value::String(s) if s == "down" => Some(0.0),
        Value::Number(n) => n
            .as_i64()
            .filter(|stars| (1..=5).contains(stars))
            .map(|stars| (stars - 1) as f64 / 4.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stars_and_thumbs_map_onto_zero_to_one() {
        assert_eq!(parse_rating(&json!(1)), Some(0.0));
        assert_eq!(parse_rating(&json!(5)), Some(1.0));
        assert_eq!(parse_rating(&json!(3)), Some(0.5));
        assert_eq!(parse_rating(&json!("up")), Some(1.0));
        assert_eq!(parse_rating(&json!("down")), Some(0.0));
        for bad in [json!(0), json!(6), json!(2.5), json!("meh"), json!(null)] {
            assert_eq!(parse_rating(&bad), None, "{bad}");
        }
    }

    #[test]
    fn every_problem_is_named() {
        let input: FeedbackInput = serde_json::from_value(json!({
            "target_kind": "widget", "target": "x", "rating": 9, "version": 0,
            "suggestion": "y".repeat(3000)}))
        .unwrap();
        let problems = input.validate(&Snapshot::default(), "api", 0).unwrap_err();
        let fields: Vec<_> = problems.keys().cloned().collect();
        assert_eq!(fields, ["rating", "suggestion", "target_kind", "version"]);
    }

    #[test]
    fn an_unknown_target_is_named() {
        let input: FeedbackInput = serde_json::from_value(json!({
            "target_kind": "tool", "target": "nope", "rating": "up"}))
        .unwrap();
        let problems = input.validate(&Snapshot::default(), "api", 0).unwrap_err();
        assert!(problems["target"].contains("nope"));
    }
}
