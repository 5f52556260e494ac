ALTER TABLE prompt_templates DROP COLUMN changed_at_ms;
