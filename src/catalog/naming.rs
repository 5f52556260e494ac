//! Exposed names: how a backend's tool or prompt name becomes one client-visible name.
//!
//! `{connector}{separator}{name}`, kept within `^[A-Za-z0-9_./-]{1,64}$`. Characters outside the
//! set become `_`; a name that is too long, or that another entry already took, is shortened and
//! given a suffix derived from its full original spelling, so the result is the same on every run
//! and every process. Each such change comes back as a report for the log.

use std::collections::HashSet;
use std::hash::Hasher;

/// Longest name that clients accept.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `c` may appear in an exposed name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

/// Gives `original` of `connector` its exposed name, unique within `taken`, and inserts it there.
/// Returns the name and, when it differs from the plain joined form, a report of why.
pub fn expose(
    connector: &str,
    separator: &str,
    original: &str,
    taken: &mut HashSet<String>,
) -> (String, Option<String>) {
    let joined = format!("{connector}{separator}{original}");
    let sanitized: String = joined
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let mut reasons = Vec::new();
    if sanitized != joined {
        reasons.push("has characters outside [A-Za-z0-9_./-]");
    }
    let mut name = sanitized.clone();
    if name.len() > MAX_NAME_LEN {
        reasons.push("is longer than 64 characters");
        name = with_suffix(&sanitized, &joined, 0);
    }
    if taken.contains(&name) {
        reasons.push("collides with another name");
        let mut round = 0;
        while taken.contains(&name) {
            name = with_suffix(&sanitized, &joined, round);
            round += 1;
        }
    }
    taken.insert(name.clone());
    let report = (!reasons.is_empty()).then(|| {
        format!(
            "`{}` of connector `{connector}` is exposed as `{name}`: it {}",
            super::shown(original),
            reasons.join(" and ")
        )
    });
    (name, report)
}

/// `base` cut so that `_` and eight hex digits of the hash of `joined` (and `round`) fit in 64.
fn with_suffix(base: &str, joined: &str, round: u32) -> String {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(joined.as_bytes());
    hasher.write_u32(round);
    let suffix = format!("_{:08x}", hasher.finish() as u32);
    let keep = base.len().min(MAX_NAME_LEN - suffix.len());
    format!("{}{suffix}", &base[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        !name.is_empty() && name.len() <= MAX_NAME_LEN && name.chars().all(is_name_char)
    }

    #[test]
    fn a_plain_name_is_joined_without_report() {
        let mut taken = HashSet::new();
        let (name, report) = expose("github", "_", "search", &mut taken);
        assert_eq!(name, "github_search");
        assert!(report.is_none());
    }

    #[test]
    fn characters_outside_the_set_become_underscores_and_are_reported() {
        let mut taken = HashSet::new();
        let (name, report) = expose("fs", "_", "read file:now", &mut taken);
        assert_eq!(name, "fs_read_file_now");
        assert!(report.unwrap().contains("characters outside"));
    }

    #[test]
    fn a_long_name_is_shortened_to_64_with_a_stable_suffix() {
        let long = "x".repeat(100);
        let (first, report) = expose("c", "_", &long, &mut HashSet::new());
        let (second, _) = expose("c", "_", &long, &mut HashSet::new());
        assert_eq!(first.len(), 64);
        assert!(valid(&first));
        assert_eq!(first, second);
        assert!(report.unwrap().contains("longer than 64"));
    }

    #[test]
    fn two_long_names_with_a_common_start_stay_distinct() {
        let mut taken = HashSet::new();
        let a = expose("c", "_", &format!("{}a", "x".repeat(80)), &mut taken).0;
        let b = expose("c", "_", &format!("{}b", "x".repeat(80)), &mut taken).0;
        assert_ne!(a, b);
    }

    #[test]
    fn a_collision_gets_a_suffix_and_a_report() {
        let mut taken = HashSet::new();
        let (first, _) = expose("a", "_", "b_c", &mut taken);
        let (second, report) = expose("a_b", "_", "c", &mut taken);
        assert_eq!(first, "a_b_c");
        assert_ne!(second, first);
        assert!(second.starts_with("a_b_c_"));
        assert!(valid(&second));
        assert!(report.unwrap().contains("collides"));
    }
}
