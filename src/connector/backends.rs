//! How a connector reaches its backend: one client per replica (a REST service, an MCP server
//! over HTTP) or, for `stdio`, the one process, each telling the connector what its server
//! sends; and ending an idle process.

use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::backend::{Backend, McpBackend};
use super::http::HttpBackend;
use super::{Connector, ConnectorKind, Upstream};
use crate::upstream::{McpClient, StdioSpec, Target};

impl Connector {
    /// One client per replica (URL) or, for `stdio`, the one process.
    pub(super) fn backends(&self, ctx: &Context<Self>) -> Vec<(String, Backend)> {
        let settings = &self.settings;
        let mcp = |target: Target| {
            let me = ctx.address().downgrade();
            let events = Box::new(move |event| {
                if let Some(addr) = me.upgrade() {
                    addr.do_send(Upstream(event));
                }
            });
            let headers = self
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        secrecy::ExposeSecret::expose_secret(v).to_string(),
                    )
                })
                .collect();
            Backend::Mcp(McpBackend {
                client: McpClient::new(settings, target, headers, events),
                last_used: Rc::new(std::cell::Cell::new(Instant::now())),
            })
        };
        match settings.kind {
            ConnectorKind::Http => settings
                .urls()
                .into_iter()
                .map(|url| {
                    let backend = Backend::Http(HttpBackend::new(settings, &url, &self.headers));
                    (url, backend)
                })
                .collect(),
            ConnectorKind::Mcp => settings
                .urls()
                .into_iter()
                .map(|url| {
                    let target = Target::Http {
                        url: url.clone(),
                        mode: settings.transport,
                    };
                    (url, mcp(target))
                })
                .collect(),
            ConnectorKind::Stdio => {
                let env = crate::upstream::resolve_env(&settings.env).unwrap_or_default();
                let spec = StdioSpec {
                    command: settings.command.clone().unwrap_or_default(),
                    args: settings.args.clone(),
                    env,
                    cwd: settings.cwd.clone(),
                    redactor: self.redactor.clone(),
                };
                let label = format!("stdio:{}", spec.command);
                vec![(label, mcp(Target::Stdio(spec)))]
            }
        }
    }

    /// Ends an idle `stdio` process (none with a request under way); true when the backend
    /// sleeps (and is not probed).
    pub(super) fn idle(&self) -> bool {
        let limit = self.settings.idle_timeout_ms;
        if limit == 0 || !self.subscriptions.is_empty() {
            return false;
        }
        let Some(replicas) = &self.replicas else {
            return false;
        };
        replicas.backends().all(|backend| match backend {
            Backend::Mcp(mcp)
                if mcp.last_used.get().elapsed() > Duration::from_millis(limit)
                    && !mcp.client.busy() =>
            {
                mcp.client.disconnect();
                true
            }
            _ => false,
        })
    }
}
