//! The processes a benchmark starts: the release gateway in a settings directory of its own
//! (removed when it stops), the fast upstream, and what every part needs around them (free
//! ports, waiting for an endpoint, an MCP session, a process's RSS and CPU time, the open-file
//! limit). It measures nothing itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::load;

/// A child process ended when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `initialize` request every benchmark session starts with.
pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;

/// A running gateway.
pub struct Gateway {
    /// The process (field order: it stops before its directory goes).
    process: Guard,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    /// When it was spawned.
    pub spawned: Instant,
    /// Its settings directory and database.
    dir: PathBuf,
}

impl Gateway {
    /// Spawns `binary` with `config`/default.yaml, the given connectors.yaml text, a SQLite
    /// database of its own and `env` on top; does not wait for it.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        name: &str,
        connectors_yaml: &str,
        env: &[(&str, String)],
    ) -> Result<Gateway, String> {
        let dir = std::env::temp_dir().join(format!("mcpgate-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        std::fs::copy(config.join("default.yaml"), dir.join("default.yaml"))
            .map_err(|e| format!("cannot read {}: {e}", config.join("default.yaml").display()))?;
        std::fs::write(dir.join("connectors.yaml"), connectors_yaml)
            .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(&dir)
            .arg("serve")
            .env("MCPGATE__SERVER__PORT", port.to_string())
            .env(
                "MCPGATE__DATABASE__URL",
                format!("sqlite://{}", dir.join("bench.db").display()),
            )
            .env("MCPGATE__FEEDBACK__TOOL_NAME", "")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        die_with_parent(&mut command);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        Ok(Gateway {
            process: Guard(child),
            port,
            spawned,
            dir,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

impl Drop for Gateway {
    /// Stops it as an operator would (TERM, so that it ends and reaps its stdio connectors'
    /// processes, whose CPU time then counts as the benchmark's own); KILL after 10 s.
    fn drop(&mut self) {
        let pid = self.process.0.id() as i32;
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.process.0.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts the fast HTTP upstream with `rest_tools` REST tools and waits until it answers.
pub async fn upstream(exe: &Path, rest_tools: usize) -> Result<(Guard, u16), String> {
    let port = free_port()?;
    let mut command = Command::new(exe);
    command
        .args(["upstream", "--port", &port.to_string()])
        .args(["--rest-tools", &rest_tools.to_string()])
        .stdout(Stdio::null());
    die_with_parent(&mut command);
    let guard = Guard(
        command
            .spawn()
            .map_err(|e| format!("cannot start the upstream: {e}"))?,
    );
    wait_for(port, "/info", Duration::from_secs(10)).await?;
    Ok((guard, port))
}

/// Makes the process that `command` spawns get SIGKILL when this one dies, so that a bench
/// that is interrupted leaves no gateway, upstream or peer behind.
pub fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl, which
    // is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A port nothing listens on now.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits until GET `path` answers 200; how long that took.
pub async fn wait_for(port: u16, path: &str, deadline: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n").into_bytes();
    while start.elapsed() < deadline {
        if let Some((200, _)) = load::exchange(port, &request).await {
            return Ok(start.elapsed());
        }
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
    Err(format!(
        "nothing answered 200 on {path} at port {port} within {deadline:?}"
    ))
}

/// Opens a Streamable HTTP session on `/mcp`; its id.
pub async fn session(port: u16) -> Result<String, String> {
    let (status, head) = load::exchange(port, &load::request("/mcp", port, INITIALIZE, None))
        .await
        .ok_or(format!("nothing at port {port} answered initialize"))?;
    load::header_value(&head, "mcp-session-id").ok_or(format!(
        "no session id in the initialize answer (HTTP {status})"
    ))
}

/// Resident set size of a process, in KiB (0 when it cannot be read).
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, in parentheses: state is field 0, utime 11, stime 12.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Makes closing `stream` send a reset (SO_LINGER 0) instead of a FIN, so that thousands of
/// closed benchmark connections leave no TIME_WAIT behind.
pub fn reset_on_close(stream: &tokio::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `linger` (of the size given) and changes only this socket.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// CPU seconds the whole machine spent busy (all cores; /proc/stat: user, nice, system, irq,
/// softirq, steal).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum::<f64>();
    Some(busy / clock_ticks())
}

/// CPU seconds of this process and of every descendant it (or they) waited for: utime, stime,
/// cutime and cstime of /proc/self/stat.
pub fn own_tree_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let sum = (11..=14)
        .map(|i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum::<Option<f64>>()?;
    Some(sum / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Raises this process's open-file limit (inherited by what it spawns) to at least `wanted`,
/// or as far as the hard limit allows; the limit now in force.
pub fn raise_open_files(wanted: u64) -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    // Raising the hard limit needs privilege; when refused, go as far as the hard limit.
    let raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max.max(wanted),
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(wanted);
    }
    let capped = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok(limit.rlim_max)
}
