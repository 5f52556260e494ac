//! The built-in feedback tool (`mcpgate_feedback` by default): clients and models rate what the
//! gateway just served, with the same fields as `POST /api/v1/feedback`.

use serde_json::{json, Value};

use super::dispatch::Context;
use crate::feedback::FeedbackInput;
use crate::registry::Snapshot;

/// The tool's definition as `tools/list` shows it.
pub fn definition(name: &str) -> Value {
    json!({
        "name": name,
        "title": "Rate a tool or prompt",
        "description": "Rate a tool or prompt you just used through this gateway so that it can \
            be improved: a rating (1-5, or up/down), what would have been better, or the error \
            you saw. Name the tool or prompt exactly as listed.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "target_kind": {"type": "string", "enum": ["tool", "prompt"]},
                "target": {"type": "string", "description": "The tool or prompt name as listed."},
                "rating": {"oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": 5},
                    {"type": "string", "enum": ["up", "down"]}
                ]},
                "suggestion": {"type": "string", "maxLength": 2000},
                "error": {"type": "string", "maxLength": 2000},
                "version": {"type": "integer", "minimum": 1}
            },
            "required": ["target_kind", "target"],
            "additionalProperties": false
        },
        "annotations": {"readOnlyHint": false, "destructiveHint": false}
    })
}

/// Records the feedback in `arguments` on what `snapshot` lists; a result with `isError` names
/// what was wrong.
pub fn call(ctx: &Context, snapshot: &Snapshot, arguments: Value) -> Value {
    let mut input: FeedbackInput = match serde_json::from_value(arguments) {
        Ok(input) => input,
        Err(e) => return error_result(&format!("invalid arguments: {e}")),
    };
    input.session_id = ctx.session();
    // The name as this session sees it (a virtual server may show names unprefixed); one it
    // cannot see is unknown, as one that does not exist.
    let visible = match input.target_kind.as_str() {
        "tool" => Some(ctx.scope.tool_name(snapshot, &input.target)),
        "prompt" => Some(ctx.scope.prompt_name(snapshot, &input.target)),
        _ => None,
    };
    match visible {
        Some(Some(name)) => input.target = name,
        Some(None) => {
            let kind = &input.target_kind;
            return error_result(&format!("target: unknown {kind} `{}`", input.target));
        }
        None => {}
    }
    match input.validate(snapshot, "tool", crate::connector::now_ms()) {
        Ok(feedback) => {
            ctx.feedback.record(feedback);
            json!({"content": [{"type": "text", "text": "Thank you: the feedback was recorded."}]})
        }
        Err(problems) => {
            let text = problems
                .iter()
                .map(|(field, problem)| format!("{field}: {problem}"))
                .collect::<Vec<_>>()
                .join("; ");
            error_result(&text)
        }
    }
}

fn error_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}
