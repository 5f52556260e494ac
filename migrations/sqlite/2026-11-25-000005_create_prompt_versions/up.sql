-- SQLite twin of migrations/postgres/2026-11-25-000005_create_prompt_versions.
CREATE TABLE prompt_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version BIGINT NOT NULL,
    text TEXT NOT NULL,
    approach TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (target_kind, target, version)
);

CREATE TABLE prompt_labels (
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    label TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (target_kind, target, label)
);

CREATE TABLE prompt_label_moves (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    label TEXT NOT NULL,
    from_version BIGINT,
    to_version BIGINT NOT NULL,
    reason TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
