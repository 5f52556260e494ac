-- Virtual servers registered through the ops API; those of the settings are not stored.
CREATE TABLE servers (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
