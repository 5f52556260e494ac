//! B7's section of the report and its lines of the targets table, from the fronts that
//! `peers` measured: each peer's figures beside mcpgate's in front of the same upstream with
//! the same requests, and beside mcpgate's B1 and B6 figures of the same run.

use std::fmt::Write;

use crate::peers::{Front, Upstream};
use crate::report::Row;

/// B7's section of the report; `rows` are the B1/B2/B6 rows of the same run.
pub fn section(fronts: &[Front], rows: &[Row]) -> String {
    let mut text = String::from(
        "\n## B7: peers in front of the same upstreams (B1 only)\n\n\
         Every front gets the same requests from the same generator: an MCP session opened as \
         any Streamable HTTP client does (`initialize` with protocol 2025-06-18, \
         `notifications/initialized`, `tools/list`), then `tools/call` of the upstream's echo \
         tool with `accept: application/json, text/event-stream`, as the MCP SDKs send it (the \
         Python SDK refuses a POST that does not accept both), so answers may come as event \
         streams. mcpgate is measured again here, in front of both upstreams, with these same \
         requests. The B1 and B6 tables above send `accept: application/json` only, which \
         mcpgate answers with plain JSON. Logging is turned down for every front (errors only; \
         warnings for mcp-proxy, none for supergateway). \
         mcp-proxy and supergateway can only put a stdio server on HTTP, so they run \
         `mcpgate-bench upstream --stdio`; ContextForge federates the Streamable HTTP upstream \
         (`mcpgate-bench upstream`), with its SSRF guard told to allow loopback and its rate \
         limiter (100 MCP requests a minute by default) off.\n\n\
         How each was started (PORT a free port, UP the upstream's):\n\n\
         - mcp-proxy: `mcp-proxy --host 127.0.0.1 --port PORT --log-level WARNING \
         --named-server bench 'mcpgate-bench upstream --stdio'`, calls on \
         `/servers/bench/mcp`.\n\
         - supergateway: `node dist/index.js --stdio 'mcpgate-bench upstream --stdio' \
         --outputTransport streamableHttp --port PORT --logLevel none`, once with `--stateful` \
         (one child process per session) and once without (its default: a child process per \
         request), calls on `/mcp`.\n\
         - ContextForge: `mcpgateway --host 127.0.0.1 --port PORT` with fresh `JWT_SECRET_KEY`, \
         `AUTH_ENCRYPTION_SECRET`, admin and basic-auth passwords, \
         `MCPGATEWAY_ADMIN_API_ENABLED=true`, a SQLite `DATABASE_URL`, `LOG_LEVEL=ERROR`, \
         `SSRF_ALLOW_LOCALHOST=true`, `RATE_LIMITING_ENABLED=false`; a token from \
         `python -m mcpgateway.utils.create_jwt_token --username admin@example.com --exp 10080 \
         --secret …`; `POST /gateways` with `http://127.0.0.1:UP/mcp` (`STREAMABLEHTTP`), \
         `POST /servers` with its echo tool; calls on `/servers/ID/mcp` with the token.\n\
         - mcpgate: a fresh gateway with an `mcp` connector to the upstream and a `stdio` \
         connector running `mcpgate-bench upstream --stdio`; calls on `/mcp`.\n\n\
         Ratios are mcpgate's requests/s over the front's at the same concurrency: (a) mcpgate \
         in front of the same upstream with the same requests (this table); (b) mcpgate's B6 \
         row (`stdio` connector, JSON requests); (c) mcpgate's B1 row (`mcp` connector, JSON \
         requests).\n\n\
         | front | upstream | concurrency | requests/s | p50 ms | p99 ms | errors | generator CPU | (a) | (b) B6 | (c) B1 |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let main_row = |bench: &str, concurrency: usize| main_row(rows, bench, concurrency);
    let ratio = |ours: Option<f64>, theirs: f64| match ours {
        Some(o) if theirs > 0.0 => format!("{:.2}×", o / theirs),
        _ => "—".into(),
    };
    let mut missing = Vec::new();
    for front in fronts {
        let measured = match &front.outcome {
            Ok(measured) => measured,
            Err(why) => {
                missing.push(format!("- {}: {why}", front.name));
                continue;
            }
        };
        for (concurrency, m) in measured {
            let (a, b, c) = match front.ours {
                true => ("—".to_string(), "—".to_string(), "—".to_string()),
                false => (
                    ratio(same(fronts, front.upstream, *concurrency), m.rps),
                    match front.upstream {
                        Upstream::Stdio => ratio(main_row("B6", *concurrency), m.rps),
                        Upstream::Http => "—".to_string(),
                    },
                    ratio(main_row("B1", *concurrency), m.rps),
                ),
            };
            let upstream = match front.upstream {
                Upstream::Stdio => "stdio",
                Upstream::Http => "Streamable HTTP",
            };
            let _ = writeln!(
                text,
                "| {} | {upstream} | {concurrency} | {:.0} | {:.3} | {:.3} | {} | {:.2} | {a} | {b} | {c} |",
                front.name, m.rps, m.p50_ms, m.p99_ms, m.errors, m.generator_cpu
            );
        }
    }
    if !missing.is_empty() {
        let _ = writeln!(text, "\nNot measured:\n\n{}", missing.join("\n"));
    }
    text
}

/// mcpgate's requests/s in front of `upstream` at `concurrency` in B7.
fn same(fronts: &[Front], upstream: Upstream, concurrency: usize) -> Option<f64> {
    fronts
        .iter()
        .filter(|f| f.ours && f.upstream == upstream)
        .filter_map(|f| f.outcome.as_ref().ok())
        .flatten()
        .find(|(c, _)| *c == concurrency)
        .map(|(_, m)| m.rps)
}

/// mcpgate's requests/s at a concurrency, from one of its measurements.
type Ours<'a> = dyn Fn(usize) -> Option<f64> + 'a;

/// mcpgate's requests/s in the `bench` table (B1 or B6) at `concurrency`.
fn main_row(rows: &[Row], bench: &str, concurrency: usize) -> Option<f64> {
    rows.iter()
        .find(|r| r.bench == bench && r.concurrency == concurrency && !r.what.contains("directly"))
        .map(|r| r.measured.rps)
}

/// The B7 lines of the targets table, two per measured peer: against mcpgate in front of the
/// same upstream with the same requests (ratio (a)), and with JSON requests (the B6 row for a
/// stdio peer, the B1 row for an HTTP one), at every concurrency.
pub fn targets(fronts: &[Front], rows: &[Row]) -> Vec<crate::report::Target> {
    let mut lines = Vec::new();
    for front in fronts.iter().filter(|f| !f.ours) {
        let Ok(measured) = &front.outcome else {
            continue;
        };
        let json_bench = match front.upstream {
            Upstream::Stdio => "B6",
            Upstream::Http => "B1",
        };
        let against: [(String, &Ours); 2] = [
            (
                "ratio (a): same upstream, same requests".to_string(),
                &|c| same(fronts, front.upstream, c),
            ),
            (
                format!("against mcpgate's {json_bench} row: same upstream, JSON requests"),
                &|c| main_row(rows, json_bench, c),
            ),
        ];
        for (how, ours) in against {
            let mut figures = Vec::new();
            let mut all_met = !measured.is_empty();
            for (concurrency, m) in measured {
                match ours(*concurrency) {
                    Some(o) if m.rps > 0.0 => {
                        let r = o / m.rps;
                        figures.push(format!("{r:.2}× at {concurrency}"));
                        all_met &= r >= 10.0;
                    }
                    Some(_) => figures.push(format!("the peer answered nothing at {concurrency}")),
                    None => {
                        figures.push(format!("mcpgate not measured at {concurrency}"));
                        all_met = false;
                    }
                }
            }
            lines.push((
                format!(
                    "B7: ≥ 10× the throughput of {} at every concurrency ({how})",
                    front.name
                ),
                figures.join(", "),
                Some(all_met),
            ));
        }
    }
    lines
}
