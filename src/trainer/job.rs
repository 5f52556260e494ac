//! What a training run is given ([`Job`]): the target's current and original texts (for a
//! prompt, the template learnt from its fetches), its schema, its recorded uses and suggestions,
//! its siblings' texts and calls for the evaluation, and the LLM if one is set and the day's
//! budget of calls is not spent, with the calls the run may make and has made.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use super::approaches::Example;
use super::llm::Llm;
use super::served::Served;
use super::{evaluate, inputs, prompt, topic, Trainer, MAX_SIBLINGS, SIBLING_CALLS};
use crate::registry::Snapshot;

/// How many changes of a prompt's text for the same arguments, within the trainer's window,
/// keep the prompt from being trained: one is a new release of its backend; two, a text that
/// changes.
pub(super) const MAX_TEXT_CHANGES: usize = 2;

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
    /// For a prompt, the backend's text (a template) that [`Job::current`] was made from: the
    /// learnt template itself, or what the deployed version was made from (`None` for one an
    /// operator wrote). What the run makes is served only while the backend still renders it.
    pub based_on: Option<String>,
    /// For a tool, its input schema now ([`crate::catalog::input_schema`]): what the run makes
    /// is served only while the tool keeps it.
    pub based_on_schema: Option<Value>,
    /// The backend's own text (version 1).
    pub original: String,
    /// The tool's input schema (`null` for a prompt), and the siblings' texts and calls, for
    /// the approaches and the evaluation.
    pub context: evaluate::Context,
    /// Recorded uses, newest last.
    pub examples: Vec<Example>,
    /// Suggestions received (data).
    pub suggestions: Vec<String>,
    /// The optimizer LLM, if one is set and its daily budget is not spent.
    pub llm: Option<Llm>,
    /// Whether an LLM is set but its daily budget is spent.
    pub llm_spent: bool,
    /// LLM calls allowed in this run.
    pub llm_budget: u32,
    /// LLM calls made so far (see [`Job::ask`]).
    pub llm_used: AtomicU32,
    /// The adversarial inputs the LLM wrote for this target: kept from an earlier run, or
    /// asked in this one, or why it gave none (asked once per run; see [`super::inputs`]).
    pub inputs: OnceLock<Result<Vec<Value>, String>>,
    /// Whether [`Job::inputs`] were kept from an earlier run.
    pub inputs_kept: bool,
    /// The improvement's lower bound must beat this.
    pub margin: f64,
    /// Placeholders a prompt template must keep.
    pub placeholders: Vec<String>,
    /// Share of new sessions in a live experiment.
    pub canary_share: f64,
    /// Whether few-shot examples quote argument values (else only their shape).
    pub example_values: bool,
}

/// The window of `trainer.llm.max_calls_per_day`.
pub(super) const DAY: Duration = Duration::from_secs(86_400);

impl Job {
    /// A version of this run's target as served: `text`, made from what the run started from.
    pub fn served(&self, version: i64, text: String) -> Served {
        Served {
            version,
            text,
            based_on: self.based_on.clone(),
            based_on_schema: self.based_on_schema.clone(),
            ..Default::default()
        }
    }

    /// Whether the run may still ask the LLM.
    pub fn can_ask(&self) -> bool {
        self.llm.is_some() && self.llm_used.load(Ordering::Relaxed) < self.llm_budget
    }

