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
        origin -> Nullable<Text>,
    }
}

diesel::table! {
    prompt_versions (id) {
        id -> BigInt,
        target_kind -> Text,
        target -> Text,
        version -> BigInt,
        text -> Text,
        approach -> Text,
        reason -> Text,
        created_at_ms -> BigInt,
        based_on -> Nullable<Text>,
        based_on_schema -> Nullable<Text>,
        written_over -> Nullable<Text>,
        written_over_schema -> Nullable<Text>,
    }
}

diesel::table! {
    prompt_labels (target_kind, target, label) {
        target_kind -> Text,
        target -> Text,
        label -> Text,
        version -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    prompt_label_moves (id) {
        id -> BigInt,
        target_kind -> Text,
        target -> Text,
        label -> Text,
        from_version -> Nullable<BigInt>,
        to_version -> BigInt,
        reason -> Text,
        at_ms -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(prompt_versions, prompt_labels);

diesel::table! {
    training_runs (id) {
        id -> BigInt,
        target_kind -> Text,
        target -> Text,
        trigger -> Text,
        approach -> Text,
        reason -> Text,
        outcome -> Text,
        candidate_version -> Nullable<BigInt>,
        evaluation -> Nullable<Text>,
        started_at_ms -> BigInt,
        llm_calls -> Integer,
    }
}

diesel::table! {
    trainer_inputs (target_kind, target) {
        target_kind -> Text,
        target -> Text,
        basis -> Text,
        inputs -> Text,
        written_at_ms -> BigInt,
    }
}

diesel::table! {
    experiments (target_kind, target) {
        target_kind -> Text,
        target -> Text,
        arms -> Text,
        canary -> Double,
        started_at_ms -> BigInt,
    }
}

diesel::table! {
    prompt_templates (target) {
        target -> Text,
        template -> Text,
        learnt_at_ms -> BigInt,
        changed_at_ms -> Text,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        until_ms -> BigInt,
    }
}

diesel::table! {
    installation (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    session_holders (session_key) {
        session_key -> Text,
        holder -> Text,
        url -> Text,
        created_at_ms -> BigInt,
    }
}

diesel::table! {
    refreshes (connector) {
        connector -> Text,
        asked_at_ms -> BigInt,
    }
}
