//! The `stdio` transport: an MCP server process that the gateway spawns, speaking
//! newline-delimited JSON-RPC on its stdin and stdout.
//!
//! Each process runs in its own process group. Ending a connection ends the whole group (TERM,
//! then KILL after a grace period), and a task waits for the child so no zombie is left; stderr
//! lines go to the log, with the secrets of the connector's settings masked. [`end_all`] ends
//! every group still running, for shutdown. Lines are read with a bound: a stdout line longer
//! than `max_response_bytes` is dropped, and so is a stderr line longer than
//! [`MAX_STDERR_LINE`], so that a process cannot grow the gateway's memory by writing without a
//! line end.

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::{McpClient, Sent};
use crate::lines::{read_line, Line};

/// How long a process has to exit after TERM before it gets KILL.
const GRACE: Duration = Duration::from_secs(2);

/// Longest stderr line logged; the rest of it is cut.
const MAX_LOG_LINE: usize = 2048;

/// Longest stderr line read; a longer one is dropped, with a note in the log.
const MAX_STDERR_LINE: usize = 64 * 1024;

/// Most bytes of messages waiting for a process to read them; a message past it is refused.
const MAX_UNREAD_INPUT: usize = 64 * 1024 * 1024;

/// Process groups that are running, for [`end_all`].
static GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// What to spawn.
#[derive(Clone)]
pub struct StdioSpec {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment, values resolved (may be secrets).
    pub env: Vec<(String, secrecy::SecretString)>,
    /// Its working directory.
    pub cwd: Option<String>,
    /// Masks the secrets of its settings in the stderr lines logged.
    pub(crate) redactor: Arc<crate::connector::redact::Redactor>,
}

/// A running process.
pub struct StdioConnection {
    lines: mpsc::UnboundedSender<String>,
    /// Bytes in `lines` not yet written to the process.
    unread: Arc<AtomicUsize>,
    group: i32,
}

impl StdioConnection {
    /// Spawns the process and starts reading its output into `client`.
    pub fn spawn(
        client: &McpClient,
        spec: &StdioSpec,
        generation: u64,
    ) -> Result<StdioConnection, String> {
        use secrecy::ExposeSecret;
        let mut command = tokio::process::Command::new(&spec.command);
        command
            .args(&spec.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (name, value) in &spec.env {
            command.env(name, value.expose_secret());
        }
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", spec.command))?;
        let group = child
            .id()
            .map(|id| id as i32)
            .ok_or("the process exited at once")?;
        remember(group);
        let connector = client.connector().to_string();
        log::info!(
            "connector `{connector}`: started `{}` (pid {group})",
            spec.command
        );

        let (lines, mut queue) = mpsc::unbounded_channel::<String>();
        let unread = Arc::new(AtomicUsize::new(0));
        let written = unread.clone();
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        actix_rt::spawn(async move {
            while let Some(line) = queue.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                written.fetch_sub(line.len(), Ordering::Relaxed);
            }
        });

        let stdout = child.stdout.take().ok_or("no stdout")?;
        let reader = client.clone();
        let max = client.max_message_bytes();
        actix_rt::spawn(async move {
            let mut stdout = BufReader::new(stdout);
            while let Ok(Some(line)) = read_line(&mut stdout, max).await {
                let Line::Text(line) = line else {
                    log::warn!(
                        "connector `{}` wrote a line longer than {max} bytes \
                         (max_response_bytes) on stdout; it is dropped",
                        reader.connector()
                    );
                    continue;
                };
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&line) {
                    Ok(message) => reader.on_message(message, None),
                    Err(_) => log::warn!(
                        "connector `{}` wrote a line that is not JSON on stdout",
                        reader.connector()
                    ),
                }
            }
            reader.connection_lost(generation, "the process closed its stdout");
        });

