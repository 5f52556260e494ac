//! Joint evaluation of new texts for several tools of one backend, rewritten together: a tool's
//! text is only as good as it is beside its siblings' texts, so the set is judged as a whole.
//!
//! Every tool of the backend brings its cases: its successful recorded calls and one generated
//! case per described parameter (queries it should win against every other tool), and its calls
//! that failed because they were meant for another tool (queries it should not win). A
//! configuration (each tool's deployed text, or its candidate) scores each case by the pull of
//! the tool's text on it (see [`super::evaluate`]), or 1 minus it for a query it should not
//! win. Candidates are dropped one at a time, worst first, while dropping one raises the mean
//! score; the rest are compared with the deployed texts, paired per case, as one candidate is.
//! A candidate the cases say nothing about stays: the set is only rewritten because its texts
//! say little beyond their names, and a description that is not worse beats none.

use std::collections::HashSet;

use serde_json::Value;

use super::approaches::Example;
use super::evaluate::{arguments_of, generated, misrouted, paired, pull, Evaluation};
use super::words::word_set;

/// One tool of the backend.
pub struct Member<'a> {
    /// The text served now.
    pub deployed: &'a str,
    /// Its candidate, if it has one that passed the safety checks.
    pub candidate: Option<&'a str>,
    /// Its input schema.
    pub schema: &'a Value,
    /// Its recent recorded calls.
    pub calls: &'a [Example],
}

/// The outcome: the evaluation of the kept candidates, and which were kept.
#[derive(Debug)]
pub struct Verdict {
    /// Kept candidates against the deployed texts.
    pub evaluation: Evaluation,
    /// Per member: whether its candidate is kept.
    pub kept: Vec<bool>,
}

/// A query, the member it is about, and whether that member should win it.
struct Case {
    query: HashSet<String>,
    member: usize,
    should_win: bool,
}

fn cases(members: &[Member]) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, m) in members.iter().enumerate() {
        for query in generated(m.schema) {
            cases.push(Case {
                query,
                member: i,
                should_win: true,
            });
        }
        for call in m.calls {
            let error = call.error.as_deref().unwrap_or("").to_lowercase();
            let should_win = match (call.ok, misrouted(&error)) {
                (true, _) => true,
                (false, true) => false,
                (false, false) => continue,
            };
            cases.push(Case {
                query: arguments_of(call),
                member: i,
                should_win,
            });
        }
    }
    cases
}

