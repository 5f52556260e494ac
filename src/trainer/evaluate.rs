//! Paired evaluation of a candidate text against the deployed one on recorded interactions
//! and on cases generated from the input schema.
//!
//! Each case is a query (words) that a model reading the tool list would match against the
//! target's text and the texts of the other tools of its backend (its siblings). The target's
//! *pull* on a query is the share of the query's words its text covers when that beats every
//! sibling's share (half of it for a tie with the best sibling), 0 when a sibling covers more:
//! a model picks the tool whose text matches best, and the more it matches, the surer it is.
//! Each case scores both texts in [0, 1]:
//! - a successful call, with its argument names and values as the query, scores the pull, or
//!   the share of its argument names the text documents when that is higher;
//! - a call that failed because it was meant for another tool (its error says an argument is
//!   unknown or not allowed) scores 1 minus the pull: a text should not attract what is not
//!   for it;
//! - any other failed call scores 1 when the text documents every parameter (of the schema or
//!   of the call) that its error names, 0 otherwise;
//! - a generated case, one per described parameter of the schema, with the parameter's name
//!   and description as the query, scores the pull;
//! - a successful call of a sibling, with its arguments as the query, scores 1 minus the pull:
//!   a text should not take what its siblings already answer well.
//!
//! The candidate is better when the lower bound of a one-sided 95% confidence interval of the
//! mean paired difference is above the margin.

use std::collections::HashSet;

use serde::Serialize;

use serde_json::Value;

use super::approaches::Example;
use super::words::{coverage, word_set};

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Cases scored.
    pub cases: usize,
    /// Mean score of the deployed text.
    pub deployed: f64,
    /// Mean score of the candidate.
    pub candidate: f64,
    /// Mean paired difference (candidate − deployed).
    pub improvement: f64,
    /// Its one-sided 95% lower confidence bound: minus infinity, stored and shown as `null`,
    /// for fewer than two cases, which no test passes on.
    pub lower_bound: f64,
    /// The margin it had to beat.
    pub margin: f64,
    /// Whether the candidate may be deployed.
    pub better: bool,
    /// The test it had to pass: `better` (the lower bound above the margin), `not_worse`
    /// (above minus the margin, for texts that replace ones saying little beyond their names),
    /// or `live` (none offline: the live results decide).
    pub test: &'static str,
}

/// Another tool of the same backend, as the evaluation sees it.
#[derive(Debug, Clone, Default)]
pub struct Sibling {
    /// Its name.
    pub name: String,
    /// The text served for it.
    pub text: String,
    /// Its input schema.
    pub schema: Value,
    /// Its recent recorded calls.
    pub calls: Vec<Example>,
}

/// What a candidate is evaluated on besides the target's own recorded calls.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The target's name.
    pub name: String,
    /// The tool's input schema (`null` for a prompt).
    pub schema: Value,
    /// The other tools of the same backend.
    pub siblings: Vec<Sibling>,
    /// The texts served for the catalog's tools of other functions, by tool name: an LLM's
    /// rewrite may be one of them.
    pub elsewhere: Vec<(String, String)>,
    /// Words found in the names and parameters of many of the catalog's tools ("specified",
    /// "type"): sharing them says little about which tool a text describes.
    pub generic: std::sync::Arc<HashSet<String>>,
}

/// The evaluation of a candidate that no offline case can score (a prompt template): the test is
/// `live`, left to the live experiment that serves it beside production.
pub fn live_only(margin: f64) -> Evaluation {
    Evaluation {
        cases: 0,
        deployed: 0.0,
        candidate: 0.0,
        improvement: 0.0,
        lower_bound: f64::NEG_INFINITY,
        margin,
        better: false,
        test: "live",
    }
}

/// Scores both texts on `cases`, on the cases generated from the schema and on the siblings'
/// successful calls, against the siblings' texts.
pub fn compare(
    deployed: &str,
    candidate: &str,
    cases: &[Example],
    context: &Context,
    margin: f64,
) -> Evaluation {
    let schema = &context.schema;
    let parameters: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let siblings: Vec<HashSet<String>> =
        context.siblings.iter().map(|s| word_set(&s.text)).collect();
    let texts = [deployed, candidate].map(|t| Text {
        lower: t.to_lowercase(),
        words: word_set(t),
    });
    let mut pairs: Vec<(f64, f64)> = cases
        .iter()
        .map(|case| {
            let [a, b] = &texts;
            (
                score(a, case, &parameters, &siblings),
                score(b, case, &parameters, &siblings),
            )
        })
        .collect();
    let [a, b] = &texts;
    for query in generated(schema) {
        pairs.push((
            pull(&a.words, &query, &siblings),
            pull(&b.words, &query, &siblings),
        ));
    }
    let calls = context.siblings.iter().flat_map(|s| &s.calls);
    for call in calls.filter(|c| c.ok) {
        let query = arguments_of(call);
        let (x, y) = (
            pull(&a.words, &query, &siblings),
            pull(&b.words, &query, &siblings),
        );
        pairs.push((1.0 - x, 1.0 - y));
    }
    paired(&pairs, margin)
}

