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
    /// For an operator's version, the backend's text when it was written, if recorded
    /// ([`prompts::Version::written_over`]).
    pub written_over: Option<String>,
    /// For an operator's tool version, the tool's input schema when it was written.
    pub written_over_schema: Option<Value>,
}

impl Served {
    /// Whether this tool version may be served in place of the backend's `description` of a
    /// tool whose input schema is `schema` ([`crate::catalog::input_schema`]): it was made from
    /// that description (the same words: a backend that only re-indents or re-wraps it has not
    /// changed it) for a schema of that shape ([`crate::catalog::same_shape`]), or written by
    /// an operator.
    pub fn made_for(&self, description: &str, schema: &Value) -> bool {
        let made = self.based_on.as_deref();
        made.is_none_or(|made| {
            same_tool((made, self.based_on_schema.as_ref()), description, schema)
        })
    }

    /// The backend's text this version was made from or, an operator's, written over, with a
    /// tool's input schema then, if recorded.
    fn basis(&self) -> Option<(&str, Option<&Value>)> {
        match (&self.based_on, &self.written_over) {
            (Some(made), _) => Some((made, self.based_on_schema.as_ref())),
            (None, Some(over)) => Some((over, self.written_over_schema.as_ref())),
            (None, None) => None,
        }
    }

    /// Whether a release changed the tool since this version was made or written: its backend
    /// now gives another `description` (other words) or an input `schema` of another shape.
    /// `None` where the version recorded neither (an operator's kept before they were).
    pub fn tool_released_since(&self, description: &str, schema: &Value) -> Option<bool> {
        let basis = self.basis()?;
        Some(!same_tool(basis, description, schema))
    }

    /// Whether a release changed the prompt since this version was made or written: its
    /// fetches now teach another template than `learnt`. `None` where the version recorded
    /// none (a prompt's first, an operator's written before a template was learnt).
    pub fn prompt_released_since(&self, learnt: &str) -> Option<bool> {
        self.basis().map(|(template, _)| template != learnt)
    }
}

/// Whether a tool whose backend gives `description` and `schema` is still the one `basis` (a
/// description, and a schema if recorded) was taken from: the same words (a backend that only
/// re-indents or re-wraps its description has not changed it) and a schema of the same shape
/// ([`crate::catalog::same_shape`]).
fn same_tool((text, made): (&str, Option<&Value>), description: &str, schema: &Value) -> bool {
    text.split_whitespace().eq(description.split_whitespace())
        && made.is_none_or(|made| crate::catalog::same_shape(made, schema))
}

impl From<prompts::Version> for Served {
    /// A stored version as served; a schema the store does not hold as JSON counts as none
    /// (served whatever the schema).
    fn from(stored: prompts::Version) -> Self {
        Served {
            based_on_schema: stored.schema(),
            written_over_schema: stored.written_over_schema(),
            version: stored.version,
            text: stored.text,
            based_on: stored.based_on,
            written_over: stored.written_over,
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
    /// [`prompts::BASELINE`]. A use with no session (`""`: a stateless request naming no
    /// principal) joins no experiment, whose versions are sticky per session. Also says
    /// whether the session joined an experiment's arm now.
    pub fn serve(
        &self,
        kind: &str,
        target: &str,
        session: &str,
        fits: impl Fn(&Served) -> bool,
    ) -> Option<(i64, Option<Served>, bool)> {
        let experiment = match session.is_empty() {
            true => None,
            false => self.experiments.serve(kind, target, session, &fits),
        };
        let joined = experiment.as_ref().is_some_and(|(_, joined)| *joined);
        let served = experiment
            .map(|(served, _)| served)
            .or_else(|| self.get(kind, target))?;
        Some(match fits(&served) {
            true => (served.version, Some(served), joined),
            false => (prompts::BASELINE, None, joined),
        })
    }

    /// The production version of a target, if one was deployed.
    pub fn get(&self, kind: &str, target: &str) -> Option<Served> {
        self.inner
            .load()
            .get(&(kind.to_string(), target.to_string()))
            .cloned()
    }

    /// The production versions of `kind`'s targets that an operator wrote over a backend's
    /// recorded text ([`Served::written_over`]), by target.
    pub fn written_over(&self, kind: &str) -> Vec<(String, Served)> {
        let inner = self.inner.load();
        let written = inner
            .iter()
            .filter(|((k, _), s)| k == kind && s.based_on.is_none() && s.written_over.is_some());
        written.map(|((_, t), s)| (t.clone(), s.clone())).collect()
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
            ..Default::default()
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

    #[test]
    fn a_release_since_a_version_was_made_or_written_is_told_by_the_text_it_was_taken_from() {
        let (old, new) = (
            json!({"required": ["repo"]}),
            json!({"required": ["repository"]}),
        );
        let written = Served {
            written_over: Some("Search.".into()),
            written_over_schema: Some(old.clone()),
            ..Default::default()
        };
        assert_eq!(
            written.tool_released_since("\n  Search.", &old),
            Some(false)
        );
        assert_eq!(written.tool_released_since("Search.", &new), Some(true));
        assert_eq!(written.tool_released_since("Find.", &old), Some(true));
        assert!(written.made_for("Find.", &new), "still served");
        let made = Served {
            based_on: Some("Search.".into()),
            written_over: Some("Find.".into()),
            ..Default::default()
        };
        assert_eq!(
            made.tool_released_since("Search.", &new),
            Some(false),
            "made from"
        );
        assert_eq!(Served::default().tool_released_since("Search.", &old), None);
        let prompt = Served {
            written_over: Some("Summarize {{topic}}.".into()),
            ..Default::default()
        };
        assert_eq!(
            prompt.prompt_released_since("Summarize {{topic}}."),
            Some(false)
        );
        assert_eq!(prompt.prompt_released_since("List {{topic}}."), Some(true));
        assert_eq!(
            Served::default().prompt_released_since("List {{topic}}."),
            None
        );
    }
}
