-- Versions of the texts the gateway serves in place of the backends' own: tool descriptions and
-- prompt templates. Versions are never changed; labels (production, candidate, ...) point at
-- them, and every label move is kept.
CREATE TABLE prompt_versions (
    id BIGSERIAL PRIMARY KEY,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version BIGINT NOT NULL,
    text TEXT NOT NULL,
    approach TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (target_kind, target, version)
);

CREATE TABLE prompt_labels (
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    label TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (target_kind, target, label)
);

CREATE TABLE prompt_label_moves (
    id BIGSERIAL PRIMARY KEY,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    label TEXT NOT NULL,
    from_version BIGINT,
    to_version BIGINT NOT NULL,
    reason TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