        if let Some(stderr) = child.stderr.take() {
            let name = connector.clone();
            let redactor = spec.redactor.clone();
            actix_rt::spawn(async move {
                let mut stderr = BufReader::new(stderr);
                while let Ok(Some(line)) = read_line(&mut stderr, MAX_STDERR_LINE).await {
                    match line {
                        Line::Text(mut line) => {
                            redactor.text(&mut line);
                            line.truncate(floor_char_boundary(&line, MAX_LOG_LINE));
                            log::info!("connector `{name}` stderr: {line}");
                        }
                        Line::TooLong => log::info!(
                            "connector `{name}` stderr: (a line longer than {MAX_STDERR_LINE} bytes, not shown)"
                        ),
                    }
                }
            });
        }

        // The process's end is the connection's end, even while a process it started still
        // holds its stdout open.
        let watcher = client.clone();
        actix_rt::spawn(async move {
            match child.wait().await {
                Ok(status) => {
                    log::info!("connector `{connector}`: process {group} exited ({status})")
                }
                Err(e) => log::warn!("connector `{connector}`: waiting for process {group}: {e}"),
            }
            watcher.connection_lost(generation, "the process exited");
        });
        Ok(StdioConnection {
            lines,
            unread,
            group,
        })
    }

    /// Writes one message as a line; refuses it while the process has more than
    /// [`MAX_UNREAD_INPUT`] bytes of earlier ones still to read.
    pub async fn send(&self, message: &Value) -> Sent {
        let line = format!("{message}\n");
        let unread = self.unread.load(Ordering::Relaxed);
        if unread + line.len() > MAX_UNREAD_INPUT {
            return Sent::Refused(format!(
                "the process has not read {unread} bytes of what it was sent; \
                 it is sent nothing more until it reads"
            ));
        }
        self.unread.fetch_add(line.len(), Ordering::Relaxed);
        match self.lines.send(line) {
            Ok(()) => Sent::Ok,
            Err(_) => Sent::Failed("the process's stdin is closed".into()),
        }
    }

    /// Ends the process group: TERM now, KILL after the grace period to whatever of it is
    /// still there, the process itself gone or not (a process it started may ignore TERM).
    /// Until then the group is ended at shutdown too ([`end_all`]).
    pub fn close(&self) {
        end_group(self.group);
        let group = self.group;
        actix_rt::spawn(async move {
            actix_rt::time::sleep(GRACE).await;
            // SAFETY: killpg only sends a signal to a process group we created. While any
            // process of it lives, its id names no other group; once none does, the call
            // finds no group (ESRCH) unless the pid range wrapped within the grace period.
            unsafe { libc::killpg(group, libc::SIGKILL) };
            forget(group);
        });
    }
}

impl Drop for StdioConnection {
    fn drop(&mut self) {
        self.close();
    }
}

/// Ends every process group still running (TERM, then KILL for those that stay).
pub fn end_all() {
    let groups: Vec<i32> = GROUPS
        .lock()
        .ok()
        .and_then(|g| g.as_ref().map(|g| g.iter().copied().collect()))
        .unwrap_or_default();
    for group in &groups {
        end_group(*group);
    }
    if !groups.is_empty() {
        std::thread::sleep(Duration::from_millis(200));
        for group in groups {
            // SAFETY: as in `close`.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
    }
}

fn end_group(group: i32) {
    // SAFETY: killpg only sends a signal to a process group we created.
    unsafe { libc::killpg(group, libc::SIGTERM) };
}

fn remember(group: i32) {
    if let Ok(mut groups) = GROUPS.lock() {
        groups.get_or_insert_with(HashSet::new).insert(group);
    }
}

fn forget(group: i32) {
    if let Ok(mut groups) = GROUPS.lock() {
        if let Some(groups) = groups.as_mut() {
            groups.remove(&group);
        }
    }
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// `env` templates resolved; the error names the variable, never a value.
pub fn resolve_env(
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, secrecy::SecretString)>, String> {
    env.iter()
        .map(|(name, template)| {
            crate::secrets::resolve(template)
                .map(|value| (name.clone(), value))
                .map_err(|e| format!("env `{name}`: {e}"))
        })
        .collect()
}
