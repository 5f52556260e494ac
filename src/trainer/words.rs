//! Words of a text for comparing texts by what they talk about: split at case changes and
//! punctuation, lower-cased, common words dropped, a plural `s` cut. Pure.

use std::collections::HashSet;

/// Words too common to say what a text is about.
const STOP: [&str; 48] = [
    "the", "and", "for", "with", "from", "that", "this", "are", "was", "were", "been", "be", "is",
    "it", "its", "of", "to", "in", "on", "at", "by", "or", "an", "as", "if", "can", "will",
    "would", "should", "which", "what", "when", "where", "who", "how", "me", "my", "you", "your",
    "please", "do", "does", "not", "no", "all", "any", "into", "than",
];

/// The words of `text`, in order, repeats kept.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    let flush = |current: &mut String, out: &mut Vec<String>| {
        let word = std::mem::take(current);
        if word.len() < 2 || word.chars().all(|c| c.is_ascii_digit()) || STOP.contains(&&*word) {
            return;
        }
        let stem = match word.strip_suffix('s') {
            Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_string(),
            _ => word,
        };
        out.push(stem);
    };
    for c in text.chars() {
        if !c.is_alphanumeric() {
            flush(&mut current, &mut out);
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            flush(&mut current, &mut out);
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    flush(&mut current, &mut out);
    out
}

/// The distinct words of `text`.
pub fn word_set(text: &str) -> HashSet<String> {
    words(text).into_iter().collect()
}

/// The share of `wanted`'s words found in `text`'s (0 when `wanted` has none).
pub fn coverage(wanted: &HashSet<String>, text: &HashSet<String>) -> f64 {
    if wanted.is_empty() {
        return 0.0;
    }
    wanted.iter().filter(|w| text.contains(*w)).count() as f64 / wanted.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_at_case_changes_and_punctuation_and_drop_common_ones() {
        assert_eq!(
            words("ChaDri.change_drink: the newPreferences of drinks, 42"),
            [
                "cha",
                "dri",
                "change",
                "drink",
                "new",
                "preference",
                "drink"
            ]
        );
    }

    #[test]
    fn coverage_is_the_share_of_wanted_words_present() {
        let wanted = word_set("drink size milk");
        assert_eq!(
            coverage(&wanted, &word_set("Changes a drink's milk")),
            2.0 / 3.0
        );
        assert_eq!(coverage(&word_set(""), &wanted), 0.0);
    }
}
