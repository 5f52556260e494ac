DROP INDEX feedback_created_at;