/// The paired comparison of (deployed, candidate) scores: their means, the mean difference
/// and its one-sided 95% lower confidence bound.
pub(super) fn paired(pairs: &[(f64, f64)], margin: f64) -> Evaluation {
    let n = pairs.len();
    let mean = |values: &mut dyn Iterator<Item = f64>| values.sum::<f64>() / n.max(1) as f64;
    let deployed_mean = mean(&mut pairs.iter().map(|p| p.0));
    let candidate_mean = mean(&mut pairs.iter().map(|p| p.1));
    let diffs: Vec<f64> = pairs.iter().map(|(a, b)| b - a).collect();
    let improvement = mean(&mut diffs.iter().copied());
    let lower_bound = if n < 2 {
        f64::NEG_INFINITY
    } else {
        let variance =
            diffs.iter().map(|d| (d - improvement).powi(2)).sum::<f64>() / (n - 1) as f64;
        improvement - 1.645 * (variance / n as f64).sqrt()
    };
    Evaluation {
        cases: n,
        deployed: deployed_mean,
        candidate: candidate_mean,
        improvement,
        lower_bound,
        margin,
        better: lower_bound > margin,
        test: "better",
    }
}

/// The words of each described parameter: one generated case each.
pub(super) fn generated(schema: &Value) -> Vec<HashSet<String>> {
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .filter_map(|(name, p)| {
            let description = p.get("description")?.as_str()?;
            Some(word_set(&format!("{name} {description}")))
        })
        .collect()
}

/// The words of a call's arguments, as a query.
pub(super) fn arguments_of(call: &Example) -> HashSet<String> {
    let mut spoken = String::new();
    argument_words(&call.arguments, &mut spoken);
    word_set(&spoken)
}

/// The words of a call's arguments: names and string values, nested ones too.
fn argument_words(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push_str(k);
                out.push(' ');
                argument_words(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| argument_words(v, out)),
        Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        _ => {}
    }
}

/// Whether an error says the call was meant for another tool.
pub fn misrouted(error: &str) -> bool {
    [
        "unknown argument",
        "unknown parameter",
        "unexpected argument",
        "unexpected keyword",
        "not an argument",
        "extra inputs are not permitted",
        "additional properties",
    ]
    .iter()
    .any(|cue| error.contains(cue))
}

/// A text as the scores read it.
struct Text {
    lower: String,
    words: HashSet<String>,
}

/// A text's pull on `query` against `siblings`: the share of the query it covers when that
/// beats every sibling, half of it for a tie with the best sibling, 0 otherwise.
pub(super) fn pull(
    text: &HashSet<String>,
    query: &HashSet<String>,
    siblings: &[HashSet<String>],
) -> f64 {
    let own = coverage(query, text);
    let best = siblings
        .iter()
        .map(|s| coverage(query, s))
        .fold(0.0, f64::max);
    if own > best {
        own
    } else if own == best {
        own / 2.0
    } else {
        0.0
    }
}

