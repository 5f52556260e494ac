//! The versions served in place of the backends' own texts: each target's production version,
//! loaded from the store at start-up and after every deploy or rollback, read lock-free by
//! `tools/list` and `prompts/get`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::Value;

use super::experiment::Experiments;
use crate::store::prompts;
use crate::store::Pool;

/// A served version: its number and text, and the backend's text it was made from, where it is
/// served only while the backend's text is still that ([`prompts::Version::based_on`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    /// The version number.
    pub version: i64,
    /// The text.
    pub text: String,
    /// The backend's text it was made from (a prompt's as a template), if any.
    pub based_on: Option<String>,
    /// The tool's input schema it was made for, if recorded
    /// ([`prompts::Version::based_on_schema`]).
    pub based_on_schema: Option<Value>,
}

impl Served {
    /// Whether this tool version may be served in place of the backend's `description` of a
    /// tool whose input schema is `schema` ([`crate::catalog::input_schema`]): it was made from
    /// that description (the same words: a backend that only re-indents or re-wraps it has not
    /// changed it) for a schema of that shape ([`crate::catalog::same_shape`]), or written by
    /// an operator.
    pub fn made_for(&self, description: &str, schema: &Value) -> bool {
        let same_schema = |made: &Value| crate::catalog::same_shape(made, schema);
        self.based_on.as_deref().is_none_or(|made| {
            made.split_whitespace().eq(description.split_whitespace())
                && self.based_on_schema.as_ref().is_none_or(same_schema)
        })
    }
}

impl From<prompts::Version> for Served {
    /// A stored version as served; a schema the store does not hold as JSON counts as none
    /// (served whatever the schema).
    fn from(stored: prompts::Version) -> Self {
        Served {
            based_on_schema: stored.schema(),
            version: stored.version,
            text: stored.text,
            based_on: stored.based_on,
        }
    }
}

/// Production versions by (kind, target), and the live experiments.
#[derive(Default)]
pub struct ServedVersions {
    inner: ArcSwap<HashMap<(String, String), Served>>,
    /// Held from reading the store to publishing what was read, so that of two reloads racing
    /// the older read can never be published last.
    reloading: Mutex<()>,
    /// Versions tried side by side (the reinforcement approach).
    pub experiments: Experiments,
}

impl ServedVersions {
    /// What `session` is served for a use in place of the backend's own text, if a version was
    /// deployed: its experiment's version (which it joins only where the version `fits` the
    /// use, [`Experiments::serve`]), else production's, with the number its signals name. A
    /// version that does not fit is not served: the backend's own text is, named
    /// [`prompts::BASELINE`].
    pub fn serve(
        &self,
        kind: &str,
        target: &str,
        session: &str,
        fits: impl Fn(&Served) -> bool,
    ) -> Option<(i64, Option<Served>)> {
        let served = self
            .experiments
            .serve(kind, target, session, &fits)
            .or_else(|| self.get(kind, target))?;
        Some(match fits(&served) {
            true => (served.version, Some(served)),
            false => (prompts::BASELINE, None),
        })
    }

    /// The production version of a target, if one was deployed.
    pub fn get(&self, kind: &str, target: &str) -> Option<Served> {
        self.inner
            .load()
            .get(&(kind.to_string(), target.to_string()))
            .cloned()
    }

    /// Whether no target has a deployed version or an experiment (lists need no rewriting).
    pub fn is_empty(&self) -> bool {
        self.inner.load().is_empty() && self.experiments.is_empty()
    }

    /// Reloads every production version from the store (on a blocking thread's time).
    pub fn reload(&self, pool: &Pool) -> Result<(), String> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        let rows = prompts::production(&mut conn).map_err(|e| e.to_string())?;
        let map = rows
            .into_iter()
            .map(|v| ((v.target_kind.clone(), v.target.clone()), Served::from(v)))
            .collect();
        self.inner.store(Arc::new(map));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tool_version_is_served_only_for_the_description_and_schema_it_was_made_for() {
        let made = |based_on: Option<&str>, schema: Option<&str>| Served {
            version: 2,
            text: "Searches issues; give `repo`.".into(),
            based_on: based_on.map(str::to_string),
            based_on_schema: schema.map(|text| serde_json::from_str(text).unwrap()),
        };
        let stored = r#"{"required":["repo"],"type":"object"}"#;
        let (old, new) = (
            json!({"type": "object", "required": ["repo"]}),
            json!({"type": "object", "required": ["repository"]}),
        );
        assert!(made(Some("Search."), Some(stored)).made_for("Search.", &old));
        assert!(!made(Some("Search."), Some(stored)).made_for("Search.", &new));
        assert!(!made(Some("Search."), Some(stored)).made_for("Find.", &old));
        let rewrapped = "\n    Search.\n";
        assert!(made(Some("Search."), Some(stored)).made_for(rewrapped, &old));
        assert!(!made(Some("Search."), Some(stored)).made_for("Search. Fast.", &old));
        assert!(
            made(Some("Search."), None).made_for("Search.", &new),
            "one kept before schemas were recorded"
        );
        assert!(made(None, None).made_for("Find.", &new), "an operator's");
    }
}
