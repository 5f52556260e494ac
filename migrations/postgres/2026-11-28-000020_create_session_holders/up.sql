-- Which gateway process holds each client session, with several gateways on one store: a
-- request for a session that reaches another gateway is forwarded to `url`. A session is
-- named by a keyed hash of its id (the id itself is a secret), `holder` is the process.
CREATE TABLE session_holders (
    session_key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    url TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX session_holders_by_holder ON session_holders (holder);
