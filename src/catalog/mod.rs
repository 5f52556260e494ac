//! The aggregated catalog: every connector's tools, resources and prompts under one namespace.
//!
//! A [`Catalog`] is plain data built from the per-connector lists by [`Catalog::build`]: no I/O,
//! no actors. It owns naming, ordering, the shape of what clients see (`shape`: malformed
//! entries mended or left out) and the lookup from an exposed name back to the connector and
//! the backend's own name. Who builds and publishes it is the
//! [`crate::registry::ConnectorRegistry`]'s business.

mod naming;
mod schema;
mod shape;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

pub use naming::{is_name_char, MAX_NAME_LEN};
pub use schema::{input_schema, same_shape};
pub use shape::shown;

/// One JSON object of a backend's list (a tool, a resource, a prompt).
pub type Item = Map<String, Value>;

/// What one connector offers, as its backend reported it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectorCatalog {
    /// Tools, each with a string `name`.
    pub tools: Vec<Item>,
    /// Resources, each with a string `uri`.
    pub resources: Vec<Item>,
    /// Resource templates, each with a string `uriTemplate`.
    pub resource_templates: Vec<Item>,
    /// Prompts, each with a string `name`.
    pub prompts: Vec<Item>,
}

/// A named entry of the catalog: where it comes from and what clients see.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The connector that serves it.
    pub connector: Arc<str>,
    /// The backend's own name for it.
    pub original: String,
    /// The object that clients see, with the exposed name.
    pub item: Value,
}

/// The aggregated catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Tools in name order.
    pub tools: Vec<Entry>,
    /// Prompts in name order.
    pub prompts: Vec<Entry>,
    /// Resources in connector order, then backend order, with prefixed URIs.
    pub resources: Vec<Value>,
    /// Resource templates, likewise.
    pub resource_templates: Vec<Value>,
    /// Entries that could not be exposed as the backend gave them, and why.
    pub reports: Vec<String>,
    /// Connectors whose entries are left out because they are unavailable.
    pub unavailable: HashSet<String>,
    tool_index: HashMap<String, usize>,
    prompt_index: HashMap<String, usize>,
    hidden_tools: HashMap<String, Arc<str>>,
    hidden_prompts: HashMap<String, Arc<str>>,
}

/// The parts of the catalog that a client can be told have changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// `tools/list` would answer differently.
    pub tools: bool,
    /// `resources/list` or `resources/templates/list` would answer differently.
    pub resources: bool,
    /// `prompts/list` would answer differently.
    pub prompts: bool,
}

impl Changes {
    /// Whether anything changed.
    pub fn any(self) -> bool {
        self.tools || self.resources || self.prompts
    }
}

impl Catalog {
    /// Builds the catalog from each connector's lists, connectors in name order. Entries of
    /// `unavailable` connectors keep their names but are left out of the lists, so that a call
    /// to one of them can be told apart from a call to an unknown name.
    pub fn build(
        connectors: &BTreeMap<String, Arc<ConnectorCatalog>>,
        unavailable: &HashSet<String>,
        separator: &str,
    ) -> Self {
        Self::build_reserving(connectors, unavailable, separator, &[])
    }

