-- The backend's text a version was made from: a trained version's (for a prompt, as a
-- template), and a tool's first version's own text. A version is served only while the
-- backend's text is still that. NULL for operators' versions and a prompt's first version.
ALTER TABLE prompt_versions ADD COLUMN based_on TEXT;
-- Tool versions kept before: the first is its own text, and a trained one was made from it.
UPDATE prompt_versions
SET based_on = (
    SELECT baseline.text FROM prompt_versions baseline
    WHERE baseline.target_kind = prompt_versions.target_kind
      AND baseline.target = prompt_versions.target
      AND baseline.version = 1
)
WHERE target_kind = 'tool' AND approach <> 'manual';
