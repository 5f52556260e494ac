//! `prompts/list` and `prompts/get`. Arguments are checked against the prompt's declared
//! required arguments before the connector is asked; a deployed version (or a live
//! experiment's, per session) takes the place of the backend's first text message where it
//! has a place for each argument given and no other and, for a trained version, while the
//! backend still renders the text it was made from (a session joins an experiment's arm only
//! with a fetch the arm's version fits); the backend's own text goes to the trainer as a
//! template to learn from.

use serde_json::{Map, Value};

use super::dispatch::{list_result, object, send_to, string, Context};
use super::jsonrpc::RpcError;
use super::paging::page;
use crate::connector::{ConnectorError, GetPrompt};
use crate::trainer::safety;
use crate::trainer::served::Served;

/// One page of the aggregated prompts.
pub async fn list(ctx: &Context, params: Option<&Value>) -> Result<Value, RpcError> {
    let snapshot = ctx.snapshot_for_list("prompts_list").await;
    let prompts = ctx.scope.prompts(&snapshot);
    let (prompts, next) = page(&prompts, params, ctx.page_size)?;
    Ok(list_result("prompts", prompts.iter().cloned(), next))
}

/// Renders a prompt on its connector.
pub async fn get(ctx: &Context, params: Option<Value>) -> Result<Value, RpcError> {
    let mut params = object(params, "prompts/get")?;
    let name = string(&params, "name", "prompts/get")?;
    let arguments = match params.remove("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) if arguments.values().all(Value::is_string) => arguments,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "`arguments` must be an object of strings",
            ))
        }
    };
    let snapshot = ctx.snapshot_for_call().await;
    let name = ctx
        .scope
        .prompt_name(&snapshot, &name)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown prompt `{name}`")))?;
    let Some(entry) = snapshot.catalog.prompt(&name) else {
        return Err(match snapshot.catalog.hidden_prompt(&name) {
            Some(connector) => super::tools::unavailable(&snapshot, connector),
            None => RpcError::invalid_params(format!("unknown prompt `{name}`")),
        });
    };
    if let Some(missing) = missing_argument(&entry.item, &arguments) {
        return Err(RpcError::invalid_params(format!(
            "prompt `{name}` needs the argument `{missing}`"
        )));
    }
    let connector = entry.connector.to_string();
    let addr = snapshot.connectors.get(&connector).ok_or_else(|| {
        RpcError::from(ConnectorError::Stopped {
            connector: connector.clone(),
        })
    })?;
    let rendered_arguments = arguments.clone();
    let message = GetPrompt {
        prompt: entry.original.clone(),
        arguments,
        client: Some(ctx.client.clone()),
    };
    let mut result = send_to(addr, &connector, message).await?;
    let mut signal = super::tools::signal_of(ctx, "prompt", &name, "served", None);
    let first_text = result["messages"]
        .as_array_mut()
        .and_then(|messages| messages.iter_mut().find(|m| m["content"]["type"] == "text"));
    let own = first_text
        .as_ref()
        .and_then(|m| m["content"]["text"].as_str());
    let template = own.and_then(|text| safety::template_of(text, &rendered_arguments));
    // A version with no text is the backend's own rendering (the baseline kept before the
    // first version of a prompt was added): it is counted, but nothing is replaced. Nor is it
    // by a version without a place for each argument given (or with one not given), or by a
    // trained version whose backend no longer renders what it was made from: the backend's
    // own rendering is served, and counted as the baseline's.
    let own = own.map(str::to_string);
    let fits = |served: &Served| {
        served.text.is_empty()
            || (safety::fits(&served.text, &rendered_arguments)
                && safety::still_based_on(
                    served.based_on.as_deref(),
                    own.as_deref(),
                    &rendered_arguments,
                ))
    };
    let serving = ctx.served.serve("prompt", &name, &ctx.session_id, fits);
    if let Some((version, served, joined)) = serving {
        if joined {
            super::tools::joined(ctx, "prompt", &name, version);
        }
        signal.version = Some(version);
        let replacing = served.filter(|served| !served.text.is_empty());
        if let (Some(served), Some(message)) = (replacing, first_text) {
            let text = safety::render(&served.text, &rendered_arguments);
            message["content"]["text"] = Value::String(text);
        }
    }
    let arguments = Value::Object(rendered_arguments);
    ctx.feedback.record_prompt(signal, arguments, template);
    Ok(result)
}

/// The first argument that `prompt` declares required and `arguments` lacks.
fn missing_argument(prompt: &Value, arguments: &Map<String, Value>) -> Option<String> {
    crate::catalog::required_arguments(prompt)
        .into_iter()
        .find(|name| !arguments.contains_key(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_required_argument_is_named() {
        let prompt = json!({"arguments": [
            {"name": "topic", "required": true},
            {"name": "style"},
        ]});
        let given = json!({"style": "short"}).as_object().cloned().unwrap();
        assert_eq!(missing_argument(&prompt, &given).as_deref(), Some("topic"));
        let given = json!({"topic": "rust"}).as_object().cloned().unwrap();
        assert_eq!(missing_argument(&prompt, &given), None);
    }
}
