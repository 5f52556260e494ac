//! The command line: which command to run and where the settings live.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mcpgate: many MCP backends behind one MCP server.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Directory holding default.yaml, $MCPGATE_ENV.yaml and connectors.yaml.
    #[arg(
        long,
        global = true,
        default_value = "config",
        env = "MCPGATE_CONFIG_DIR"
    )]
    pub config: PathBuf,
    /// What to do; `serve` when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Apply the pending database migrations and exit.
    Migrate,
    /// Serve one MCP client on stdin/stdout (for claude_desktop_config.json); logs on stderr.
    Stdio,
}
