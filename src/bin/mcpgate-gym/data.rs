//! The gym's data: BFCL v4 `live_multiple` function sets with their questions and
//! `live_irrelevance` questions (a subset vendored in `data/`, made by `scripts/gym-data`), turned
//! into tools with exposed names, and split into train, validation and test per seed.

use serde::Deserialize;
use serde_json::{json, Value};

/// The vendored subset.
const SUBSET: &str = include_str!("data/bfcl-subset.json");

#[derive(Deserialize)]
struct Subset {
    groups: Vec<RawGroup>,
    irrelevant: Vec<String>,
}

#[derive(Deserialize)]
struct RawGroup {
    tools: Vec<RawTool>,
    questions: Vec<RawQuestion>,
}

#[derive(Deserialize)]
struct RawTool {
    name: String,
    description: String,
    parameters: Value,
}

#[derive(Deserialize)]
struct RawQuestion {
    text: String,
    tool: String,
    arguments: Value,
}

/// One tool of the simulated world.
pub struct Tool {
    /// The name clients see: the group's connector (`g0`, `g1`, …), then the function.
    pub name: String,
    /// The function's own name in BFCL.
    pub function: String,
    /// The original description: the oracle.
    pub oracle: String,
    /// The input schema (JSON Schema).
    pub schema: Value,
    /// The group it belongs to.
    pub group: usize,
}

impl Tool {
    /// The names of its parameters.
    pub fn parameters(&self) -> Vec<&str> {
        self.schema["properties"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The names of its required parameters.
    pub fn required(&self) -> Vec<&str> {
        self.schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// One question asked of a group's tools.
#[derive(Clone)]
pub struct Question {
    /// The user's words.
    pub text: String,
    /// The group whose tools are offered.
    pub group: usize,
    /// The tool that answers it; `None` when none does (an irrelevant question).
    pub expected: Option<usize>,
    /// The arguments of the right call.
    pub arguments: Value,
}

/// The whole world's data, split for one seed.
pub struct Data {
    /// Every tool.
    pub tools: Vec<Tool>,
    /// Each group's tools, by index into `tools`.
    pub groups: Vec<Vec<usize>>,
    /// Questions the simulated users ask while the trainer learns.
    pub train: Vec<Question>,
    /// Questions the world uses to tell a candidate's true effect (never shown to the trainer).
    pub validation: Vec<Question>,
    /// Questions of the final measure.
    pub test: Vec<Question>,
    /// Every text of the world, for the client's word weights.
    pub corpus: Vec<String>,
}

/// The name a function gets in the catalog: letters, digits, `_` and `-` only.
fn exposed(group: usize, function: &str) -> String {
    let clean: String = function
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || c == '-' {
            true => c,
            false => '_',
        })
        .collect();
    let mut name = format!("g{group}_{clean}");
    name.truncate(60);
    name
}

/// BFCL's schema dialect (`dict`, `float`, `tuple`, `any`) in JSON Schema's words.
fn json_schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str()) {
                        ("type", Some("dict")) => json!("object"),
                        ("type", Some("float")) => json!("number"),
                        ("type", Some("tuple")) => json!("array"),
                        ("type", Some("any")) => json!("string"),
                        _ => json_schema(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

/// Loads the subset and splits each group's questions (and the irrelevant ones) 50/20/30 into
/// train, validation and test, shuffled by `seed`.
pub fn load(seed: u64) -> Result<Data, String> {
    let subset: Subset =
        serde_json::from_str(SUBSET).map_err(|e| format!("the gym's data is damaged: {e}"))?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut data = Data {
        tools: Vec::new(),
        groups: Vec::new(),
        train: Vec::new(),
        validation: Vec::new(),
        test: Vec::new(),
        corpus: Vec::new(),
    };
    let split = |mut questions: Vec<Question>, data: &mut Data, rng: &mut fastrand::Rng| {
        rng.shuffle(&mut questions);
        let n = questions.len();
        let (train, rest) = questions.split_at(n / 2);
        let (validation, test) = rest.split_at(n / 5);
        data.train.extend_from_slice(train);
        data.validation.extend_from_slice(validation);
        data.test.extend_from_slice(test);
    };
    for (g, group) in subset.groups.iter().enumerate() {
        let first = data.tools.len();
        for tool in &group.tools {
            data.corpus
                .push(format!("{} {}", tool.name, tool.description));
            data.tools.push(Tool {
                name: exposed(g, &tool.name),
                function: tool.name.clone(),
                oracle: tool.description.clone(),
                schema: json_schema(&tool.parameters),
                group: g,
            });
        }
        data.groups.push((first..data.tools.len()).collect());
        let questions = group
            .questions
            .iter()
            .filter_map(|q| {
                let expected =
                    (first..data.tools.len()).find(|&t| data.tools[t].function == q.tool)?;
                Some(Question {
                    text: q.text.clone(),
                    group: g,
                    expected: Some(expected),
                    arguments: q.arguments.clone(),
                })
            })
            .collect();
        data.corpus
            .extend(group.questions.iter().map(|q| q.text.clone()));
        split(questions, &mut data, &mut rng);
    }
    let groups = data.groups.len();
    let irrelevant = subset
        .irrelevant
        .iter()
        .map(|text| Question {
            text: text.clone(),
            group: rng.usize(..groups),
            expected: None,
            arguments: json!({}),
        })
        .collect();
    data.corpus.extend(subset.irrelevant.iter().cloned());
    split(irrelevant, &mut data, &mut rng);
    Ok(data)
}
