//! B3: `tools/list` through a gateway with many `http` connectors of many tools each — cold
//! (spawn to `/healthz`, then to `/readyz` once every connector's first load is done) and from
//! the cache (concurrency 1). The section of the report is `report::b3`.

use std::path::Path;
use std::time::Duration;

use crate::gateway::{self, Gateway};
use crate::{load, report};

/// Measures B3 with `connectors` × `per_connector` tools.
pub async fn run(
    exe: &Path,
    gateway_binary: &Path,
    config: &Path,
    connectors: usize,
    per_connector: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<report::B3, String> {
    let (_upstream, upstream_port) = gateway::upstream(exe, per_connector).await?;
    let mut yaml = String::from("connectors:\n");
    for i in 0..connectors {
        yaml.push_str(&format!(
            "  - name: c{i:03}\n    kind: http\n    url: http://127.0.0.1:{upstream_port}\n"
        ));
    }
    let page_size = (connectors * per_connector + 10).to_string();
    let gateway = Gateway::spawn(
        gateway_binary,
        config,
        "b3",
        &yaml,
        &[("MCPGATE__MCP__PAGE_SIZE", page_size)],
    )?;
    let port = gateway.port;
    let alive = gateway::wait_for(port, "/healthz", Duration::from_secs(30)).await?;
    let alive = alive.max(gateway.spawned.elapsed());
    let ready = gateway::wait_for(port, "/readyz", Duration::from_secs(30)).await? + alive;
    let session = gateway::session(port).await?;
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;
    let request = load::request("/mcp", port, list, Some(&session));
    let cached = load::run(port, request, 1, warmup, duration).await;
    Ok(report::B3 {
        connectors,
        tools: connectors * per_connector,
        alive,
        ready,
        cached,
    })
}
