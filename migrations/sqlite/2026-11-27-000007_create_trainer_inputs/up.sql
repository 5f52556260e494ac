-- SQLite twin of migrations/postgres/2026-11-27-000007_create_trainer_inputs.
CREATE TABLE trainer_inputs (
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    basis TEXT NOT NULL,
    inputs TEXT NOT NULL,
    written_at_ms BIGINT NOT NULL,
    PRIMARY KEY (target_kind, target)
);
