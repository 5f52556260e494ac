-- Retention deletes the call records older than recorder.keep_calls_ms, oldest first.
CREATE INDEX tool_calls_started_at ON tool_calls (started_at_ms);
