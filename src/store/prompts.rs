//! Prompt versions, their labels, and the history of every label move.
//!
//! A target is a tool (its description) or a prompt (its template). Versions are numbered from 1
//! per target and never changed; a label (`production`, `candidate`, …) points at one version,
//! and each move of a label is kept so that a rollback knows where to go back to.

use diesel::prelude::*;

use super::schema::{prompt_label_moves, prompt_labels, prompt_versions};
use super::AnyConnection;

/// Why production moved to a version that won a live experiment.
pub const WON: &str = "won the live experiment";
/// Why production moved to a version an operator deployed through the API.
pub const BY_API: &str = "deployed through the API";
/// How the reason of a move to a version the trainer made begins.
pub const TRAINED: &str = "trained";
/// What the reason of a rollback by the watch over live results says of the version it undid.
pub const LIVE_BREACH: &str = "had a live error rate of";

/// Whether a move of `production` for `reason` deployed a version (by the trainer, a live
/// experiment or an operator), rather than rolled one back.
pub fn is_deploy(reason: &str) -> bool {
    reason.starts_with(TRAINED) || reason == WON || reason == BY_API
}

/// A stored version.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = prompt_versions)]
pub struct Version {
    /// Row id.
    #[serde(skip)]
    pub id: i64,
    /// `tool` or `prompt`.
    pub target_kind: String,
    /// The target's name as clients see it.
    pub target: String,
    /// 1, 2, …
    pub version: i64,
    /// The text served.
    pub text: String,
    /// How it was made (`original`, `manual`, `few-shot`, …).
    pub approach: String,
    /// Why.
    pub reason: String,
    /// When, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The backend's text a version the trainer made was made from (for a prompt, as a
    /// template), and a tool's first version's own text: the version is served only while the
    /// backend's text is still that. `None` for an operator's version and a prompt's first.
    pub based_on: Option<String>,
    /// For a tool version with [`Version::based_on`], the input schema it was made for
    /// ([`crate::catalog::input_schema`]): it is served only while the tool still has that
    /// schema. `None` where it was not recorded (served whatever the schema).
    #[serde(serialize_with = "as_json")]
    pub based_on_schema: Option<String>,
    /// For an operator's version, the backend's text when it was written (a tool's description,
    /// or the template a prompt's fetches taught then, if one was learnt). The version is served
    /// whatever the backend's text becomes; this tells whether a release changed it since.
    pub written_over: Option<String>,
    /// For an operator's tool version, the tool's input schema when it was written.
    #[serde(serialize_with = "as_json")]
    pub written_over_schema: Option<String>,
}

impl Version {
    /// [`Version::based_on_schema`] as the JSON it holds (`None` without one).
    pub fn schema(&self) -> Option<serde_json::Value> {
        json_of(self.based_on_schema.as_deref())
    }

    /// [`Version::written_over_schema`] as the JSON it holds (`None` without one).
    pub fn written_over_schema(&self) -> Option<serde_json::Value> {
        json_of(self.written_over_schema.as_deref())
    }
}

/// The JSON a column's text holds, if it holds any.
fn json_of(text: Option<&str>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A JSON text kept in a column, shown as the JSON it holds.
fn as_json<S: serde::Serializer>(text: &Option<String>, out: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&json_of(text.as_deref()), out)
}

/// A label move.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = prompt_label_moves)]
pub struct LabelMove {
    /// Row id.
    #[serde(skip)]
    pub id: i64,
    /// `tool` or `prompt`.
    #[serde(skip)]
    pub target_kind: String,
    /// The target.
    #[serde(skip)]
    pub target: String,
    /// The label.
    pub label: String,
    /// Where it pointed before.
    pub from_version: Option<i64>,
    /// Where it points now.
    pub to_version: i64,
    /// Why it moved.
    pub reason: String,
    /// When.
    pub at_ms: i64,
}

/// What a new version is: its text, how it was made and why, and the backend's text it was
/// made from, if any ([`Version::based_on`], [`Version::based_on_schema`]), or that an operator
/// wrote it over ([`Version::written_over`], [`Version::written_over_schema`]).
#[derive(Default)]
pub struct NewVersion<'a> {
    pub text: &'a str,
    pub approach: &'a str,
    pub reason: &'a str,
    pub based_on: Option<&'a str>,
    pub based_on_schema: Option<&'a str>,
    pub written_over: Option<&'a str>,
    pub written_over_schema: Option<&'a str>,
}

