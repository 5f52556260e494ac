-- The text of each connector prompt as the trainer learnt it from the prompt's fetches (the
-- backend's rendering with the arguments put back as placeholders), so that a restarted trainer
-- can train a prompt before its next fetch.
CREATE TABLE prompt_templates (
    target TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    learnt_at_ms BIGINT NOT NULL
);
