-- The live experiments that run: the versions served side by side (production first) with the
-- sessions each was given, the canary share and when it started, so that a restarted trainer
-- goes on with them; their successes and failures are read back from the feedback.
CREATE TABLE experiments (
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    arms TEXT NOT NULL,
    canary DOUBLE PRECISION NOT NULL,
    started_at_ms BIGINT NOT NULL,
    PRIMARY KEY (target_kind, target)
);
