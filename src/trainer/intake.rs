//! How feedback enters the trainer: each piece of feedback or automatic signal its gateway
//! records ([`RecordFeedback`], never holding up a request) and each row another gateway
//! recorded ([`super::others`]) goes into the target's window in the order it was made, counts
//! for the live experiment's arm of the version it is about, and brings its suggestion; this
//! gateway's tool calls also keep their arguments as examples.

use std::time::Instant;

use actix::prelude::*;
use serde_json::Value;

use super::approaches::Example;
use super::stats::{last_version, session_key, version_of, Seen};
use super::{arm, Trainer, MAX_SEEN, MAX_SUGGESTIONS};
use crate::store::feedback::{NewFeedback, Signal, ASSIGNED, AUTOMATIC};

/// One piece of feedback or one automatic signal, with the call's arguments when it is one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordFeedback {
    /// The feedback.
    pub feedback: NewFeedback,
    /// The arguments of the tool call or prompt fetch (kept in memory for examples, never
    /// stored).
    pub arguments: Option<Value>,
}

impl Handler<RecordFeedback> for Trainer {
    type Result = ();

    fn handle(&mut self, msg: RecordFeedback, _ctx: &mut Self::Context) {
        let feedback = msg.feedback;
        if feedback.signal == ASSIGNED {
            return; // counted when the session joined; stored for the other gateways
        }
        let key = (feedback.target_kind.clone(), feedback.target.clone());
        if let Some(arguments) = msg.arguments {
            let example = Example {
                arguments,
                ok: matches!(feedback.signal.as_str(), "success" | "served"),
                error: feedback.error.clone(),
                session: feedback.session_id.clone(),
                rating: None,
            };
            self.keep_example(&key, example);
        }
        // A session's rating of the target marks the calls it made (few-shot takes its examples
        // from sessions that did not rate the target badly).
        if let (Some(rating), Some(session)) = (feedback.rating, &feedback.session_id) {
            let examples = self.examples.get_mut(&key).into_iter().flatten();
            for example in examples.filter(|e| e.session.as_ref() == Some(session)) {
                example.rating = Some(rating);
            }
        }
        let row = Signal {
            target_kind: feedback.target_kind,
            target: feedback.target,
            version: feedback.version,
            session_id: feedback.session_id,
            signal: feedback.signal,
            rating: feedback.rating,
            suggestion: feedback.suggestion,
            source: feedback.source,
            created_at_ms: feedback.created_at_ms,
        };
        self.take_in(row, Instant::now());
    }
}

impl Trainer {
    /// Takes `row`, made `at`, into its target's window and into the target's live experiment:
    /// it is about the version it names; else, for a client's feedback, the one its session's
    /// latest signal was about; else the one its session was assigned in the experiment.
    pub(super) fn take_in(&mut self, row: Signal, at: Instant) {
        let key = (row.target_kind, row.target);
        let session = session_key(row.session_id.as_deref());
        let automatic = row.source == AUTOMATIC;
        let about = version_of(row.version, automatic, session, |session| {
            last_version(self.seen.get(&key), session)
        });
        let experiments = &self.deps.served.experiments;
        let version = about.or_else(|| {
            let session = row.session_id.as_deref()?;
            experiments.assigned(&key.0, &key.1, session)
        });
        let outcome = arm::outcome(&row.signal, row.rating);
        if let (Some(version), Some(success)) = (version, outcome) {
            experiments.record(&key.0, &key.1, version, success);
        }
        let seen = Seen {
            at,
            signal: row.signal,
            rating: row.rating,
            version,
            session,
        };
        self.note(key, seen, row.suggestion);
    }

    /// Puts a signal about `key` into the window in the order of when it was made, and its
    /// suggestion among the target's; drops what the window no longer holds.
    fn note(&mut self, key: (String, String), signal: Seen, suggestion: Option<String>) {
        if let Some(suggestion) = suggestion {
            let suggestions = self.suggestions.entry(key.clone()).or_default();
            suggestions.push_back(suggestion);
            if suggestions.len() > MAX_SUGGESTIONS {
                suggestions.pop_front();
            }
        }
        let now = Instant::now();
        let seen = self.seen.entry(key).or_default();
        let later = seen.iter().rev().take_while(|s| s.at > signal.at).count();
        seen.insert(seen.len() - later, signal);
        while seen.len() > MAX_SEEN
            || seen
                .front()
                .is_some_and(|s| now.duration_since(s.at) > self.window)
        {
            seen.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::trainer::{ListTargets, TrainerDeps};

    #[actix_rt::test]
    async fn the_window_keeps_at_most_max_seen_signals_per_target() {
        let settings = crate::configuration::Settings::load(std::path::Path::new("config"))
            .expect("the default settings load");
        let mut database = settings.database.clone();
        database.url = "sqlite://:memory:".into();
        let deps = TrainerDeps {
            pool: crate::store::pool(&database),
            catalog: Default::default(),
            served: Default::default(),
            metrics: Default::default(),
        };
        let window = Duration::from_secs(3600);
        let trainer = Trainer::new(settings.trainer.clone(), window, deps).start();
        for _ in 0..MAX_SEEN + 50 {
            trainer.do_send(RecordFeedback {
                feedback: NewFeedback {
                    target_kind: "tool".into(),
                    target: "t".into(),
                    version: None,
                    session_id: None,
                    signal: "success".into(),
                    rating: None,
                    suggestion: None,
                    error: None,
                    latency_ms: None,
                    source: AUTOMATIC.into(),
                    created_at_ms: 0,
                    origin: None,
                },
                arguments: None,
            });
        }

        let targets = trainer.send(ListTargets).await.unwrap();

        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].uses, MAX_SEEN);
    }
}
