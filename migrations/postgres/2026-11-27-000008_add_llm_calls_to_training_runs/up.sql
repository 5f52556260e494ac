-- The LLM calls each run made, so that the day's budget of calls holds across a restart.
ALTER TABLE training_runs ADD COLUMN llm_calls INTEGER NOT NULL DEFAULT 0;
