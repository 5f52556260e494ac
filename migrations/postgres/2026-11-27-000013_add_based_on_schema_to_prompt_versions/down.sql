ALTER TABLE prompt_versions DROP COLUMN based_on_schema;
