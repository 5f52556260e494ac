ALTER TABLE prompt_versions DROP COLUMN written_over_schema;
ALTER TABLE prompt_versions DROP COLUMN written_over;
