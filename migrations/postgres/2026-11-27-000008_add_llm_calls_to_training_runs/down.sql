ALTER TABLE training_runs DROP COLUMN llm_calls;
