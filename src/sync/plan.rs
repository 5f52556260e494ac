//! What following the store means for one kind of API registration (connectors, virtual
//! servers): the rows that every gateway's API writes, against what this process runs. Pure, so
//! that the rules hold apart from the store and the registry.
//!
//! Settings are compared as JSON values, so a change this process made itself (stored, then
//! applied) is found equal and not applied a second time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::registry::Source;

/// One step that brings this process in line with the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Stored, not run here: start it with the stored settings.
    Add(String, Value),
    /// Stored with other settings than those run here: run the stored ones.
    Replace(String, Value),
    /// Run here from the API, no longer stored: retire it.
    Remove(String),
}

impl Step {
    /// The registration's name.
    pub fn name(&self) -> &str {
        match self {
            Step::Add(name, _) | Step::Replace(name, _) | Step::Remove(name) => name,
        }
    }

    /// What it does, as the log and the metrics say it.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Add(..) => "added",
            Step::Replace(..) => "changed",
            Step::Remove(_) => "removed",
        }
    }
}

/// Stored rows (name, settings as JSON text) by name. Text that is not JSON becomes null, which
/// nothing running has, so such a row is tried, fails, and is named in the log.
pub fn stored(rows: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, Value> {
    rows.into_iter()
        .map(|(name, text)| (name, serde_json::from_str(&text).unwrap_or(Value::Null)))
        .collect()
}

/// Running registrations (name, shared settings, source) by name, their settings as JSON.
pub fn running<T: Serialize>(
    items: impl IntoIterator<Item = (String, Arc<T>, Source)>,
) -> BTreeMap<String, (Value, Source)> {
    items
        .into_iter()
        .map(|(name, settings, source)| {
            let json = serde_json::to_value(&*settings).unwrap_or(Value::Null);
            (name, (json, source))
        })
        .collect()
}

/// Rows whose settings could not be applied here (invalid, a secret missing from this
/// process's environment, a name the settings file takes), by name, with those settings: they
/// are tried again only once they change, so that the log names each once.
pub type Failed = HashMap<String, Value>;

/// The steps from `running` (name → settings and where they come from) to `stored` (name →
/// settings). A name the settings file holds is never touched; a stored row is skipped while
/// its settings are those that `failed` holds for it.
pub fn steps(
    stored: &BTreeMap<String, Value>,
    running: &BTreeMap<String, (Value, Source)>,
    failed: &Failed,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for (name, settings) in stored {
        if failed.get(name) == Some(settings) {
            continue;
        }
        match running.get(name) {
            None | Some((_, Source::File)) => steps.push(Step::Add(name.clone(), settings.clone())),
            Some((ran, Source::Api)) if ran != settings => {
                steps.push(Step::Replace(name.clone(), settings.clone()))
            }
            Some(_) => {}
        }
    }
    for (name, (_, source)) in running {
        if *source == Source::Api && !stored.contains_key(name) {
            steps.push(Step::Remove(name.clone()));
        }
    }
    steps
}

/// Forgets the failures of rows no longer stored, or stored with other settings, so that a
/// row stored again with the same settings is tried again.
pub fn prune(failed: &mut Failed, stored: &BTreeMap<String, Value>) {
    failed.retain(|name, settings| stored.get(name) == Some(settings));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(rows: &[(&str, Value)]) -> BTreeMap<String, Value> {
        rows.iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    fn running(rows: &[(&str, Value, Source)]) -> BTreeMap<String, (Value, Source)> {
        rows.iter()
            .map(|(n, v, s)| (n.to_string(), (v.clone(), *s)))
            .collect()
    }

    #[test]
    fn the_same_settings_need_no_step_whatever_their_key_order() {
        let from_store = serde_json::from_str(r#"{"url": "http://a", "timeout_ms": 5}"#).unwrap();
        let steps = steps(
            &stored(&[("a", from_store)]),
            &running(&[(
                "a",
                json!({"timeout_ms": 5, "url": "http://a"}),
                Source::Api,
            )]),
            &Failed::new(),
        );
        assert_eq!(steps, vec![]);
    }

    #[test]
    fn new_changed_and_removed_rows_are_added_replaced_and_removed() {
        let steps = steps(
            &stored(&[("new", json!(1)), ("changed", json!(2)), ("same", json!(3))]),
            &running(&[
                ("changed", json!(1), Source::Api),
                ("same", json!(3), Source::Api),
                ("gone", json!(4), Source::Api),
            ]),
            &Failed::new(),
        );
        assert_eq!(
            steps,
            vec![
                Step::Replace("changed".into(), json!(2)),
                Step::Add("new".into(), json!(1)),
                Step::Remove("gone".into()),
            ]
        );
    }

    #[test]
    fn a_name_the_settings_file_holds_is_never_removed_and_its_row_is_tried_as_an_add() {
        // The add fails in the registry (the name is taken), and is then remembered as failed.
        let steps = steps(
            &stored(&[("filed", json!(1))]),
            &running(&[
                ("filed", json!(2), Source::File),
                ("other", json!(3), Source::File),
            ]),
            &Failed::new(),
        );
        assert_eq!(steps, vec![Step::Add("filed".into(), json!(1))]);
    }

    #[test]
    fn a_failed_row_is_tried_again_only_once_its_settings_change() {
        let failed = Failed::from([("a".to_string(), json!(1))]);
        let unchanged = steps(&stored(&[("a", json!(1))]), &running(&[]), &failed);
        let changed = steps(&stored(&[("a", json!(2))]), &running(&[]), &failed);
        assert_eq!(unchanged, vec![]);
        assert_eq!(changed, vec![Step::Add("a".into(), json!(2))]);
    }

    #[test]
    fn failures_of_rows_gone_or_changed_are_forgotten() {
        let mut failed = Failed::from([
            ("kept".to_string(), json!(1)),
            ("changed".to_string(), json!(1)),
            ("gone".to_string(), json!(1)),
        ]);
        prune(
            &mut failed,
            &stored(&[("kept", json!(1)), ("changed", json!(2))]),
        );
        assert_eq!(failed, Failed::from([("kept".to_string(), json!(1))]));
    }
}
