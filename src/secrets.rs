//! Secret values from the environment: `${VAR}` references in settings, resolved once at
//! start-up into [`SecretString`]s that never print. This module owns the resolution only; where
//! a secret is sent (a connector's headers, the client token check) is up to its user.

use secrecy::SecretString;

/// A `${VAR}` reference whose variable is not set.
#[derive(Debug, thiserror::Error)]
#[error("environment variable `{0}` is not set")]
pub struct MissingVariable(pub String);

/// Replaces every `${VAR}` in `template` with the value of the environment variable `VAR`.
/// Text outside references is kept; `$` not followed by `{` is kept as it is.
pub fn resolve(template: &str) -> Result<SecretString, MissingVariable> {
    resolve_with(template, |name| std::env::var(name).ok()).map(SecretString::from)
}

/// The values of the variables `template` refers to that are set.
pub fn referenced(template: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        values.extend(std::env::var(&after[..end]).ok());
        rest = &after[end + 1..];
    }
    values
}

/// Whether `template` has a `${` that no `}` closes (it would be sent as it is written).
pub fn unclosed(template: &str) -> bool {
    template
        .rfind("${")
        .is_some_and(|start| !template[start..].contains('}'))
}

fn resolve_with(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, MissingVariable> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&lookup(name).ok_or_else(|| MissingVariable(name.to_string()))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::resolve_with;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    #[test]
    fn a_reference_is_replaced_by_the_variable() {
        assert_eq!(
            resolve_with("Bearer ${TOKEN}", env).unwrap(),
            "Bearer s3cret"
        );
    }

    #[test]
    fn text_without_references_is_kept() {
        assert_eq!(resolve_with("plain $x {y}", env).unwrap(), "plain $x {y}");
    }

    #[test]
    fn an_unset_variable_is_named_in_the_error() {
        let err = resolve_with("${NOPE}", env).unwrap_err();
        assert_eq!(err.0, "NOPE");
    }

    #[test]
    fn an_unclosed_reference_is_kept_as_text() {
        assert_eq!(resolve_with("a ${TOKEN", env).unwrap(), "a ${TOKEN");
    }
}