/// Adds the next version of a target; returns its number.
pub fn add_version(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
    new: NewVersion,
    now_ms: i64,
) -> QueryResult<i64> {
    super::write(conn, |conn| {
        let last: Option<i64> = prompt_versions::table
            .filter(prompt_versions::target_kind.eq(kind))
            .filter(prompt_versions::target.eq(target))
            .select(diesel::dsl::max(prompt_versions::version))
            .first(conn)?;
        let version = last.unwrap_or(0) + 1;
        diesel::insert_into(prompt_versions::table)
            .values((
                prompt_versions::target_kind.eq(kind),
                prompt_versions::target.eq(target),
                prompt_versions::version.eq(version),
                prompt_versions::text.eq(new.text),
                prompt_versions::approach.eq(new.approach),
                prompt_versions::reason.eq(new.reason),
                prompt_versions::created_at_ms.eq(now_ms),
                prompt_versions::based_on.eq(new.based_on),
                prompt_versions::based_on_schema.eq(new.based_on_schema),
                prompt_versions::written_over.eq(new.written_over),
                prompt_versions::written_over_schema.eq(new.written_over_schema),
            ))
            .execute(conn)?;
        Ok(version)
    })
}

/// Every version of a target, oldest first.
pub fn versions(conn: &mut AnyConnection, kind: &str, target: &str) -> QueryResult<Vec<Version>> {
    prompt_versions::table
        .filter(prompt_versions::target_kind.eq(kind))
        .filter(prompt_versions::target.eq(target))
        .order(prompt_versions::version.asc())
        .select(Version::as_select())
        .load(conn)
}

/// The labels that point at `version` of a target, by name.
pub fn labels_of(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
    version: i64,
) -> QueryResult<Vec<String>> {
    prompt_labels::table
        .filter(prompt_labels::target_kind.eq(kind))
        .filter(prompt_labels::target.eq(target))
        .filter(prompt_labels::version.eq(version))
        .order(prompt_labels::label.asc())
        .select(prompt_labels::label)
        .load(conn)
}

/// The version a label points at.
pub fn label(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
    label: &str,
) -> QueryResult<Option<i64>> {
    prompt_labels::table
        .filter(prompt_labels::target_kind.eq(kind))
        .filter(prompt_labels::target.eq(target))
        .filter(prompt_labels::label.eq(label))
        .select(prompt_labels::version)
        .first(conn)
        .optional()
}

