//! The `trainer_inputs` table: the adversarial inputs an LLM wrote for each target, with what
//! they were written for (a tool's schema, a prompt's placeholders), one row per target.

use diesel::prelude::*;

use super::schema::trainer_inputs;
use super::AnyConnection;

/// A target's stored inputs.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = trainer_inputs)]
pub struct Inputs {
    /// `tool` or `prompt`.
    pub target_kind: String,
    /// The target's name.
    pub target: String,
    /// What they were asked for.
    pub basis: String,
    /// The inputs, a JSON array.
    pub inputs: String,
    /// When they were written, milliseconds since the Unix epoch.
    pub written_at_ms: i64,
}

/// Keeps `inputs` (a JSON array) for a target in place of what it had.
pub fn put(
    conn: &mut AnyConnection,
    (kind, target): (&str, &str),
    basis: &str,
    inputs: &str,
    now_ms: i64,
) -> QueryResult<()> {
    super::write(conn, |conn| {
        diesel::delete(
            trainer_inputs::table
                .filter(trainer_inputs::target_kind.eq(kind))
                .filter(trainer_inputs::target.eq(target)),
        )
        .execute(conn)?;
        diesel::insert_into(trainer_inputs::table)
            .values((
                trainer_inputs::target_kind.eq(kind),
                trainer_inputs::target.eq(target),
                trainer_inputs::basis.eq(basis),
                trainer_inputs::inputs.eq(inputs),
                trainer_inputs::written_at_ms.eq(now_ms),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Every target's inputs.
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<Inputs>> {
    trainer_inputs::table.select(Inputs::as_select()).load(conn)
}
