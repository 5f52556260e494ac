//! What a tool's input schema asks for: the schema as the catalog gives it, and whether two
//! schemas ask for the same arguments (a tool version made for one is served with the other).

use serde_json::{Map, Value};

/// A tool's input schema (`null` when it gives none). Its `to_string()` is canonical JSON (keys
/// in order, no spaces), the form a tool version keeps of the schema it was made for:
/// `serde_json`'s maps keep their keys sorted (its `preserve_order` feature is off).
pub fn input_schema(tool: &Value) -> &Value {
    tool.get("inputSchema").unwrap_or(&Value::Null)
}

/// JSON Schema keywords that only annotate (prose for people), left out by [`same_shape`].
const ANNOTATIONS: [&str; 4] = ["description", "title", "examples", "$comment"];
/// Keywords whose value is a schema, or a list of schemas.
const SUBSCHEMAS: [&str; 15] = [
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "anyOf",
    "oneOf",
    "allOf",
    "prefixItems",
];
/// Keywords whose value maps names (of parameters, or of definitions) to schemas.
const NAMED_SUBSCHEMAS: [&str; 6] = [
    "properties",
    "dependencies",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Whether two input schemas ask for the same arguments: equal but for their annotations (a
/// parameter's `description`, `title`, `examples`, `$comment`), which a backend may reword
/// in a release without changing what a call must give. Names, types, required parameters,
/// allowed values and defaults must all match.
pub fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let kept = |m: &Map<String, Value>| {
                m.keys()
                    .filter(|k| !ANNOTATIONS.contains(&k.as_str()))
                    .count()
            };
            kept(a) == kept(b)
                && a.iter()
                    .filter(|(k, _)| !ANNOTATIONS.contains(&k.as_str()))
                    .all(|(k, va)| b.get(k).is_some_and(|vb| same_keyword(k, va, vb)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_shape(x, y))
        }
        _ => a == b,
    }
}

/// Whether the values of keyword `key` in two schemas ask for the same: schemas are compared
/// by shape, anything else (`required`, `enum`, `default`, …) exactly.
fn same_keyword(key: &str, a: &Value, b: &Value) -> bool {
    if SUBSCHEMAS.contains(&key) {
        return same_shape(a, b);
    }
    if !NAMED_SUBSCHEMAS.contains(&key) {
        return a == b;
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(name, x)| b.get(name).is_some_and(|y| same_shape(x, y)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tools_input_schema_reads_the_same_whatever_the_order_of_its_keys() {
        let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        let one = parse(
            r#"{"inputSchema": {"type": "object", "required": ["q"], "properties": {"q": {}}}}"#,
        );
        let other = parse(
            r#"{"inputSchema": {"properties": {"q": {}}, "required": ["q"], "type": "object"}}"#,
        );
        let renamed = parse(
            r#"{"inputSchema": {"type": "object", "required": ["query"], "properties": {"query": {}}}}"#,
        );
        let text = |tool: &Value| input_schema(tool).to_string();
        assert_eq!(text(&one), text(&other));
        assert_ne!(text(&one), text(&renamed));
        assert_eq!(text(&json!({})), "null");
    }

    #[test]
    fn schemas_of_the_same_shape_differ_only_in_their_prose() {
        let schema = |text: &str, required: &str, sort: Value| {
            json!({"type": "object", "description": text, "required": [required], "properties": {
                "repo": {"type": "string", "description": text},
                "description": {"type": "string", "title": text},
                "sort": sort,
                "labels": {"type": "array", "items": {"type": "string", "description": text}}}})
        };
        let sort = json!({"enum": ["new", "old"], "description": "Order."});
        let base = schema("The repository.", "repo", sort.clone());
        let reworded = schema("owner/name of the repository", "repo", sort.clone());
        let required = schema("The repository.", "description", sort);
        let values = schema("The repository.", "repo", json!({"enum": ["new"]}));
        let renamed = json!({"type": "object", "properties": {"repository": {"type": "string"}}});
        assert!(same_shape(&base, &reworded));
        assert!(!same_shape(&base, &required));
        assert!(!same_shape(&base, &values));
        assert!(!same_shape(&base, &renamed));
        assert!(same_shape(&Value::Null, &Value::Null));
        assert!(!same_shape(&Value::Null, &base));
    }
}
