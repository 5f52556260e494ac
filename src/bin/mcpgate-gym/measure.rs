//! How the world measures a set of descriptions: the client's score on questions (a right
//! choice, weighted by the chance that its call goes through), for the whole test set or one
//! backend's questions. Pure.

use crate::client::Client;
use crate::data::{Data, Question};

/// How well the client answers `q` when tools read `texts`: 0 for a wrong choice, else the
/// chance that the call goes through (a required argument the text does not name is left out
/// with chance `omit`).
pub fn score(client: &Client, data: &Data, q: &Question, texts: &[String], omit: f64) -> f64 {
    let group = &data.groups[q.group];
    let offered: Vec<(&str, &str)> = group
        .iter()
        .map(|&t| (data.tools[t].name.as_str(), texts[t].as_str()))
        .collect();
    let chosen = client.choose(&q.text, &offered, None).map(|i| group[i]);
    match (chosen == q.expected, chosen) {
        (false, _) => 0.0,
        (true, None) => 1.0,
        (true, Some(t)) => {
            let lower = texts[t].to_lowercase();
            let required = data.tools[t].required();
            match required.iter().any(|r| !lower.contains(&r.to_lowercase())) {
                true => 1.0 - omit,
                false => 1.0,
            }
        }
    }
}

/// The mean score of `questions` when tools read `texts`.
pub fn success(
    client: &Client,
    data: &Data,
    questions: &[Question],
    texts: &[String],
    omit: f64,
) -> f64 {
    let total: f64 = questions
        .iter()
        .map(|q| score(client, data, q, texts, omit))
        .sum();
    total / questions.len().max(1) as f64
}

/// The score of `split`'s questions of tool `t`'s group (the test or the validation questions)
/// when it reads `text` and the others read `texts`.
pub fn group_success(
    client: &Client,
    data: &Data,
    split: &[Question],
    (texts, t, text): (&[String], usize, &str),
    omit: f64,
) -> f64 {
    let mut texts = texts.to_vec();
    texts[t] = text.to_string();
    let group = data.tools[t].group;
    let questions: Vec<Question> = split.iter().filter(|q| q.group == group).cloned().collect();
    success(client, data, &questions, &texts, omit)
}
