//! Table definitions shared by the PostgreSQL and SQLite migrations.

diesel::table! {
    tool_calls (id) {
        id -> BigInt,
        connector -> Text,
        tool -> Text,
        session_id -> Nullable<Text>,
        started_at_ms -> BigInt,
        duration_us -> BigInt,
        outcome -> Text,
        error_kind -> Nullable<Text>,
    }
}
