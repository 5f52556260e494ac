//! The `prompt_templates` table: the text of each connector prompt as the trainer learnt it from
//! the prompt's fetches, and when it last changed, one row per prompt.

use diesel::prelude::*;

use super::schema::prompt_templates;
use super::AnyConnection;

/// A prompt's learnt text.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = prompt_templates)]
pub struct Template {
    /// The prompt's name as clients see it.
    pub target: String,
    /// The text, with its arguments as placeholders.
    pub template: String,
    /// When it was learnt, milliseconds since the Unix epoch.
    pub learnt_at_ms: i64,
    /// When the text last changed to another with the same placeholders: a JSON array of
    /// milliseconds since the Unix epoch, oldest first (see [`Template::changes`]).
    pub changed_at_ms: String,
}

impl Template {
    /// When the text last changed, oldest first; none where the column does not read as such.
    pub fn changes(&self) -> Vec<i64> {
        serde_json::from_str(&self.changed_at_ms).unwrap_or_default()
    }
}

/// Keeps `template` for `target`, and when it last `changed` (milliseconds since the Unix
/// epoch), in place of what it had, unless what it had was learnt later (two writes may land
/// out of order).
pub fn put(
    conn: &mut AnyConnection,
    target: &str,
    template: &str,
    changed: &[i64],
    now_ms: i64,
) -> QueryResult<()> {
    let changed = serde_json::Value::from(changed).to_string();
    super::write(conn, |conn| {
        let newer = prompt_templates::table
            .filter(prompt_templates::target.eq(target))
            .filter(prompt_templates::learnt_at_ms.gt(now_ms))
            .count()
            .get_result::<i64>(conn)?;
        if newer > 0 {
            return Ok(());
        }
        diesel::delete(prompt_templates::table.filter(prompt_templates::target.eq(target)))
            .execute(conn)?;
        diesel::insert_into(prompt_templates::table)
            .values((
                prompt_templates::target.eq(target),
                prompt_templates::template.eq(template),
                prompt_templates::learnt_at_ms.eq(now_ms),
                prompt_templates::changed_at_ms.eq(changed),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Every prompt's learnt text.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<Template>> {
    prompt_templates::table
        .select(Template::as_select())
        .load(conn)
}
