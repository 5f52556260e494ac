-- SQLite twin of migrations/postgres/2026-11-27-000011_create_prompt_templates.
CREATE TABLE prompt_templates (
    target TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    learnt_at_ms BIGINT NOT NULL
);
