-- Values every gateway on the store shares, made by the first that needs each: `client_key`
-- keys the hashes that stand for clients' bearer tokens.
CREATE TABLE installation (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Made here, so that a starting gateway only reads it: a write at start-up would wait for the
-- write lock behind a long prune.
INSERT INTO installation (name, value) VALUES ('client_key', lower(hex(randomblob(16))));
