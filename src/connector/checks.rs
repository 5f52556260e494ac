//! A connector's health checks: probing its replicas, reloading the lists that are due, keeping
//! the cached lists, deciding its health, and reporting status and lists to the registry.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::Value;

use super::backend::Backend;
use super::health::{self, Health};
use super::http::{Due, Lists};
use super::{Cached, Connector, ConnectorError};
use crate::catalog::{ConnectorCatalog, Item};
use crate::registry::ConnectorReport;

impl Connector {
    /// Which lists the next check loads: the tool list always (it is part of the check), the
    /// others when older than their cache lifetime.
    pub(super) fn due(&self) -> Due {
        let expired = |list: &Option<Cached<Vec<Item>>>, ttl_ms: u64| {
            self.reload_all
                || list
                    .as_ref()
                    .is_none_or(|c| c.at.elapsed() >= Duration::from_millis(ttl_ms))
        };
        Due {
            tools: true,
            resources: expired(&self.lists.resources, self.settings.cache.resources_ttl_ms),
            prompts: expired(&self.lists.prompts, self.settings.cache.prompts_ttl_ms),
        }
    }

    /// Probes every replica and reloads the due lists.
    pub(super) fn check(&mut self, ctx: &mut Context<Self>) {
        if self.checking || self.removed {
            return;
        }
        let Ok(replicas) = self.replicas() else {
            return;
        };
        if self.idle() && self.lists.tools.is_some() {
            return;
        }
        self.checking = true;
        let due = self.due();
        let timeout = Duration::from_millis(self.settings.health_check_timeout_ms);
        let connector = self.settings.name.clone();
        let work = async move {
            let probes = replicas.probe(timeout).await;
            let lists = if probes.iter().any(|p| matches!(p, Some(Ok(_)))) {
                let load = |backend: Backend| async move { backend.load_lists(due).await };
                replicas.call(true, |_| true, load).await
            } else {
                Err(ConnectorError::Unreachable {
                    connector,
                    reason: "no replica answers its health probe".into(),
                })
            };
            (probes, lists)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|(probes, lists), act, ctx| act.checked(&probes, lists, ctx)),
        );
    }

    pub(super) fn checked(
        &mut self,
        probes: &[Option<Result<Value, ConnectorError>>],
        lists: Result<Lists, ConnectorError>,
        ctx: &mut Context<Self>,
    ) {
        self.checking = false;
        let (health, reason) = health::assess(probes, lists.as_ref().map(|_| ()));
        let info_ttl = Duration::from_millis(self.settings.cache.info_ttl_ms);
        let info = probes.iter().flatten().find_map(|p| p.as_ref().ok());
        if let Some(info) = info {
            if self
                .lists
                .info
                .as_ref()
                .is_none_or(|c| c.at.elapsed() >= info_ttl)
            {
                self.lists.info = Some(Cached {
                    value: info.clone(),
                    at: Instant::now(),
                });
            }
        }
        let changed = match lists {
            Ok(lists) => {
                self.reload_all = false;
                self.store(lists)
            }
            Err(_) => false,
        };
        self.failed_checks = match health {
            Health::Unhealthy => self.failed_checks + 1,
            _ => 0,
        };
        self.status.set_health(health, reason);
        self.report(changed);
        let limit = self.settings.restart_after_failed_checks;
        if limit > 0 && self.failed_checks >= limit {
            log::warn!(
                "connector `{}` failed {limit} health checks in a row; restarting it",
                self.settings.name
            );
            self.failed_checks = 0;
            ctx.stop();
        }
    }

    /// Keeps the lists that were loaded; returns whether any differs from before.
    pub(super) fn store(&mut self, lists: Lists) -> bool {
        let now = Instant::now();
        let mut changed = false;
        for (new, old) in [
            (lists.tools, &mut self.lists.tools),
            (lists.resources, &mut self.lists.resources),
            (lists.resource_templates, &mut self.lists.resource_templates),
            (lists.prompts, &mut self.lists.prompts),
        ] {
            if let Some(value) = new {
                changed |= old.as_ref().is_none_or(|c| c.value != value);
                *old = Some(Cached { value, at: now });
            }
        }
        if changed {
            let tools = self.lists.tools.as_ref().map_or(&[][..], |c| &c.value[..]);
            self.retryable_tools = Rc::new(
                tools
                    .iter()
                    .filter(|t| is_safe_to_retry(t))
                    .filter_map(|t| Some(t.get("name")?.as_str()?.to_string()))
                    .collect(),
            );
        }
        changed
    }

    /// Tells the registry the status, and the lists when they changed.
    pub(super) fn report(&mut self, lists_changed: bool) {
        let Some(replicas) = &self.replicas else {
            return;
        };
        self.status.available = replicas.available();
        self.status.replicas = replicas.views();
        self.status.info = self.lists.info.as_ref().map(|c| c.value.clone());
        let lists = match (&self.lists.tools, lists_changed) {
            (Some(_), true) => Some(Arc::new(self.catalog())),
            _ => None,
        };
        let mut status = self.status.clone();
        self.redactor.status(&mut status);
        self.registry.do_send(ConnectorReport {
            connector: self.settings.name.clone(),
            status,
            lists,
        });
    }

    pub(super) fn catalog(&self) -> ConnectorCatalog {
        let list = |c: &Option<Cached<Vec<Item>>>| c.as_ref().map(|c| c.value.clone());
        ConnectorCatalog {
            tools: list(&self.lists.tools).unwrap_or_default(),
            resources: list(&self.lists.resources).unwrap_or_default(),
            resource_templates: list(&self.lists.resource_templates).unwrap_or_default(),
            prompts: list(&self.lists.prompts).unwrap_or_default(),
        }
    }
}

/// Whether a tool declares that running it twice does no harm.
fn is_safe_to_retry(tool: &Item) -> bool {
    let hint = |name: &str| {
        tool.get("annotations")
            .and_then(|a| a.get(name))
            .and_then(Value::as_bool)
            == Some(true)
    };
    hint("readOnlyHint") || hint("idempotentHint")
}
