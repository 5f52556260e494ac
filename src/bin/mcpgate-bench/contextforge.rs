//! B7's IBM ContextForge run, following its PyPI quick start: fresh secrets in the environment,
//! `mcpgateway --host 127.0.0.1 --port P` with the admin API on and a SQLite database of its
//! own, a bearer token from `python -m mcpgateway.utils.create_jwt_token`, the HTTP upstream
//! registered with `POST /gateways`, a virtual server holding its echo tool (`POST /servers`),
//! and the calls on that server's `/servers/{id}/mcp`. Two settings differ from its defaults:
//! loopback upstreams allowed and the rate limiter off (see `run`). Any step that fails ends
//! the run with what it answered.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::load::{self, Measured};
use crate::peers::{self, log_tail};
use crate::{gateway, Plan};

/// The administrator's e-mail, the quick start's.
const ADMIN: &str = "admin@example.com";

/// Starts ContextForge in front of the HTTP upstream on `upstream_port` and measures it.
pub async fn run(
    plan: &Plan,
    binary: &Path,
    upstream_port: u16,
    dir: &Path,
) -> Result<Vec<(usize, Measured)>, String> {
    let work = dir.join("contextforge");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let secret = || {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    };
    let jwt_secret = secret();
    let env: Vec<(&str, String)> = vec![
        ("JWT_SECRET_KEY", jwt_secret.clone()),
        ("AUTH_ENCRYPTION_SECRET", secret()),
        ("PLATFORM_ADMIN_PASSWORD", secret()),
        ("BASIC_AUTH_PASSWORD", secret()),
        ("PLATFORM_ADMIN_EMAIL", ADMIN.into()),
        ("MCPGATEWAY_ADMIN_API_ENABLED", "true".into()),
        ("MCPGATEWAY_UI_ENABLED", "false".into()),
        (
            "DATABASE_URL",
            format!("sqlite:///{}", work.join("mcp.db").display()),
        ),
        ("LOG_LEVEL", "ERROR".into()),
        // Its SSRF guard refuses loopback upstreams by default, and its rate limiter allows
        // 100 MCP requests a minute: measured with either, it would measure the refusal.
        ("SSRF_ALLOW_LOCALHOST", "true".into()),
        ("RATE_LIMITING_ENABLED", "false".into()),
    ];
    let port = gateway::free_port()?;
    let mut command = Command::new(binary);
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(&work)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let log = work.join("contextforge.log");
    let _process = peers::spawn(command, &log)?;
    let context = |e: String| format!("{e} (log: {})", log_tail(&log));
    gateway::wait_for(port, "/health", Duration::from_secs(180))
        .await
        .map_err(context)?;
    let token = token(binary, &jwt_secret, &env, &work)?;
    let gateway = json!({"name": "bench", "url": format!("http://127.0.0.1:{upstream_port}/mcp"),
        "transport": "STREAMABLEHTTP"});
    let registered = admin(port, &token, "POST", "/gateways", Some(&gateway))
        .await
        .map_err(context)?;
    let tools = admin(port, &token, "GET", "/tools", None)
        .await
        .map_err(context)?;
    let list = tools.as_array().or_else(|| tools["items"].as_array());
    let tool_id = list
        .and_then(|t| {
            t.iter()
                .find(|t| t["name"].as_str().is_some_and(|n| n.ends_with("echo")))
                .and_then(|t| t["id"].as_str())
        })
        .ok_or(format!(
            "no echo tool after registering the upstream ({registered}): {tools}"
        ))?
        .to_string();
    let server = json!({"server": {"name": "bench", "description": "mcpgate-bench B7",
        "associated_tools": [tool_id]}});
    let created = admin(port, &token, "POST", "/servers", Some(&server))
        .await
        .map_err(context)?;
    let server_id = created["id"]
        .as_str()
        .ok_or(format!("no server id in {created}"))?;
    let path = format!("/servers/{server_id}/mcp");
    let session = peers::open_session(port, &path, Some(&token), Duration::from_secs(30))
        .await
        .map_err(context)?;
    Ok(peers::measure(plan, "ContextForge", port, &path, &session).await)
}

/// A bearer token as the quick start makes one (with the gateway's environment, which the
/// script's settings check needs).
fn token(
    binary: &Path,
    secret: &str,
    env: &[(&str, String)],
    work: &Path,
) -> Result<String, String> {
    let python = binary.with_file_name("python");
    let output = Command::new(&python)
        .args([
            "-m",
            "mcpgateway.utils.create_jwt_token",
            "--username",
            ADMIN,
        ])
        .args(["--exp", "10080", "--secret", secret])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(work)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || token.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut lines = stderr.lines().rev();
        let last = lines
            .clone()
            .find(|l| l.contains("Error"))
            .or_else(|| lines.find(|l| !l.trim().is_empty()));
        return Err(format!(
            "create_jwt_token failed: {}",
            last.unwrap_or("no output")
        ));
    }
    Ok(token)
}

/// One admin API request; its JSON answer, or the status and body when not 2xx.
async fn admin(
    port: u16,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\naccept: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, answer) = load::exchange_body(port, request.as_bytes())
        .await
        .ok_or(format!("no answer to {method} {path}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{method} {path} answered HTTP {status}: {answer}"));
    }
    serde_json::from_str(&answer).map_err(|e| format!("{method} {path}: {e}: {answer}"))
}
