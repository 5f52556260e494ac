-- The input schema (as canonical JSON) a tool version was made for, beside the description in
-- `based_on`: the version is served only while the backend's tool still has that schema. NULL
-- for prompts, operators' versions, and tool versions kept before it was recorded (served
-- whatever the schema).
ALTER TABLE prompt_versions ADD COLUMN based_on_schema TEXT;