    /// Asks the LLM for one completion of `request`, counting the call; `None` when no LLM is
    /// set or the run's budget of calls is used.
    pub async fn ask(&self, request: &str) -> Option<Result<String, String>> {
        let llm = self.llm.as_ref()?;
        let used = self.llm_used.fetch_add(1, Ordering::Relaxed);
        if used >= self.llm_budget {
            self.llm_used.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(llm.complete(request).await)
    }

    /// LLM calls made so far in this run.
    pub(super) fn calls_made(&self) -> u32 {
        self.llm_used.load(Ordering::Relaxed)
    }

    /// LLM calls made, and the inputs it wrote in this run with what they were asked for
    /// (see [`inputs::basis`]).
    pub(super) fn spent(&self) -> (u32, Option<(String, Vec<Value>)>) {
        let fresh = (!self.inputs_kept).then(|| self.inputs.get().cloned());
        let fresh = fresh.flatten().and_then(Result::ok);
        let basis = || inputs::basis(&self.kind, &self.context.schema, &self.placeholders);
        (self.calls_made(), fresh.map(|written| (basis(), written)))
    }
}

impl Trainer {
    /// LLM calls left in the day's budget (forgetting calls older than a day).
    pub(super) fn llm_left(&mut self) -> u32 {
        while self.llm_calls.front().is_some_and(|at| at.elapsed() > DAY) {
            self.llm_calls.pop_front();
        }
        match self.settings.llm.max_calls_per_day {
            0 => u32::MAX,
            cap => cap.saturating_sub(self.llm_calls.len() as u32),
        }
    }

