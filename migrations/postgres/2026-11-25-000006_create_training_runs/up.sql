-- Every training run: what triggered it, the approach chosen (or why none), the candidate's
-- evaluation against the deployed version, and the outcome.
CREATE TABLE training_runs (
    id BIGSERIAL PRIMARY KEY,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    trigger TEXT NOT NULL,
    approach TEXT NOT NULL,
    reason TEXT NOT NULL,
    outcome TEXT NOT NULL,
    candidate_version BIGINT,
    evaluation TEXT,
    started_at_ms BIGINT NOT NULL
);
