-- A starting trainer reads the feedback of its window, newest first, across all targets.
CREATE INDEX feedback_created_at ON feedback (created_at_ms);