    /// [`Catalog::build`], with the tool names of `reserved` (the gateway's own tools) kept
    /// from backends: a backend's tool exposed as one of them gets a suffix.
    pub fn build_reserving(
        connectors: &BTreeMap<String, Arc<ConnectorCatalog>>,
        unavailable: &HashSet<String>,
        separator: &str,
        reserved: &[String],
    ) -> Self {
        let mut catalog = Catalog {
            unavailable: unavailable.clone(),
            ..Catalog::default()
        };
        let mut tool_names: HashSet<String> = reserved.iter().cloned().collect();
        let mut prompt_names = HashSet::new();
        for (connector, lists) in connectors {
            let connector_name: Arc<str> = Arc::from(connector.as_str());
            let hidden = unavailable.contains(connector);
            for tool in &lists.tools {
                let taken = &mut tool_names;
                let entry = catalog.entry(&connector_name, separator, tool, taken, Kind::Tool);
                match entry {
                    Some(entry) if hidden => {
                        let name = exposed_name(&entry).to_string();
                        catalog.hidden_tools.insert(name, connector_name.clone());
                    }
                    entry => catalog.tools.extend(entry),
                }
            }
            for prompt in &lists.prompts {
                let entry = catalog.entry(
                    &connector_name,
                    separator,
                    prompt,
                    &mut prompt_names,
                    Kind::Prompt,
                );
                match entry {
                    Some(entry) if hidden => {
                        let name = exposed_name(&entry).to_string();
                        catalog.hidden_prompts.insert(name, connector_name.clone());
                    }
                    entry => catalog.prompts.extend(entry),
                }
            }
            if hidden {
                continue;
            }
            let mut uris = HashSet::new();
            for resource in &lists.resources {
                let resource = catalog.resource(resource, "uri", connector, &mut uris);
                catalog.resources.extend(resource);
            }
            let mut templates = HashSet::new();
            for template in &lists.resource_templates {
                let template = catalog.resource(template, "uriTemplate", connector, &mut templates);
                catalog.resource_templates.extend(template);
            }
        }
        catalog
            .tools
            .sort_by(|a, b| exposed_name(a).cmp(exposed_name(b)));
        catalog
            .prompts
            .sort_by(|a, b| exposed_name(a).cmp(exposed_name(b)));
        catalog.tool_index = index(&catalog.tools);
        catalog.prompt_index = index(&catalog.prompts);
        catalog
    }

    /// The tool that clients know as `name`.
    pub fn tool(&self, name: &str) -> Option<&Entry> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    /// The prompt that clients know as `name`.
    pub fn prompt(&self, name: &str) -> Option<&Entry> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    /// The unavailable connector whose tool clients knew as `name`.
    pub fn hidden_tool(&self, name: &str) -> Option<&str> {
        self.hidden_tools.get(name).map(|c| &**c)
    }

    /// The unavailable connector whose prompt clients knew as `name`.
    pub fn hidden_prompt(&self, name: &str) -> Option<&str> {
        self.hidden_prompts.get(name).map(|c| &**c)
    }

    /// What differs between `self` and `newer`, as clients would see it.
    pub fn changes_to(&self, newer: &Catalog) -> Changes {
        fn items(entries: &[Entry]) -> Vec<&Value> {
            entries.iter().map(|e| &e.item).collect()
        }
        Changes {
            tools: items(&self.tools) != items(&newer.tools),
            resources: self.resources != newer.resources
                || self.resource_templates != newer.resource_templates,
            prompts: items(&self.prompts) != items(&newer.prompts),
        }
    }

    fn entry(
        &mut self,
        connector: &Arc<str>,
        separator: &str,
        item: &Item,
        taken: &mut HashSet<String>,
        kind: Kind,
    ) -> Option<Entry> {
        let original = item.get("name")?.as_str()?.to_string();
        let mut item = item.clone();
        let about = |what: &str| {
            let name = shown(&original);
            format!("{} `{name}` of connector `{connector}` {what}", kind.noun())
        };
        let mended = match kind {
            _ if original.is_empty() => Err("has an empty name".to_string()),
            Kind::Tool => shape::tool(&mut item),
            Kind::Prompt => shape::prompt(&mut item),
        };
        match mended {
            Ok(mended) => self.reports.extend(mended.iter().map(|m| about(m))),
            Err(why) => {
                self.reports.push(about(&format!("is left out: {why}")));
                return None;
            }
        }
        let (exposed, report) = naming::expose(connector, separator, &original, taken);
        self.reports.extend(report);
        item.insert("name".into(), Value::String(exposed));
        Some(Entry {
            connector: connector.clone(),
            original,
            item: Value::Object(item),
        })
    }
}

/// The name clients see for `entry`.
pub fn exposed_name(entry: &Entry) -> &str {
    entry.item["name"].as_str().unwrap_or_default()
}

