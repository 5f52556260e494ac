//! Validation of loaded settings: what their types alone cannot say (ranges, URLs, names,
//! tokens, and the connectors' and virtual servers' own checks), each problem named by its key.

use super::{Settings, SettingsError};

impl Settings {
    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key: &str, problem: &str| {
            Err(SettingsError::Invalid {
                key: key.to_string(),
                problem: problem.to_string(),
            })
        };
        if self.server.host.parse::<std::net::IpAddr>().is_err() && self.server.host != "localhost"
        {
            return invalid("server.host", "must be an IP address or `localhost`");
        }
        if self.server.max_body_bytes < 1024 {
            return invalid("server.max_body_bytes", "must be at least 1024");
        }
        if self.server.keep_alive_ms == 0 {
            return invalid("server.keep_alive_ms", "must be above 0");
        }
        if self.server.max_sessions == 0 {
            return invalid("server.max_sessions", "must be above 0");
        }
        for proxy in &self.server.trusted_proxies {
            if crate::transport::clients::proxy(proxy).is_none() {
                return invalid(
                    "server.trusted_proxies",
                    "each must be an IP address or a CIDR block such as 10.0.0.0/8",
                );
            }
        }
        // Requests are forwarded to its own paths (`/mcp`, …): a path, query or fragment of
        // its own would send them elsewhere.
        let advertised = &self.server.advertise_url;
        let usable = url::Url::parse(advertised).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
        });
        if !advertised.is_empty() && !usable {
            return invalid(
                "server.advertise_url",
                "must be an http:// or https:// URL of a host and port, with no path, query \
                 or fragment, or empty",
            );
        }
        // actix-server's own limit, which it enforces with a panic.
        if self.server.workers > 512 {
            return invalid("server.workers", "must be at most 512 (0: one per core)");
        }
        for (key, tokens) in [
            ("server.auth.bearer_tokens", &self.server.auth.bearer_tokens),
            ("admin.tokens", &self.admin.tokens),
        ] {
            if let Some(problem) = tokens_problem(tokens) {
                return invalid(key, &problem);
            }
        }
        if !(0.0..=1.0).contains(&self.trainer.canary_share) {
            return invalid("trainer.canary_share", "must be between 0 and 1");
        }
        let llm = &self.trainer.llm;
        let llm_url = url::Url::parse(&llm.base_url)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
        if !llm.base_url.is_empty() && !llm_url {
            return invalid(
                "trainer.llm.base_url",
                "must be an http:// or https:// URL, or empty (no LLM)",
            );
        }
        if llm.timeout_ms == 0 {
            return invalid("trainer.llm.timeout_ms", "must be above 0");
        }
        let tool = &self.feedback.tool_name;
        if tool.len() > crate::catalog::MAX_NAME_LEN
            || !tool.chars().all(crate::catalog::is_name_char)
        {
            return invalid(
                "feedback.tool_name",
                "must be 1-64 characters of [A-Za-z0-9_./-], or empty (no tool)",
            );
        }
        if !(self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://")
            || self.database.url.starts_with("sqlite://")
            || !self.database.url.contains("://"))
        {
            return invalid(
                "database.url",
                "must start with postgres:// or sqlite://, or be a file path",
            );
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be above 0");
        }
        if self.recorder.buffer_size == 0 || self.recorder.batch_size == 0 {
            return invalid("recorder", "buffer_size and batch_size must be above 0");
        }
        // The ops API's call metrics look back 24 h; a starting trainer reads its window.
        let day = 24 * 60 * 60 * 1000;
        if self.recorder.keep_calls_ms != 0 && self.recorder.keep_calls_ms < day {
            return invalid(
                "recorder.keep_calls_ms",
                "must be 0 (for ever) or at least 86400000 (24 h, the longest window of the call metrics)",
            );
        }
        let feedback_keeps = [
            ("recorder.keep_signals_ms", self.recorder.keep_signals_ms),
            ("recorder.keep_ratings_ms", self.recorder.keep_ratings_ms),
        ];
        for (key, keep) in feedback_keeps {
            if keep != 0 && keep < self.feedback.window_ms {
                return invalid(key, "must be 0 (for ever) or at least feedback.window_ms");
            }
        }
        if self.recorder.prune_interval_ms == 0 {
            return invalid("recorder.prune_interval_ms", "must be above 0");
        }
        if self.mcp.page_size == 0 {
            return invalid("mcp.page_size", "must be above 0");
        }
        if self.mcp.name_separator.is_empty()
            || !self
                .mcp
                .name_separator
                .chars()
                .all(crate::catalog::is_name_char)
        {
            return invalid(
                "mcp.name_separator",
                "must be one or more of [A-Za-z0-9_./-]",
            );
        }
        if self.mcp.request_timeout_ms == 0 {
            return invalid("mcp.request_timeout_ms", "must be above 0");
        }
        let mut names = std::collections::HashSet::new();
        for (i, server) in self.servers.iter().enumerate() {
            if let Some((field, problem)) = server.problems().into_iter().next() {
                return invalid(&format!("servers[{i}].{field}"), &problem);
            }
            if !names.insert(server.name.as_str()) {
                return invalid(&format!("servers[{i}].name"), "is used twice");
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, connector) in self.connectors.iter().enumerate() {
            connector
                .validate()
                .map_err(|(field, problem)| SettingsError::Invalid {
                    key: format!("connectors[{i}].{field}"),
                    problem,
                })?;
            if !seen.insert(connector.name.as_str()) {
                return invalid(&format!("connectors[{i}].name"), "is used twice");
            }
        }
        Ok(())
    }
}

/// What is wrong with a list of bearer tokens, each a literal or `${VAR}`: an empty token (a
/// list ending in a comma, a variable set to nothing) would match a request with none. The
/// problem names the entry, never its value.
fn tokens_problem(tokens: &[String]) -> Option<String> {
    use secrecy::ExposeSecret;
    tokens.iter().enumerate().find_map(|(i, template)| {
        let entry = i + 1;
        match crate::secrets::resolve(template) {
            Err(missing) => Some(format!("entry {entry}: {missing}")),
            Ok(token) if token.expose_secret().is_empty() => Some(format!(
                "entry {entry} is empty, which would let in requests without a token"
            )),
            Ok(token) if !token.expose_secret().bytes().all(|b| b.is_ascii_graphic()) => Some(
                format!("entry {entry} holds spaces or characters a header cannot carry"),
            ),
            Ok(_) => None,
        }
    })
}
