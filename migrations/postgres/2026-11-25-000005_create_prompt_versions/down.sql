DROP TABLE prompt_label_moves; DROP TABLE prompt_labels; DROP TABLE prompt_versions;
