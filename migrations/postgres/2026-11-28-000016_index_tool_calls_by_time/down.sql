DROP INDEX tool_calls_started_at;
