-- Values every gateway on the store shares, made by the first that needs each: `client_key`
-- keys the hashes that stand for clients' bearer tokens.
CREATE TABLE installation (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Made here, so that a starting gateway only reads it (128 random bits from gen_random_uuid,
-- built in since PostgreSQL 13).
INSERT INTO installation (name, value)
VALUES ('client_key', replace(gen_random_uuid()::text, '-', ''));