/// How well a text explains one recorded interaction.
fn score(text: &Text, case: &Example, parameters: &[String], siblings: &[HashSet<String>]) -> f64 {
    let documented = |name: &str| text.lower.contains(&name.to_lowercase());
    let names: Vec<&String> = case
        .arguments
        .as_object()
        .map(|a| a.keys().collect())
        .unwrap_or_default();
    let won = pull(&text.words, &arguments_of(case), siblings);
    if case.ok {
        if names.is_empty() {
            return 1.0;
        }
        let share = names.iter().filter(|n| documented(n)).count() as f64 / names.len() as f64;
        return share.max(won);
    }
    let error = case.error.as_deref().unwrap_or("").to_lowercase();
    if misrouted(&error) {
        return 1.0 - won;
    }
    let blamed: Vec<&String> = names
        .into_iter()
        .chain(parameters)
        .filter(|n| error.contains(&n.to_lowercase()))
        .collect();
    if blamed.iter().all(|n| documented(n)) && !blamed.is_empty() {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn case(arguments: serde_json::Value, ok: bool, error: Option<&str>) -> Example {
        Example {
            arguments,
            ok,
            error: error.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn a_text_documenting_the_parameters_beats_a_bare_one() {
        let cases: Vec<Example> = (0..10)
            .map(|i| case(json!({"repo": format!("r{i}"), "query": "q"}), true, None))
            .collect();
        let result = compare(
            "Search.",
            "Search `repo` for `query`.",
            &cases,
            &Context::default(),
            0.05,
        );
        assert!(result.better, "{result:?}");
        assert_eq!(result.candidate, 1.0);
        assert_eq!(result.deployed, 0.0);
    }

    #[test]
    fn an_equal_or_worse_text_is_not_deployed() {
        let cases: Vec<Example> = (0..10).map(|_| case(json!({"q": 1}), true, None)).collect();
        assert!(!compare("Uses q.", "Uses q too.", &cases, &Context::default(), 0.05).better);
        assert!(!compare("Uses q.", "Does things.", &cases, &Context::default(), 0.05).better);
    }

    #[test]
    fn too_few_cases_never_deploy() {
        let one = [case(json!({"q": 1}), true, None)];
        assert!(!compare("x", "q", &one, &Context::default(), 0.05).better);
    }

    fn sibling(text: &str, calls: Vec<Example>) -> Sibling {
        Sibling {
            name: text.into(),
            text: text.into(),
            schema: Value::Null,
            calls,
        }
    }

    fn text(t: &str) -> Text {
        Text {
            lower: t.to_lowercase(),
            words: word_set(t),
        }
    }

    #[test]
    fn a_failure_counts_when_the_text_documents_what_its_error_blames() {
        let failed = case(json!({"limit": -1}), false, Some("limit must be positive"));
        let documented = text("Returns rows; `limit` must be positive.");
        assert_eq!(score(&documented, &failed, &[], &[]), 1.0);
        assert_eq!(score(&text("Returns rows."), &failed, &[], &[]), 0.0);
        let absent = case(json!({"q": 1}), false, Some("missing repo"));
        let parameters = ["repo".to_string(), "q".to_string()];
        assert_eq!(
            score(&text("Needs `repo`."), &absent, &parameters, &[]),
            1.0
        );
        assert_eq!(
            score(&text("Looks things up."), &absent, &parameters, &[]),
            0.0
        );
    }

    #[test]
    fn a_text_that_speaks_of_its_calls_beats_one_that_speaks_of_another_tools() {
        let schema = json!({"type": "object", "properties": {
            "drink_id": {"type": "string", "description": "The drink to change."},
            "new_preferences": {"type": "object", "description": "Size and milk of the drink."}}});
        let mut cases: Vec<Example> = (0..8)
            .map(|i| {
                let size = ["large", "small"][i % 2];
                case(
                    json!({"drink_id": format!("d{i}"), "new_preferences": {"size": size}}),
                    true,
                    None,
                )
            })
            .collect();
        cases.push(case(
            json!({"food_item": "burger"}),
            false,
            Some("unknown argument `food_item`"),
        ));
        let name_only = "change_drink";
        let right = "Changes the size or milk of a drink order to the new preferences.";
        let wrong = "Changes the food item, its ingredients or preparation.";
        let context = Context {
            schema,
            siblings: vec![sibling("ChaFod", Vec::new())],
            ..Default::default()
        };
        assert!(compare(name_only, right, &cases, &context, 0.05).better);
        let worse = compare(name_only, wrong, &cases, &context, 0.05);
        assert!(!worse.better && worse.improvement < 0.0, "{worse:?}");
    }

    #[test]
    fn a_text_that_takes_its_siblings_calls_is_not_better() {
        let own: Vec<Example> = (0..6)
            .map(|i| {
                case(
                    json!({"origin": format!("c{i}"), "return_date": "2026-01-01"}),
                    true,
                    None,
                )
            })
            .collect();
        let calls = (0..12)
            .map(|i| {
                case(
                    json!({"origin": format!("c{i}"), "departure_date": "d"}),
                    true,
                    None,
                )
            })
            .collect();
        let context = Context {
            schema: Value::Null,
            siblings: vec![sibling("SearchOnewayFlight", calls)],
            ..Default::default()
        };
        let greedy = "Search flights from an origin on a departure date, and a return date.";
        let result = compare("SearchRoundtripFlights", greedy, &own, &context, 0.02);
        assert!(!result.better, "{result:?}");
        let focused = "Round trip flights with a return.";
        let result = compare("SearchRoundtripFlights", focused, &own, &context, 0.02);
        assert!(result.better, "{result:?}");
    }

    #[test]
    fn a_misrouted_call_counts_against_a_text_that_attracts_it() {
        let misrouted = case(
            json!({"food_item": "burger"}),
            false,
            Some("Unknown argument `food_item`"),
        );
        let siblings = [word_set("Changes the food item.")];
        assert_eq!(
            score(&text("Changes drinks."), &misrouted, &[], &siblings),
            1.0
        );
        let tie = score(&text("Changes a food item."), &misrouted, &[], &siblings);
        assert!((tie - 2.0 / 3.0).abs() < 1e-9, "{tie}");
        assert_eq!(
            score(&text("Burger food item."), &misrouted, &[], &siblings),
            0.0
        );
    }
}
