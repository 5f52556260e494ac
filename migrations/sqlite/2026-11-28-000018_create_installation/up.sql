-- Values every gateway on the store shares, made by the first that needs each: `client_key`
-- keys the hashes that stand for clients' bearer tokens.
CREATE TABLE installation (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