/// Points `label` at `version` and keeps the move.
pub fn move_label(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
    name: &str,
    version: i64,
    reason: &str,
    now_ms: i64,
) -> QueryResult<()> {
    super::write(conn, |conn| {
        let from = label(conn, kind, target, name)?;
        let key = (
            prompt_labels::target_kind.eq(kind),
            prompt_labels::target.eq(target),
            prompt_labels::label.eq(name),
        );
        diesel::delete(
            prompt_labels::table
                .filter(key.0)
                .filter(key.1)
                .filter(key.2),
        )
        .execute(conn)?;
        diesel::insert_into(prompt_labels::table)
            .values((
                prompt_labels::target_kind.eq(kind),
                prompt_labels::target.eq(target),
                prompt_labels::label.eq(name),
                prompt_labels::version.eq(version),
                prompt_labels::updated_at_ms.eq(now_ms),
            ))
            .execute(conn)?;
        diesel::insert_into(prompt_label_moves::table)
            .values((
                prompt_label_moves::target_kind.eq(kind),
                prompt_label_moves::target.eq(target),
                prompt_label_moves::label.eq(name),
                prompt_label_moves::from_version.eq(from),
                prompt_label_moves::to_version.eq(version),
                prompt_label_moves::reason.eq(reason),
                prompt_label_moves::at_ms.eq(now_ms),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Every move of a target's labels, oldest first.
pub fn moves(conn: &mut AnyConnection, kind: &str, target: &str) -> QueryResult<Vec<LabelMove>> {
    prompt_label_moves::table
        .filter(prompt_label_moves::target_kind.eq(kind))
        .filter(prompt_label_moves::target.eq(target))
        .order(prompt_label_moves::id.asc())
        .select(LabelMove::as_select())
        .load(conn)
}

/// Every move of the `production` label since `since_ms`, oldest first.
pub fn production_moves_since(
    conn: &mut AnyConnection,
    since_ms: i64,
) -> QueryResult<Vec<LabelMove>> {
    prompt_label_moves::table
        .filter(prompt_label_moves::label.eq("production"))
        .filter(prompt_label_moves::at_ms.ge(since_ms))
        .order(prompt_label_moves::id.asc())
        .select(LabelMove::as_select())
        .load(conn)
}

/// The id of the newest label move (0 when no label ever moved).
pub fn newest_move(conn: &mut AnyConnection) -> QueryResult<i64> {
    use diesel::dsl::max;
    let newest: Option<i64> = prompt_label_moves::table
        .select(max(prompt_label_moves::id))
        .first(conn)?;
    Ok(newest.unwrap_or(0))
}

/// Every target's production version and text.
pub fn production(conn: &mut AnyConnection) -> QueryResult<Vec<Version>> {
    prompt_versions::table
        .inner_join(
            prompt_labels::table.on(prompt_labels::target_kind
                .eq(prompt_versions::target_kind)
                .and(prompt_labels::target.eq(prompt_versions::target))
                .and(prompt_labels::version.eq(prompt_versions::version))),
        )
        .filter(prompt_labels::label.eq("production"))
        .select(Version::as_select())
        .load(conn)
}

/// A target with stored versions: how many, and where its labels point.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Versioned {
    /// `tool` or `prompt`.
    pub kind: String,
    /// The target.
    pub target: String,
    /// Versions kept.
    pub versions: i64,
    /// Label → version, by label.
    pub labels: std::collections::BTreeMap<String, i64>,
}

/// Every target with stored versions, in kind and name order.
pub fn versioned(conn: &mut AnyConnection) -> QueryResult<Vec<Versioned>> {
    let counts: Vec<(String, String, i64)> = prompt_versions::table
        .group_by((prompt_versions::target_kind, prompt_versions::target))
        .select((
            prompt_versions::target_kind,
            prompt_versions::target,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let labels: Vec<(String, String, String, i64)> = prompt_labels::table
        .select((
            prompt_labels::target_kind,
            prompt_labels::target,
            prompt_labels::label,
            prompt_labels::version,
        ))
        .load(conn)?;
    let mut targets = std::collections::BTreeMap::<(String, String), Versioned>::new();
    for (kind, target, versions) in counts {
        let key = (kind.clone(), target.clone());
        let labels = Default::default();
        let versioned = Versioned {
            kind,
            target,
            versions,
            labels,
        };
        targets.insert(key, versioned);
    }
    for (kind, target, label, version) in labels {
        if let Some(entry) = targets.get_mut(&(kind, target)) {
            entry.labels.insert(label, version);
        }
    }
    Ok(targets.into_values().collect())
}

/// The version that holds the backend's own text, kept when a target first gets versions.
pub const BASELINE: i64 = 1;

/// The production version of a target, keeping the backend's own text as version
/// [`BASELINE`] (and production) the first time a target gets versions. A tool's is based on
/// that text and on its input `schema` ([`crate::catalog::input_schema`]): once its backend
/// describes the tool otherwise or changes its schema, the backend's new text is served.
pub fn ensure_baseline(
    conn: &mut AnyConnection,
    kind: &str,
    target: &str,
    original: &str,
    schema: Option<&str>,
    now_ms: i64,
) -> QueryResult<i64> {
    if versions(conn, kind, target)?.is_empty() {
        let tool = kind == "tool";
        let baseline = NewVersion {
            text: original,
            approach: "original",
            reason: "the backend's own text",
            based_on: tool.then_some(original),
            based_on_schema: schema.filter(|_| tool),
            ..Default::default()
        };
        let first = add_version(conn, kind, target, baseline, now_ms)?;
        move_label(conn, kind, target, "production", first, "baseline", now_ms)?;
    }
    Ok(label(conn, kind, target, "production")?.unwrap_or(BASELINE))
}
