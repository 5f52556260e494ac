-- SQLite twin of migrations/postgres/2026-11-25-000001_create_tool_calls.
CREATE TABLE tool_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    tool TEXT NOT NULL,
    session_id TEXT,
    started_at_ms BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error_kind TEXT
);

CREATE INDEX tool_calls_connector_started_at ON tool_calls (connector, started_at_ms);
