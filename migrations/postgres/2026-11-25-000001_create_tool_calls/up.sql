-- One row per tools/call routed to a connector, written in batches off the request path.
CREATE TABLE tool_calls (
    id BIGSERIAL PRIMARY KEY,
    connector TEXT NOT NULL,
    tool TEXT NOT NULL,
    session_id TEXT,
    started_at_ms BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error_kind TEXT
);

CREATE INDEX tool_calls_connector_started_at ON tool_calls (connector, started_at_ms);
