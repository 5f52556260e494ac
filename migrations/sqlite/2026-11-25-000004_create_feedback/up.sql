-- SQLite twin of migrations/postgres/2026-11-25-000004_create_feedback.
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version BIGINT,
    session_id TEXT,
    signal TEXT NOT NULL,
    rating DOUBLE,
    suggestion TEXT,
    error TEXT,
    latency_ms BIGINT,
    source TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX feedback_target_created_at ON feedback (target_kind, target, created_at_ms);