    /// What a run for `key` needs, or why it cannot run.
    pub(super) fn job(&mut self, key: &(String, String), trigger: &str) -> Result<Job, String> {
        let left = self.llm_left();
        let spent = self.llm.is_some() && left == 0;
        let snapshot = self.deps.catalog.load();
        let (kind, target) = key;
        let entry = match kind.as_str() {
            "tool" => snapshot.catalog.tool(target),
            "prompt" => snapshot.catalog.prompt(target),
            _ => None,
        }
        .ok_or_else(|| format!("no {kind} is named `{target}`"))?;
        let original = match kind.as_str() {
            "tool" => entry.item["description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        // A version made from one fetch's text would be served to none of those that follow.
        let changes = match kind.as_str() {
            "prompt" => self.text_changes.get(target).map_or(0, |changes| {
                changes
                    .iter()
                    .filter(|at| at.elapsed() <= self.window)
                    .count()
            }),
            _ => 0,
        };
        if changes >= MAX_TEXT_CHANGES {
            return Err(format!(
                "the text of prompt `{target}` changed {changes} times in the last {} s between fetches with the same arguments (it holds something that changes, such as a time, or words for each client): a version made from one fetch's text would be served to none that follow",
                self.window.as_secs()
            ));
        }
        let served = self.deps.served.get(kind, target);
        // A prompt's baseline version has no text (its backend renders it): a run starts from
        // the template learnt from its fetches. So does one whose version was made from a text
        // the backend no longer renders (it is not served); a tool's whose version was made for
        // another description or input schema than its backend's starts from the description.
        let learnt = self.templates.get(target);
        let schema = (kind == "tool").then(|| crate::catalog::input_schema(&entry.item).clone());
        let renders = |s: &Served| {
            !s.text.is_empty()
                && match (kind.as_str(), learnt) {
                    ("prompt", None) => true,
                    ("prompt", Some(now)) => s.based_on.as_ref().is_none_or(|made| made == now),
                    _ => s.made_for(&original, schema.as_ref().unwrap_or(&Value::Null)),
                }
        };
        let (current, based_on) = match kind.as_str() {
            "prompt" => served
                .filter(renders)
                .map(|s| (s.text, s.based_on))
                .or_else(|| learnt.map(|t| (t.clone(), Some(t.clone()))))
                .ok_or_else(|| {
                    format!("the text of prompt `{target}` is not known yet: it is learnt from the prompt's first fetch that shows each argument only as it was given")
                })?,
            _ => {
                let current = served.filter(renders).map(|s| s.text);
                (current.unwrap_or_else(|| original.clone()), Some(original.clone()))
            }
        };
        let mut placeholders = crate::catalog::required_arguments(&entry.item);
        if kind == "prompt" {
            // Every placeholder of the text a run starts from stays, required or not.
            for name in prompt::placeholders(&current) {
                if !placeholders.contains(&name) {
                    placeholders.push(name);
                }
            }
        }
        let mut context = evaluate::Context {
            name: target.clone(),
            schema: entry.item.get("inputSchema").cloned().unwrap_or_default(),
            ..Default::default()
        };
        // Only an LLM's text is checked against the catalog's other texts (see `run::vet`); a
        // job whose budget is spent may still vet the answer of a batch it joined.
        if kind == "tool" && self.llm.is_some() {
            context.generic = self.generic_words(&snapshot);
            context.elsewhere = snapshot
                .catalog
                .tools
                .iter()
                .filter(|e| e.original != entry.original)
                .filter_map(|e| {
                    let name = e.item["name"].as_str()?;
                    Some((name.to_string(), self.served_text(kind, name, &snapshot)))
                })
                .collect();
        }
        if kind == "tool" {
            let siblings =
                snapshot.catalog.tools.iter().filter(|e| {
                    e.connector == entry.connector && e.item["name"] != target.as_str()
                });
            for sibling in siblings.take(MAX_SIBLINGS) {
                let name = sibling.item["name"].as_str().unwrap_or_default();
                let text = self.served_text(kind, name, &snapshot);
                let calls = self.examples.get(&(kind.clone(), name.to_string()));
                let calls = calls
                    .into_iter()
                    .flatten()
                    .rev()
                    .take(SIBLING_CALLS)
                    .cloned();
                context.siblings.push(evaluate::Sibling {
                    name: name.to_string(),
                    text,
                    schema: sibling.item.get("inputSchema").cloned().unwrap_or_default(),
                    calls: calls.collect(),
                });
            }
        }
        if kind == "tool" {
            self.follow_schema(key, &entry.item);
        }
        let examples = self
            .examples
            .get(key)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let basis = inputs::basis(kind, &context.schema, &placeholders);
        let kept = self.inputs.get(key).filter(|(b, _)| *b == basis);
        let given = OnceLock::new();
        if let Some((_, kept)) = kept {
            let _ = given.set(Ok(kept.clone()));
        }
        Ok(Job {
            kind: kind.clone(),
            target: target.clone(),
            trigger: trigger.into(),
            current,
            based_on,
            based_on_schema: schema,
            original,
            context,
            examples,
            suggestions: self
                .suggestions
                .get(key)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
            llm: self.llm.clone().filter(|_| !spent),
            llm_spent: spent,
            llm_budget: self.settings.llm.max_calls_per_run.min(left),
            llm_used: AtomicU32::new(0),
            inputs_kept: kept.is_some(),
            inputs: given,
            margin: self.settings.margin,
            placeholders,
            canary_share: self.settings.canary_share,
            example_values: self.settings.example_values,
        })
    }

    /// The words found in the names and parameters of many of the catalog's tools, counted once
    /// per catalog snapshot.
    fn generic_words(&mut self, snapshot: &Arc<Snapshot>) -> Arc<HashSet<String>> {
        if let Some((counted, words)) = &self.generic {
            if Arc::ptr_eq(counted, snapshot) {
                return words.clone();
            }
        }
        let tools = snapshot.catalog.tools.iter().filter_map(|e| {
            let schema = e.item.get("inputSchema")?;
            Some((e.item["name"].as_str()?, schema))
        });
        let words = Arc::new(topic::generic_words(tools));
        self.generic = Some((snapshot.clone(), words.clone()));
        words
    }

    /// The text served for a tool (its production version, else the backend's description).
    pub(super) fn served_text(&self, kind: &str, name: &str, snapshot: &Snapshot) -> String {
        let tool = snapshot.catalog.tool(name).map(|e| &e.item);
        let own = tool
            .and_then(|t| t["description"].as_str())
            .unwrap_or_default();
        let schema = tool.map_or(&Value::Null, crate::catalog::input_schema);
        match self.deps.served.get(kind, name) {
            Some(served) if served.made_for(own, schema) => served.text,
            _ => own.to_string(),
        }
    }
}
