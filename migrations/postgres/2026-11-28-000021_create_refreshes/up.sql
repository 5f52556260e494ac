-- When a connector's refresh was last asked for through the ops API, by the store's clock:
-- with several gateways on one store, each refreshes it too when the time changes.
CREATE TABLE refreshes (
    connector TEXT PRIMARY KEY,
    asked_at_ms BIGINT NOT NULL
);