/// The names of the arguments a prompt declares required.
pub fn required_arguments(prompt: &Value) -> Vec<String> {
    prompt["arguments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["required"] == true)
        .filter_map(|a| a["name"].as_str().map(str::to_string))
        .collect()
}

impl Catalog {
    /// A resource or template (`field` names its URI) of `connector` with that URI prefixed by
    /// `connector:`; mended as [`shape::resource`] says, or left out when it cannot be or when
    /// `seen` (the connector's URIs so far) already has its URI.
    fn resource(
        &mut self,
        item: &Item,
        field: &str,
        connector: &str,
        seen: &mut HashSet<String>,
    ) -> Option<Value> {
        let mut item = item.clone();
        let uri = item
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let about = |what: &str| {
            format!(
                "resource `{}` of connector `{connector}` {what}",
                shown(&uri)
            )
        };
        let mended = match shape::resource(&mut item, field) {
            Ok(_) if seen.contains(&uri) => Err("comes twice; the first is kept".to_string()),
            other => other,
        };
        seen.insert(uri.clone());
        match mended {
            Ok(mended) => self.reports.extend(mended.iter().map(|m| about(m))),
            Err(why) => {
                self.reports.push(about(&format!("is left out: {why}")));
                return None;
            }
        }
        item.insert(field.into(), Value::String(format!("{connector}:{uri}")));
        Some(Value::Object(item))
    }
}

/// A kind of named entry.
#[derive(Clone, Copy)]
enum Kind {
    Tool,
    Prompt,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
        }
    }
}

fn index(entries: &[Entry]) -> HashMap<String, usize> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| (exposed_name(e).to_string(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> Item {
        value.as_object().cloned().unwrap()
    }

    fn lists(tools: &[&str]) -> Arc<ConnectorCatalog> {
        Arc::new(ConnectorCatalog {
            tools: tools
                .iter()
                .map(|n| item(json!({"name": n, "inputSchema": {"type": "object"}})))
                .collect(),
            resources: vec![item(json!({"uri": "file://README.md", "name": "README"}))],
            resource_templates: vec![],
            prompts: vec![item(json!({"name": "summarize"}))],
        })
    }

    #[test]
    fn entries_are_namespaced_sorted_and_found_by_exposed_name() {
        let mut connectors = BTreeMap::new();
        connectors.insert("zeta".to_string(), lists(&["b", "a"]));
        connectors.insert("alpha".to_string(), lists(&["search"]));
        let catalog = Catalog::build(&connectors, &HashSet::new(), "_");
        let names: Vec<_> = catalog.tools.iter().map(exposed_name).collect();
        assert_eq!(names, ["alpha_search", "zeta_a", "zeta_b"]);
        let entry = catalog.tool("zeta_a").unwrap();
        assert_eq!((&*entry.connector, entry.original.as_str()), ("zeta", "a"));
        assert_eq!(
            catalog.prompt("alpha_summarize").unwrap().original,
            "summarize"
        );
        assert_eq!(catalog.resources[0]["uri"], "alpha:file://README.md");
        assert!(catalog.tool("search").is_none());
    }

    #[test]
    fn items_without_a_name_are_left_out() {
        let mut connectors = BTreeMap::new();
        let mut broken = (*lists(&["ok"])).clone();
        broken.tools.push(item(json!({"description": "no name"})));
        connectors.insert("c".to_string(), Arc::new(broken));
        assert_eq!(
            Catalog::build(&connectors, &HashSet::new(), "_")
                .tools
                .len(),
            1
        );
    }

    #[test]
    fn an_unavailable_connector_leaves_the_lists_but_keeps_its_names_known() {
        let mut connectors = BTreeMap::new();
        connectors.insert("up".to_string(), lists(&["a"]));
        connectors.insert("down".to_string(), lists(&["a"]));
        let unavailable = HashSet::from(["down".to_string()]);
        let catalog = Catalog::build(&connectors, &unavailable, "_");
        let names: Vec<_> = catalog.tools.iter().map(exposed_name).collect();
        assert_eq!(names, ["up_a"]);
        assert_eq!(catalog.hidden_tool("down_a"), Some("down"));
        assert_eq!(catalog.hidden_prompt("down_summarize"), Some("down"));
        assert_eq!(catalog.resources.len(), 1);
        assert!(catalog.tool("down_a").is_none());
    }

    #[test]
    fn changes_name_only_the_lists_that_differ() {
        let mut connectors = BTreeMap::new();
        connectors.insert("c".to_string(), lists(&["a"]));
        let before = Catalog::build(&connectors, &HashSet::new(), "_");
        connectors.insert("c".to_string(), lists(&["a", "b"]));
        let after = Catalog::build(&connectors, &HashSet::new(), "_");
        let changes = before.changes_to(&after);
        assert!(changes.tools && !changes.prompts && !changes.resources);
        assert!(!after.changes_to(&after).any());
    }
}
