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

diesel::table! {
    connectors (name) {
        name -> Text,
        settings -> Text,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    servers (name) {
        name -> Text,
        settings -> Text,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    feedback (id) {
        id -> BigInt,
        target_kind -> Text,
        target -> Text,
        version -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
        signal -> Text,
        rating -> Nullable<Double>,
        suggestion -> Nullable<Text>,
        error -> Nullable<Text>,
        latency_ms -> Nullable<BigInt>,
        source -> Text,
        created_at_ms -> BigInt,
    }
}
