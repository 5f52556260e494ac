-- SQLite twin of migrations/postgres/2026-11-27-000008_add_llm_calls_to_training_runs.
ALTER TABLE training_runs ADD COLUMN llm_calls INTEGER NOT NULL DEFAULT 0;
