-- Feedback on what the gateway served: ratings, suggestions and errors from clients and the ops
-- API, and signals recorded automatically (tool call outcomes, prompt versions served).
CREATE TABLE feedback (
    id BIGSERIAL PRIMARY KEY,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version BIGINT,
    session_id TEXT,
    signal TEXT NOT NULL,
    rating DOUBLE PRECISION,
    suggestion TEXT,
    error TEXT,
    latency_ms BIGINT,
    source TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX feedback_target_created_at ON feedback (target_kind, target, created_at_ms);
