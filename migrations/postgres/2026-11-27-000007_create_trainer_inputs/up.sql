-- The adversarial inputs an LLM wrote for a target, and the schema or placeholders they were
-- written for, so that a restarted trainer does not spend its LLM budget on them again.
CREATE TABLE trainer_inputs (
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    basis TEXT NOT NULL,
    inputs TEXT NOT NULL,
    written_at_ms BIGINT NOT NULL,
    PRIMARY KEY (target_kind, target)
);
