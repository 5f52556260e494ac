-- SQLite twin of migrations/postgres/2026-11-27-000010_create_experiments.
CREATE TABLE experiments (
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    arms TEXT NOT NULL,
    canary DOUBLE NOT NULL,
    started_at_ms BIGINT NOT NULL,
    PRIMARY KEY (target_kind, target)
);
