-- Connectors registered through the ops API; connectors.yaml ones are not stored.
CREATE TABLE connectors (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
