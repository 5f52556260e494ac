-- When each prompt's learnt text last changed to another with the same placeholders (a JSON
-- array of milliseconds since the Unix epoch, the latest few), so that a restarted trainer
-- still refuses to train a prompt whose text changes from fetch to fetch.
ALTER TABLE prompt_templates ADD COLUMN changed_at_ms TEXT NOT NULL DEFAULT '[]';
