//! `GET /api/v1/targets`: every tool and prompt that has feedback or stored versions, with its
//! versions and where its labels point, whether its production version can be served (a
//! backend's release may have left it behind) and whether a release changed the backend's text
//! since that version was made or written, the arms of its live experiment if one runs, and its
//! live figures over the trainer's window (among them the uses each version was served for).

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::store;
use crate::gateway::Gateway;
use crate::store::prompts;
use crate::trainer::{LearntTemplates, ListTargets, TargetView};

/// `GET /api/v1/targets`, in kind and name order.
pub async fn list(gateway: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let live = gateway.feedback.trainer.send(ListTargets).await?;
    let templates = gateway.feedback.trainer.send(LearntTemplates).await?;
    let versioned = store(&gateway, prompts::versioned).await?;
    let mut targets: BTreeMap<(String, String), (TargetView, Option<prompts::Versioned>)> = live
        .into_iter()
        .map(|view| ((view.kind.clone(), view.target.clone()), (view, None)))
        .collect();
    for stored in versioned {
        let key = (stored.kind.clone(), stored.target.clone());
        let entry = targets
            .entry(key)
            .or_insert_with(|| (TargetView::quiet(&stored.kind, &stored.target), None));
        entry.1 = Some(stored);
    }
    let experiments = &gateway.served.experiments;
    let snapshot = gateway.catalog.load();
    // Of the production version: whether it can be served, and whether a backend's release
    // changed the text since it was made from it or, an operator's, written over it (for an
    // operator's version, served anyway, the only sign that it hides the release). A tool's
    // is served while made for its backend's description and schema now; a prompt's, while
    // made from the template its fetches teach now (then to the fetches whose arguments it
    // fits). Null without a production version, for a tool out of the catalog, for a prompt
    // whose template is not known yet, and (the release) where the version recorded no text.
    let production_state = |kind: &str, target: &str| -> (Option<bool>, Option<bool>) {
        let Some(production) = gateway.served.get(kind, target) else {
            return (None, None);
        };
        if kind == "prompt" {
            let learnt = templates.get(target);
            let served = match &production.based_on {
                None => Some(true),
                Some(made) => learnt.map(|learnt| learnt == made),
            };
            return (
                served,
                learnt.and_then(|l| production.prompt_released_since(l)),
            );
        }
        let Some(entry) = snapshot.catalog.tool(target) else {
            return (None, None);
        };
        let own = entry.item["description"].as_str().unwrap_or_default();
        let schema = crate::catalog::input_schema(&entry.item);
        let served = production.made_for(own, schema);
        (Some(served), production.tool_released_since(own, schema))
    };
    let targets: Vec<Value> = targets
        .into_values()
        .map(|(view, stored)| {
            let arms = experiments.arms(&view.kind, &view.target).map(|arms| {
                arms.iter()
                    .map(|a| {
                        json!({"version": a.served.version, "successes": a.successes,
                        "failures": a.failures, "sessions": a.sessions, "mean": a.mean()})
                    })
                    .collect::<Vec<_>>()
            });
            let labels = stored
                .as_ref()
                .map(|s| s.labels.clone())
                .unwrap_or_default();
            let mut target = serde_json::to_value(&view).unwrap_or_default();
            if let Some(fields) = target.as_object_mut() {
                fields.insert("versions".into(), json!(stored.map_or(0, |s| s.versions)));
                fields.insert("production".into(), json!(labels.get("production")));
                let (served, changed) = production_state(&view.kind, &view.target);
                fields.insert("production_served".into(), json!(served));
                fields.insert("backend_changed".into(), json!(changed));
                fields.insert("labels".into(), json!(labels));
                fields.insert("experiment".into(), json!(arms));
            }
            target
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "targets": targets })))
}
