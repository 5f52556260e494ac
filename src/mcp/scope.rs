//! What one session sees of the catalog: everything (`/mcp`, `/sse`), or a virtual server
//! (`/servers/{name}/…`): a named subset of connectors, with tool allow/deny patterns, and for a
//! single connector optionally its own names without the namespace.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{exposed_name, Entry};
use crate::registry::Snapshot;

/// A virtual server as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServer {
    /// Its name, in `/servers/{name}/mcp`.
    pub name: String,
    /// The connectors it includes.
    pub connectors: Vec<String>,
    /// Tool name patterns (`*` matches any run of characters) a tool must match, if any given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Tool name patterns that leave a tool out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Whether names keep their connector namespace; `false` needs exactly one connector.
    #[serde(default = "yes")]
    pub prefix: bool,
}

fn yes() -> bool {
    true
}

impl VirtualServer {
    /// Every problem as (field, problem).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            problems.push((
                "name".into(),
                "must be 1-64 characters of [A-Za-z0-9_-]".into(),
            ));
        }
        if self.connectors.is_empty() {
            problems.push((
                "connectors".into(),
                "must name at least one connector".into(),
            ));
        }
        if !self.prefix && self.connectors.len() != 1 {
            problems.push(("prefix".into(), "false needs exactly one connector".into()));
        }
        problems
    }

    /// Whether a tool (by its namespaced name) passes the allow and deny patterns.
    fn admits_tool(&self, name: &str) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|p| wildcard(p, name));
        allowed && !self.deny.iter().any(|p| wildcard(p, name))
    }

    fn includes(&self, connector: &str) -> bool {
        self.connectors.iter().any(|c| c == connector)
    }
}

/// What a session sees.
#[derive(Debug, Clone, Default)]
pub enum Scope {
    /// The whole catalog.
    #[default]
    All,
    /// A virtual server's part of it.
    Server(Arc<VirtualServer>),
}

impl Scope {
    /// The virtual server's name; none for the whole catalog.
    pub fn server_name(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Server(server) => Some(&server.name),
        }
    }

    /// The tools visible, as clients see them.
    pub fn tools(&self, snapshot: &Snapshot) -> Vec<Value> {
        self.entries(&snapshot.catalog.tools, true)
    }

    /// The prompts visible, as clients see them.
    pub fn prompts(&self, snapshot: &Snapshot) -> Vec<Value> {
        self.entries(&snapshot.catalog.prompts, false)
    }

    /// Resources (or templates, by `field`) visible, as clients see them.
    pub fn resources(&self, items: &[Value], field: &str) -> Vec<Value> {
        match self {
            Scope::All => items.to_vec(),
            Scope::Server(server) => items
                .iter()
                .filter_map(|item| {
                    let value = item.get(field)?.as_str()?;
                    let (connector, own) = value.split_once(':')?;
                    if !server.includes(connector) {
                        return None;
                    }
                    let mut item = item.clone();
                    if !server.prefix {
                        item[field] = Value::String(own.to_string());
                    }
                    Some(item)
                })
                .collect(),
        }
    }

    /// The catalog's name for a tool that the client names `name`, if visible.
    pub fn tool_name(&self, snapshot: &Snapshot, name: &str) -> Option<String> {
        self.resolve(&snapshot.catalog.tools, name, true)
    }

    /// The catalog's name for a prompt that the client names `name`, if visible.
    pub fn prompt_name(&self, snapshot: &Snapshot, name: &str) -> Option<String> {
        self.resolve(&snapshot.catalog.prompts, name, false)
    }

    /// The catalog's (prefixed) URI for a URI as the client wrote it, if visible.
    pub fn resource_uri(&self, uri: &str) -> Option<String> {
        match self {
            Scope::All => Some(uri.to_string()),
            Scope::Server(server) if !server.prefix => {
                Some(format!("{}:{uri}", server.connectors[0]))
            }
            Scope::Server(server) => {
                let (connector, _) = uri.split_once(':')?;
                server.includes(connector).then(|| uri.to_string())
            }
        }
    }

    /// A catalog (prefixed) URI as the client sees it.
    pub fn outward_uri<'a>(&self, uri: &'a str) -> &'a str {
        match self {
            Scope::Server(server) if !server.prefix => {
                uri.split_once(':').map_or(uri, |(_, own)| own)
            }
            _ => uri,
        }
    }

    /// Whether clients see URIs with their connector prefix.
    pub fn prefixes(&self) -> bool {
        !matches!(self, Scope::Server(server) if !server.prefix)
    }

    /// How the client names an entry.
    fn outward(&self, entry: &Entry) -> Value {
        match self {
            Scope::Server(server) if !server.prefix => {
                let mut item = entry.item.clone();
                item["name"] = Value::String(entry.original.clone());
                item
            }
            _ => entry.item.clone(),
        }
    }

    fn visible(&self, entry: &Entry, tool: bool) -> bool {
        match self {
            Scope::All => true,
            Scope::Server(server) => {
                server.includes(&entry.connector)
                    && (!tool || server.admits_tool(exposed_name(entry)))
            }
        }
    }

    fn entries(&self, entries: &[Entry], tool: bool) -> Vec<Value> {
        entries
            .iter()
            .filter(|e| self.visible(e, tool))
            .map(|e| self.outward(e))
            .collect()
    }

    fn resolve(&self, entries: &[Entry], name: &str, tool: bool) -> Option<String> {
        match self {
            Scope::All => Some(name.to_string()),
            Scope::Server(server) if !server.prefix => entries
                .iter()
                .find(|e| *e.connector == *server.connectors[0] && e.original == name)
                .filter(|e| self.visible(e, tool))
                .map(|e| exposed_name(e).to_string()),
            Scope::Server(_) => entries
                .iter()
                .find(|e| exposed_name(e) == name)
                .filter(|e| self.visible(e, tool))
                .map(|_| name.to_string()),
        }
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard("github_*", "github_search"));
        assert!(wildcard("*_delete*", "fs_delete_file"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxcyyb"));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exactly"));
    }

    #[test]
    fn allow_and_deny_patterns_combine() {
        let server = VirtualServer {
            name: "s".into(),
            connectors: vec!["fs".into()],
            allow: vec!["fs_*".into()],
            deny: vec!["*delete*".into()],
            prefix: true,
        };
        assert!(server.admits_tool("fs_read"));
        assert!(!server.admits_tool("fs_delete"));
        assert!(!server.admits_tool("git_log"));
    }

    #[test]
    fn an_unprefixed_server_needs_exactly_one_connector() {
        let server = VirtualServer {
            name: "s".into(),
            connectors: vec!["a".into(), "b".into()],
            allow: vec![],
            deny: vec![],
            prefix: false,
        };
        assert_eq!(server.problems()[0].0, "prefix");
    }
}
