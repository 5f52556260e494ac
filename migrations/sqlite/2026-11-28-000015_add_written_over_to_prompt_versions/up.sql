-- What the backend gave when an operator wrote a version (a tool's description and input
-- schema as canonical JSON; the template a prompt's fetches taught, if one was learnt): an
-- operator's version is served whatever the backend's text becomes, and these let the ops API
-- and the log say when a backend's release has changed what it hides. NULL for the trainer's
-- versions (see `based_on`) and for operators' versions kept before it was recorded.
ALTER TABLE prompt_versions ADD COLUMN written_over TEXT;
ALTER TABLE prompt_versions ADD COLUMN written_over_schema TEXT;
