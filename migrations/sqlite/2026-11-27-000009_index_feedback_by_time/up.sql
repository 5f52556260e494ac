-- SQLite twin of migrations/postgres/2026-11-27-000009_index_feedback_by_time.
CREATE INDEX feedback_created_at ON feedback (created_at_ms);
