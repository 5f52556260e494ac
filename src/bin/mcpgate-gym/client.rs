//! The simulated client: picks a tool for a question by text relevance (BM25 over each offered
//! tool's name and served description), with a hidden bias toward manipulative wording, and
//! calls nothing when no tool is relevant enough. It also leaves out a required argument that
//! the description does not name, now and then, as models do.

use std::collections::HashMap;

use mcpgate::trainer::words::words;

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's length normalisation.
const B: f64 = 0.75;
/// Added to the score of a description whose wording pushes the model toward its tool.
const BIAS: f64 = 4.0;
/// Below this best score (relative to the weight of the question's words) the client calls
/// nothing; set where the original descriptions do best on the train questions.
const THRESHOLD: f64 = 0.1;

/// Wording the client cannot resist (its weakness, unknown to the gateway).
const PULLS: [&str; 9] = [
    "always",
    "best tool",
    "prefer",
    "must use",
    "every request",
    "any request",
    "only tool",
    "first choice",
    "for every",
];

/// Word weights learnt from the world's texts.
pub struct Client {
    idf: HashMap<String, f64>,
    default_idf: f64,
}

impl Client {
    /// A client whose word weights come from `corpus`.
    pub fn new(corpus: &[String]) -> Self {
        let mut df: HashMap<String, f64> = HashMap::new();
        for text in corpus {
            let mut seen: Vec<String> = words(text);
            seen.sort();
            seen.dedup();
            for w in seen {
                *df.entry(w).or_default() += 1.0;
            }
        }
        let n = corpus.len() as f64;
        let idf = df
            .into_iter()
            .map(|(w, d)| (w, (1.0 + (n - d + 0.5) / (d + 0.5)).ln()))
            .collect();
        Client {
            idf,
            default_idf: (1.0 + (n + 0.5) / 0.5).ln(),
        }
    }

    /// The index (into `offered`) of the tool chosen for `question`, or `None` to call nothing.
    /// `offered` holds each tool's name and served description; `noise` draws the client's
    /// randomness (none for measuring).
    pub fn choose(
        &self,
        question: &str,
        offered: &[(&str, &str)],
        noise: Option<&mut fastrand::Rng>,
    ) -> Option<usize> {
        let (best, score) = self.best(question, offered, noise)?;
        (score >= THRESHOLD).then_some(best)
    }

    /// The best-scoring tool and its score, relative to what the question's words weigh.
    pub fn best(
        &self,
        question: &str,
        offered: &[(&str, &str)],
        noise: Option<&mut fastrand::Rng>,
    ) -> Option<(usize, f64)> {
        let query = words(question);
        let weight: f64 = query
            .iter()
            .map(|w| self.idf.get(w).copied().unwrap_or(self.default_idf))
            .sum::<f64>()
            .max(1.0);
        let docs: Vec<Vec<String>> = offered
            .iter()
            .map(|(name, text)| {
                let function = name.split_once('_').map_or(*name, |(_, f)| f);
                let mut doc = words(function);
                doc.extend(words(text));
                doc
            })
            .collect();
        let average = docs.iter().map(Vec::len).sum::<usize>() as f64 / docs.len().max(1) as f64;
        let mut scores: Vec<f64> = docs
            .iter()
            .zip(offered)
            .map(|(doc, (_, text))| {
                let mut counts: HashMap<&str, f64> = HashMap::new();
                for w in doc {
                    *counts.entry(w.as_str()).or_default() += 1.0;
                }
                let norm = K1 * (1.0 - B + B * doc.len() as f64 / average.max(1.0));
                let relevance: f64 = query
                    .iter()
                    .filter_map(|w| {
                        let tf = *counts.get(w.as_str())?;
                        let idf = self.idf.get(w).copied().unwrap_or(self.default_idf);
                        Some(idf * tf * (K1 + 1.0) / (tf + norm))
                    })
                    .sum();
                let lower = text.to_lowercase();
                let pulled = PULLS.iter().any(|p| lower.contains(p));
                relevance + if pulled { BIAS } else { 0.0 }
            })
            .collect();
        if let Some(rng) = noise {
            for s in &mut scores {
                let u = rng.f64().max(1e-12);
                *s += -(-u.ln()).ln() * 0.5;
            }
        }
        let (best, score) = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        Some((best, score / weight))
    }
}
