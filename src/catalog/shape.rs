//! What a backend's list entry must look like before clients see it. MCP clients validate what
//! they list (the SDKs refuse a whole `tools/list` answer for one bad tool), so one backend's
//! malformed entry would break the lists of every connector behind the gateway.
//!
//! An entry that can be mended is mended: a tool with no `inputSchema` takes no arguments
//! (`{"type": "object"}`), a schema without `type` is an object's, a resource without a `name`
//! is named by its URI, and optional fields of the wrong type (`description: 42`) are left out.
//! One that cannot be (an empty name, a schema that is not an object's, prompt arguments that
//! are not a list of named ones) is left out. Each change comes back as a report for the log.

use serde_json::{json, Value};

use super::Item;

/// Optional fields that must be strings when present, for every kind of entry.
const TEXTS: [&str; 3] = ["description", "title", "mimeType"];

/// Mends `tool`, or says why it is left out; `Ok` carries what was mended.
pub fn tool(tool: &mut Item) -> Result<Vec<String>, String> {
    let mut mended = loose_texts(tool);
    match tool.get_mut("inputSchema") {
        None | Some(Value::Null) => {
            tool.insert("inputSchema".into(), json!({"type": "object"}));
            mended.push("had no inputSchema; it takes no arguments".into());
        }
        Some(Value::Object(schema)) => match schema.get("type") {
            None => {
                schema.insert("type".into(), json!("object"));
                mended.push("had an inputSchema without `type`; it is an object's".into());
            }
            Some(kind) if kind == "object" => {}
            Some(_) => {
                return Err("its inputSchema is not an object's (`type` is not \"object\")".into())
            }
        },
        Some(_) => return Err("its inputSchema is not a JSON object".into()),
    }
    if tool.get("outputSchema").is_some_and(|s| !s.is_object()) {
        tool.remove("outputSchema");
        mended.push("had an outputSchema that is not a JSON object; it is left out".into());
    }
    if tool.get("annotations").is_some_and(|a| !a.is_object()) {
        tool.remove("annotations");
        mended.push("had annotations that are not a JSON object; they are left out".into());
    }
    Ok(mended)
}

/// Mends `prompt`, or says why it is left out.
pub fn prompt(prompt: &mut Item) -> Result<Vec<String>, String> {
    let mended = loose_texts(prompt);
    match prompt.get("arguments") {
        None | Some(Value::Null) => {}
        Some(Value::Array(arguments)) => {
            let named = |a: &Value| a.get("name").is_some_and(Value::is_string);
            if !arguments.iter().all(named) {
                return Err("one of its arguments has no string `name`".into());
            }
        }
        Some(_) => return Err("its arguments are not a list".into()),
    }
    Ok(mended)
}

/// Mends a resource (`field` `uri`) or a resource template (`uriTemplate`), or says why it is
/// left out.
pub fn resource(resource: &mut Item, field: &str) -> Result<Vec<String>, String> {
    let mut mended = loose_texts(resource);
    let uri = match resource.get(field) {
        Some(Value::String(uri)) if !uri.is_empty() => uri.clone(),
        _ => return Err(format!("it has no `{field}`")),
    };
    if !resource.get("name").is_some_and(Value::is_string) {
        resource.insert("name".into(), Value::String(uri));
        mended.push("had no string `name`; it is named by its URI".into());
    }
    Ok(mended)
}

/// Leaves out the optional text fields of `item` that are not strings; says which.
fn loose_texts(item: &mut Item) -> Vec<String> {
    let mut mended = Vec::new();
    for field in TEXTS {
        if item.get(field).is_some_and(|v| !v.is_string()) {
            item.remove(field);
            mended.push(format!(
                "had a `{field}` that is not a string; it is left out"
            ));
        }
    }
    mended
}

/// `text` as a log line may show it: control and invisible characters escaped, so that a
/// backend's name cannot start a line of its own or reorder what follows.
pub fn shown(text: &str) -> String {
    text.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: Value) -> Item {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_tool_is_mended_where_it_can_be_and_left_out_where_it_cannot() {
        let mut bare = item(json!({"name": "t", "description": 42}));
        let mut untyped = item(json!({"name": "t", "inputSchema": {"properties": {}}}));

        assert_eq!(tool(&mut bare).unwrap().len(), 2);
        assert_eq!(
            Value::Object(bare),
            json!({"name": "t", "inputSchema": {"type": "object"}})
        );
        assert_eq!(tool(&mut untyped).unwrap().len(), 1);
        assert_eq!(untyped["inputSchema"]["type"], "object");
        for schema in [
            json!("string schema"),
            json!([1, 2]),
            json!({"type": "string"}),
        ] {
            let mut bad = item(json!({"name": "t", "inputSchema": schema}));
            assert!(tool(&mut bad).is_err(), "{schema}");
        }
        let mut good = item(json!({"name": "t", "inputSchema": {"type": "object"}}));
        assert_eq!(tool(&mut good).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn prompts_need_a_list_of_named_arguments_and_resources_a_uri() {
        let mut listed = item(json!({"name": "p", "arguments": [{"name": "a"}]}));
        let mut unnamed = item(json!({"name": "p", "arguments": [{"required": true}]}));
        let mut scalar = item(json!({"name": "p", "arguments": "bad"}));
        let mut nameless = item(json!({"uri": "mem://a"}));
        let mut empty = item(json!({"uri": "", "name": "x"}));

        assert!(prompt(&mut listed).unwrap().is_empty());
        assert!(prompt(&mut unnamed).is_err());
        assert!(prompt(&mut scalar).is_err());
        assert_eq!(resource(&mut nameless, "uri").unwrap().len(), 1);
        assert_eq!(nameless["name"], "mem://a");
        assert!(resource(&mut empty, "uri").is_err());
    }

    #[test]
    fn names_are_shown_without_line_breaks_or_invisible_characters() {
        assert_eq!(shown("a\nb\t\u{202e}c"), "a\\nb\\t\\u{202e}c");
    }
}
