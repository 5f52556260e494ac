-- Leases held by one gateway of those sharing the store: `trainer` names the gateway whose
-- trainer starts runs. A holder renews its lease before `until_ms`; past it, another may take it.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
