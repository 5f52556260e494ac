//! Paired evaluation of a candidate text against the deployed one on recorded interactions.
//!
//! Each case scores both texts in [0, 1]: a successful call scores the share of its argument
//! names that the text documents; a failed call scores 1 when the text documents every
//! parameter (of the schema or of the call) that its error names, 0 otherwise. The candidate is better when the lower bound of a
//! one-sided 95% confidence interval of the mean paired difference is above the margin.

use serde::Serialize;

use super::approaches::Example;

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
    /// Its one-sided 95% lower confidence bound.
    pub lower_bound: f64,
    /// The margin it had to beat.
    pub margin: f64,
    /// Whether the candidate may be deployed.
    pub better: bool,
}

/// Scores both texts on `cases`; `parameters` are the tool's parameter names.
pub fn compare(
    deployed: &str,
    candidate: &str,
    cases: &[Example],
    parameters: &[String],
    margin: f64,
) -> Evaluation {
    let pairs: Vec<(f64, f64)> = cases
        .iter()
        .map(|case| {
            (
                score(deployed, case, parameters),
                score(candidate, case, parameters),
            )
        })
        .collect();
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
    }
}

/// How well `text` explains one recorded interaction.
fn score(text: &str, case: &Example, parameters: &[String]) -> f64 {
    let lower = text.to_lowercase();
    let documented = |name: &str| lower.contains(&name.to_lowercase());
    let names: Vec<&String> = case
        .arguments
        .as_object()
        .map(|a| a.keys().collect())
        .unwrap_or_default();
    if case.ok {
        if names.is_empty() {
            return 1.0;
        }
        return names.iter().filter(|n| documented(n)).count() as f64 / names.len() as f64;
    }
    let error = case.error.as_deref().unwrap_or("").to_lowercase();
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
        }
    }

    #[test]
    fn a_text_documenting_the_parameters_beats_a_bare_one() {
        let cases: Vec<Example> = (0..10)
            .map(|i| case(json!({"repo": format!("r{i}"), "query": "q"}), true, None))
            .collect();
        let result = compare("Search.", "Search `repo` for `query`.", &cases, &[], 0.05);
        assert!(result.better, "{result:?}");
        assert_eq!(result.candidate, 1.0);
        assert_eq!(result.deployed, 0.0);
    }

    #[test]
    fn an_equal_or_worse_text_is_not_deployed() {
        let cases: Vec<Example> = (0..10).map(|_| case(json!({"q": 1}), true, None)).collect();
        assert!(!compare("Uses q.", "Uses q too.", &cases, &[], 0.05).better);
        assert!(!compare("Uses q.", "Does things.", &cases, &[], 0.05).better);
    }

    #[test]
    fn too_few_cases_never_deploy() {
        let one = [case(json!({"q": 1}), true, None)];
        assert!(!compare("x", "q", &one, &[], 0.05).better);
    }

    #[test]
    fn a_failure_counts_when_the_text_documents_what_its_error_blames() {
        let failed = case(json!({"limit": -1}), false, Some("limit must be positive"));
        assert_eq!(
            score("Returns rows; `limit` must be positive.", &failed, &[]),
            1.0
        );
        assert_eq!(score("Returns rows.", &failed, &[]), 0.0);
        let absent = case(json!({"q": 1}), false, Some("missing repo"));
        let parameters = ["repo".to_string(), "q".to_string()];
        assert_eq!(score("Needs `repo`.", &absent, &parameters), 1.0);
        assert_eq!(score("Looks things up.", &absent, &parameters), 0.0);
    }
}
