//! A live experiment's arms as the store keeps them while it runs (their versions, production
//! first, and the sessions each was given), and as a restarted trainer rebuilds them from the
//! feedback since the experiment started. Pure.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::arm::{outcome, Arm};
use super::served::Served;
use super::stats::version_of;
use crate::store::feedback::{Outcome, AUTOMATIC};

/// The arms as stored: their versions, production first, and the sessions each was given.
pub fn stored_arms(arms: &[Arm]) -> String {
    let arms: Vec<Value> = arms
        .iter()
        .map(|a| json!({"version": a.served.version, "sessions": a.sessions}))
        .collect();
    Value::Array(arms).to_string()
}

/// The versions and sessions of arms as [`stored_arms`] wrote them, or `None` when the text
/// is not that.
pub fn read_arms(text: &str) -> Option<Vec<(i64, u64)>> {
    let arms: Vec<Value> = serde_json::from_str(text).ok()?;
    arms.iter()
        .map(|a| Some((a["version"].as_i64()?, a["sessions"].as_u64()?)))
        .collect()
}

/// The arms of an experiment taken back after a restart, and the sessions assigned to them:
/// `arms` are its versions (production first) with the sessions stored for each, and `rows`
/// the target's feedback since it started, oldest first. Each row counts as it counted live
/// ([`outcome`]) for the arm of the version it is about (`stats::version_of`: a client's
/// feedback that names none is about what its session's latest row was about), or else of
/// its session's arm; a session belongs to the arm of the first version it was served. An
/// arm keeps the sessions stored for it unless more are seen in the rows (sessions that
/// joined after the last store).
pub fn rebuilt(arms: Vec<(Served, u64)>, rows: &[Outcome]) -> (Vec<Arm>, HashMap<String, usize>) {
    let mut assigned: HashMap<String, usize> = HashMap::new();
    let mut latest: HashMap<&str, Option<i64>> = HashMap::new();
    let mut arms: Vec<Arm> = arms
        .into_iter()
        .map(|(served, sessions)| Arm::new(served, sessions))
        .collect();
    for row in rows {
        let session = row.session_id.as_deref();
        let automatic = row.source == AUTOMATIC;
        let about = version_of(row.version, automatic, session, |session| {
            latest.get(session).copied().flatten()
        });
        let named = about.and_then(|v| arms.iter().position(|a| a.served.version == v));
        let arm = match (named, session) {
            (Some(arm), Some(session)) => {
                assigned.entry(session.to_string()).or_insert(arm);
                Some(arm)
            }
            (Some(arm), None) => Some(arm),
            (None, Some(session)) if about.is_none() => assigned.get(session).copied(),
            _ => None,
        };
        if let Some(session) = session {
            let version = about.or_else(|| arm.map(|arm| arms[arm].served.version));
            latest.insert(session, version);
        }
        let Some(arm) = arm else {
            continue;
        };
        match outcome(&row.signal, row.rating) {
            Some(true) => arms[arm].successes += 1,
            Some(false) => arms[arm].failures += 1,
            None => {}
        }
    }
    for (i, arm) in arms.iter_mut().enumerate() {
        let seen = assigned.values().filter(|&&a| a == i).count() as u64;
        arm.sessions = arm.sessions.max(seen);
    }
    (arms, assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(version: i64) -> Served {
        let text = format!("v{version}");
        Served {
            version,
            text,
            ..Default::default()
        }
    }

    fn row(
        version: Option<i64>,
        session: Option<&str>,
        signal: &str,
        rating: Option<f64>,
    ) -> Outcome {
        let source = if signal == "rating" { "api" } else { AUTOMATIC };
        Outcome {
            id: 0,
            origin: None,
            version,
            session_id: session.map(str::to_string),
            signal: signal.to_string(),
            rating,
            source: source.to_string(),
        }
    }

    #[test]
    fn arms_taken_back_count_the_feedback_as_it_counted_live() {
        let rows = [
            row(Some(2), Some("s1"), "success", None),
            row(Some(2), Some("s1"), "tool_error", None),
            row(None, Some("s1"), "rating", Some(1.0)),
            row(Some(1), Some("s2"), "success", None),
            row(None, Some("s2"), "rating", Some(0.0)),
            row(Some(1), None, "rating", Some(0.75)),
            row(Some(2), Some("s2"), "rating", Some(0.25)),
            // About version 2, as the session's latest row was, not the session's arm.
            row(None, Some("s2"), "rating", Some(1.0)),
            row(Some(9), Some("s3"), "success", None),
            row(None, Some("s3"), "rating", Some(1.0)),
            row(None, Some("s4"), "rating", Some(1.0)),
            row(Some(1), Some("s5"), "served", None),
        ];
        let arms = vec![(served(1), 0), (served(2), 5)];

        let (arms, assigned) = rebuilt(arms, &rows);

        let counts: Vec<(i64, u64, u64, u64)> = arms
            .iter()
            .map(|a| (a.served.version, a.successes, a.failures, a.sessions))
            .collect();
        assert_eq!(counts, [(1, 2, 1, 2), (2, 3, 2, 5)]);
        let mut assigned: Vec<(String, usize)> = assigned.into_iter().collect();
        assigned.sort();
        assert_eq!(
            assigned,
            [("s1".into(), 1), ("s2".into(), 0), ("s5".into(), 0)]
        );
    }

    #[test]
    fn stored_arms_read_back_and_other_text_does_not() {
        let arms = [Arm::new(served(4), 3), Arm::new(served(7), 9)];

        assert_eq!(read_arms(&stored_arms(&arms)), Some(vec![(4, 3), (7, 9)]));
        assert_eq!(read_arms(r#"[{"version": 4}]"#), None);
        assert_eq!(read_arms("not json"), None);
    }
}