/// Each case's score when the members read `texts`.
fn scores(cases: &[Case], texts: &[HashSet<String>]) -> Vec<f64> {
    cases
        .iter()
        .map(|c| {
            let others: Vec<HashSet<String>> = texts
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != c.member)
                .map(|(_, t)| t.clone())
                .collect();
            let won = pull(&texts[c.member], &c.query, &others);
            if c.should_win {
                won
            } else {
                1.0 - won
            }
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Judges the members' candidates together; a candidate with the same words as its deployed
/// text changes nothing and is left out. The set replaces texts that say little beyond
/// their names (the only ones rewritten together), so it may be deployed when it is not worse:
/// a mean improvement not below 0, and its lower bound above minus the margin. A description
/// the evidence does not show worse beats a bare name.
pub fn compare_together(members: &[Member], margin: f64) -> Verdict {
    let cases = cases(members);
    let deployed: Vec<HashSet<String>> = members.iter().map(|m| word_set(m.deployed)).collect();
    let proposed: Vec<Option<HashSet<String>>> =
        members.iter().map(|m| m.candidate.map(word_set)).collect();
    let mut kept: Vec<bool> = proposed
        .iter()
        .zip(&deployed)
        .map(|(p, d)| p.as_ref().is_some_and(|words| words != d))
        .collect();
    let texts_of = |kept: &[bool]| -> Vec<HashSet<String>> {
        (0..members.len())
            .map(|i| match (&proposed[i], kept[i]) {
                (Some(words), true) => words.clone(),
                _ => deployed[i].clone(),
            })
            .collect()
    };
    let mut current = mean(&scores(&cases, &texts_of(&kept)));
    loop {
        let best_drop = (0..members.len())
            .filter(|&i| kept[i])
            .map(|i| {
                let mut without = kept.clone();
                without[i] = false;
                (i, mean(&scores(&cases, &texts_of(&without))))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best_drop {
            Some((i, score)) if score > current => {
                kept[i] = false;
                current = score;
            }
            _ => break,
        }
    }
    let before = scores(&cases, &deployed);
    let after = scores(&cases, &texts_of(&kept));
    let pairs: Vec<(f64, f64)> = before.into_iter().zip(after).collect();
    let mut evaluation = paired(&pairs, margin);
    if kept.contains(&true) && evaluation.improvement >= 0.0 {
        evaluation.test = "not_worse";
        evaluation.better = evaluation.lower_bound > -margin;
    }
    Verdict { evaluation, kept }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static NO_SCHEMA: Value = Value::Null;

    fn member<'a>(deployed: &'a str, candidate: &'a str, calls: &'a [Example]) -> Member<'a> {
        Member {
            deployed,
            candidate: Some(candidate),
            schema: &NO_SCHEMA,
            calls,
        }
    }

    #[test]
    fn good_rewrites_of_siblings_are_kept_together_and_a_harmful_one_is_dropped() {
        let oneway: Vec<Example> = (0..6)
            .map(|i| {
                Example::succeeded(
                    json!({"origin": format!("c{i}"), "departure_date": "d", "seats": "one way"}),
                )
            })
            .collect();
        let round: Vec<Example> = (0..6)
            .map(|i| {
                Example::succeeded(
                    json!({"origin": format!("c{i}"), "return_date": "r", "trip": "round"}),
                )
            })
            .collect();
        let hotel: Vec<Example> = (0..6)
            .map(|i| Example::succeeded(json!({"city": format!("x{i}"), "rooms": "2"})))
            .collect();
        let members = [
            member(
                "SearchOneway",
                "One way flights from an origin on a departure date.",
                &oneway,
            ),
            member(
                "SearchRound",
                "Round trip flights with a return date.",
                &round,
            ),
            member(
                "Books hotel rooms in a city.",
                "One way flights from an origin.",
                &hotel,
            ),
        ];
        let verdict = compare_together(&members, 0.05);
        assert_eq!(verdict.kept, [true, true, false], "{verdict:?}");
        assert!(verdict.evaluation.better, "{verdict:?}");
    }

    #[test]
    fn nothing_better_is_not_better() {
        let calls = [
            Example::succeeded(json!({"q": "a"})),
            Example::succeeded(json!({"q": "b"})),
        ];
        let members = [member("Finds q.", "Finds q!", &calls)];
        assert!(!compare_together(&members, 0.05).evaluation.better);
    }

    #[test]
    fn descriptions_the_cases_say_nothing_about_replace_bare_names_but_a_rewording_does_not() {
        let calls = [
            Example::succeeded(json!({"q": "a"})),
            Example::succeeded(json!({"q": "b"})),
        ];
        let members = [
            member("lookup", "Looks a word up in the dictionary.", &calls),
            member("define", "Define.", &[]),
        ];
        let verdict = compare_together(&members, 0.05);
        assert_eq!(verdict.kept, [true, false], "{verdict:?}");
        assert_eq!(verdict.evaluation.test, "not_worse");
        assert!(verdict.evaluation.better, "{verdict:?}");
    }

    #[test]
    fn candidates_that_take_each_others_calls_are_not_deployed() {
        let own: Vec<Example> = (0..6)
            .map(|i| Example::succeeded(json!({"city": format!("x{i}"), "rooms": "2"})))
            .collect();
        let members = [
            member("Books hotel rooms in a city.", "Books flights.", &own),
            member("flights", "Hotel rooms in a city, booked.", &[]),
        ];
        let verdict = compare_together(&members, 0.05);
        assert!(!verdict.evaluation.better, "{verdict:?}");
    }
}
