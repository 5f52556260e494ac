-- The backend's text (as a template) a trained prompt version was made from: the version is
-- served only to fetches whose backend text is still that template rendered. NULL for tool
-- descriptions and for versions written by an operator.
ALTER TABLE prompt_versions ADD COLUMN based_on TEXT;
