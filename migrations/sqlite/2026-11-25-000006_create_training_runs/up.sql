-- SQLite twin of migrations/postgres/2026-11-25-000006_create_training_runs.
CREATE TABLE training_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    trigger TEXT NOT NULL,
    approach TEXT NOT NULL,
    reason TEXT NOT NULL,
    outcome TEXT NOT NULL,
    candidate_version BIGINT,
    evaluation TEXT,
    started_at_ms BIGINT NOT NULL
);
