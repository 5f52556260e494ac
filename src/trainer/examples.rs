//! The uses the trainer keeps per target as few-shot examples and evaluation cases, and what a
//! backend's release does to a tool's: once the tool's input schema changes, its successful
//! calls that do not fit the new schema are no longer examples of it.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::approaches::Example;
use super::{inputs, Trainer, MAX_EXAMPLES};
use crate::catalog::{input_schema, same_shape};
use crate::registry::Snapshot;

/// Each tool's input schema its kept calls were made for, and the catalog snapshot last
/// compared with it.
#[derive(Default)]
pub(super) struct Schemas {
    by_tool: HashMap<(String, String), Value>,
    compared: Option<Arc<Snapshot>>,
}

impl Trainer {
    /// Keeps `example` of `key`, the newest [`MAX_EXAMPLES`]; the first of a tool notes the
    /// input schema it was made for.
    pub(super) fn keep_example(&mut self, key: &(String, String), example: Example) {
        if key.0 == "tool" && !self.schemas.by_tool.contains_key(key) {
            let snapshot = self.deps.catalog.load();
            if let Some(entry) = snapshot.catalog.tool(&key.1) {
                let schema = input_schema(&entry.item).clone();
                self.schemas.by_tool.insert(key.clone(), schema);
            }
        }
        let examples = self.examples.entry(key.clone()).or_default();
        examples.push_back(example);
        if examples.len() > MAX_EXAMPLES {
            examples.pop_front();
        }
    }

    /// Follows the input schema of each tool with kept calls in `snapshot`, when the catalog
    /// changed since the last time ([`Trainer::follow_schema`]).
    pub(super) fn follow_schemas(&mut self, snapshot: &Arc<Snapshot>) {
        if let Some(compared) = &self.schemas.compared {
            if Arc::ptr_eq(compared, snapshot) {
                return;
            }
        }
        self.schemas.compared = Some(snapshot.clone());
        let tools: Vec<(String, String)> = self.schemas.by_tool.keys().cloned().collect();
        for key in tools {
            if let Some(entry) = snapshot.catalog.tool(&key.1) {
                self.follow_schema(&key, &entry.item);
            }
        }
    }

    /// Follows the input schema of tool `key` as the catalog gives it now (`tool`): once it
    /// asks for other arguments than the one its calls were made for (not only other prose,
    /// [`same_shape`]), the successful calls that do not fit it are forgotten. Its failures
    /// stay: they tell what the text leaves unclear.
    pub(super) fn follow_schema(&mut self, key: &(String, String), tool: &Value) {
        let schema = input_schema(tool);
        let Some(before) = self.schemas.by_tool.insert(key.clone(), schema.clone()) else {
            return;
        };
        if same_shape(&before, schema) {
            return;
        }
        if let Some(examples) = self.examples.get_mut(key) {
            examples.retain(|e| !e.ok || inputs::given_for(schema, &e.arguments));
        }
    }
}
