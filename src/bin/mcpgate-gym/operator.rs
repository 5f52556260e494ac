//! The operator of the regression scenario: deploys, by hand, a description that harms a busy
//! tool's backend, and tells the trainer to watch it, as `POST /api/v1/prompts/{id}/deploy`
//! does.

use std::sync::Arc;

use actix::prelude::*;
use actix_web::web;

use mcpgate::store::{prompts, Pool};
use mcpgate::trainer::served::ServedVersions;
use mcpgate::trainer::{Trainer, WatchDeploy};

use crate::client::Client;
use crate::data::{Data, Question};
use crate::measure::success;

/// Of every other tool's original description, the one that does tool `t`'s group the most
/// harm on the validation questions (the operator's mistake), with the harm done.
pub fn worst_text(
    client: &Client,
    data: &Data,
    texts: &[String],
    t: usize,
    omit: f64,
) -> (f64, String) {
    let group = data.tools[t].group;
    let questions: Vec<Question> = data
        .validation
        .iter()
        .filter(|q| q.group == group)
        .cloned()
        .collect();
    let mut trial = texts.to_vec();
    let base = success(client, data, &questions, &trial, omit);
    let mut worst = (f64::INFINITY, String::new());
    for (o, other) in data.tools.iter().enumerate() {
        if o == t {
            continue;
        }
        trial[t] = other.oracle.clone();
        let score = success(client, data, &questions, &trial, omit);
        if score < worst.0 {
            worst = (score, other.oracle.clone());
        }
    }
    (base - worst.0, worst.1)
}

/// Deploys `text` on tool `t` by hand, as an operator would through the API, and tells the
/// trainer to watch it; returns the version.
pub async fn deploy_bad(
    data: &Data,
    pool: &Pool,
    served: &Arc<ServedVersions>,
    trainer: &Addr<Trainer>,
    t: usize,
    original: &str,
    text: String,
) -> Result<i64, String> {
    let (name, original) = (data.tools[t].name.clone(), original.to_string());
    let schema = data.tools[t].schema.to_string();
    let (p, s) = (pool.clone(), served.clone());
    let (version, previous) = web::block(move || {
        let deployed = {
            let mut conn = p.get().map_err(|e| e.to_string())?;
            let conn = &mut conn;
            let err = |e: diesel::result::Error| e.to_string();
            let previous =
                prompts::ensure_baseline(conn, "tool", &name, &original, Some(&schema), 0)
                    .map_err(err)?;
            let new = prompts::NewVersion {
                text: &text,
                approach: "manual",
                reason: "operator",
                ..Default::default()
            };
            let version = prompts::add_version(conn, "tool", &name, new, 0).map_err(err)?;
            let reason = prompts::BY_API;
            prompts::move_label(conn, "tool", &name, "production", version, reason, 0)
                .map_err(err)?;
            (version, previous)
        };
        s.reload(&p)?;
        Ok::<_, String>(deployed)
    })
    .await
    .map_err(|e| e.to_string())??;
    trainer.do_send(WatchDeploy {
        kind: "tool".into(),
        target: data.tools[t].name.clone(),
        version,
        previous,
    });
    Ok(version)
}
