//! `compare`: what a change to the gateway costs. Two gateway binaries (a baseline and a
//! candidate) take turns in front of one upstream, each started afresh in every round, and each
//! is measured on the calls B1, B2 and B6 make through it. The order alternates between rounds,
//! so that a drift of the machine's speed falls on both. The report gives, per call and
//! concurrency, both medians over the rounds and the candidate's throughput over the
//! baseline's, the median and the range of that ratio taken round by round.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::gateway::{self, Gateway};
use crate::load::{self, Measured};
use crate::report::{self, Others};
use crate::Plan;

/// The gateway calls measured, each as (what, tool).
const CALLS: [(&str, &str); 3] = [
    ("B1 `mcp` connector", "up_echo"),
    ("B2 `http` connector", "rest_echo"),
    ("B6 `stdio` connector", "st_echo"),
];

/// The two builds, and the store both use.
pub struct Builds {
    /// What the candidate is compared with.
    pub baseline: PathBuf,
    /// The build being measured.
    pub candidate: PathBuf,
    /// `database.url` for both (one database, shared); `None`: each gateway its own SQLite file.
    pub database: Option<String>,
}

/// One build's figures: `[call][level][round]`.
type Figures = Vec<Vec<Vec<Measured>>>;

/// Runs `rounds` rounds and gives the Markdown report.
pub async fn run(
    plan: &Plan,
    exe: &Path,
    config: &Path,
    builds: &Builds,
    rounds: usize,
) -> Result<String, String> {
    let start = report::Readings::now();
    let (upstream, upstream_port) = gateway::upstream(exe, 1).await?;
    let connectors = crate::connectors(exe, upstream_port);
    let empty = || vec![vec![Vec::new(); plan.levels.len()]; CALLS.len()];
    let mut figures: [Figures; 2] = [empty(), empty()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let binary = [&builds.baseline, &builds.candidate][side];
            let name = ["compare-baseline", "compare-candidate"][side];
            let database = builds.database.as_deref();
            let measured = one_build(plan, binary, config, name, &connectors, database).await?;
            for (call, levels) in measured.into_iter().enumerate() {
                for (level, m) in levels.into_iter().enumerate() {
                    eprintln!(
                        "round {} {name} {} c={}: {m:?}",
                        round + 1,
                        CALLS[call].0,
                        plan.levels[level]
                    );
                    figures[side][call][level].push(m);
                }
            }
        }
    }
    drop(upstream);
    let others = Others::since(&start);
    Ok(markdown(plan, builds, rounds, &figures, &others))
}

/// Starts `binary`, measures every call at every level, and stops it: `[call][level]`.
async fn one_build(
    plan: &Plan,
    binary: &Path,
    config: &Path,
    name: &str,
    connectors: &str,
    database: Option<&str>,
) -> Result<Vec<Vec<Measured>>, String> {
    let env: Vec<_> = database
        .map(|url| ("MCPGATE__DATABASE__URL", url.to_string()))
        .into_iter()
        .collect();
    let gateway = Gateway::spawn(binary, config, name, connectors, &env)?;
    let port = gateway.port;
    gateway::wait_for(port, "/readyz", Duration::from_secs(30)).await?;
    let session = gateway::session(port).await?;
    let mut measured = Vec::new();
    for (_, tool) in CALLS {
        let request = load::request("/mcp", port, &crate::call(tool), Some(&session));
        let mut levels = Vec::new();
        for &concurrency in &plan.levels {
            levels.push(
                load::run(
                    port,
                    request.clone(),
                    concurrency,
                    plan.warmup,
                    plan.duration,
                )
                .await,
            );
        }
        measured.push(levels);
    }
    Ok(measured)
}

/// The median of `values` (0 when there are none).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The report.
fn markdown(
    plan: &Plan,
    builds: &Builds,
    rounds: usize,
    figures: &[Figures; 2],
    others: &Others,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# mcpgate: two builds compared\n");
    if plan.smoke {
        let _ = writeln!(
            text,
            "**Smoke run: short durations, figures not meaningful.**\n"
        );
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    // The URL may hold a password: the report names the kind of store only.
    let store = match &builds.database {
        Some(_) => "the database given by `--database`, one for both",
        None => "a SQLite file of its own for each gateway",
    };
    let _ = writeln!(
        text,
        "Measured on this machine in one run of:\n\n```sh\n{}\n```\n\n\
         - baseline: `{}` ({} bytes)\n- candidate: `{}` ({} bytes)\n- store: {store}\n\n\
         {rounds} rounds; in each, both gateways were started afresh in turn (the order \
         alternates between rounds) in front of the same upstream, and each was measured for \
         {:?} after a warm-up of {:?} per call and concurrency, with the load generator of \
         `mcpgate-bench run`. \"candidate / baseline\" is the ratio of requests/s: the ratio of \
         the two medians, then the median, lowest and highest of the ratios within a round.\n\n{}",
        report::command_line(),
        builds.baseline.display(),
        size(&builds.baseline),
        builds.candidate.display(),
        size(&builds.candidate),
        plan.duration,
        plan.warmup,
        others.sentence()
    );
    let _ = writeln!(
        text,
        "| call | concurrency | baseline requests/s | candidate requests/s | candidate / baseline | per round: median (lowest–highest) | baseline p50 ms | candidate p50 ms | errors |"
    );
    let _ = writeln!(
        text,
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"
    );
    for (call, (what, _)) in CALLS.iter().enumerate() {
        for (level, concurrency) in plan.levels.iter().enumerate() {
            let [base, cand] = [&figures[0][call][level], &figures[1][call][level]];
            let rps = |ms: &[Measured]| median(ms.iter().map(|m| m.rps).collect());
            let p50 = |ms: &[Measured]| median(ms.iter().map(|m| m.p50_ms).collect());
            let ratios: Vec<f64> = base
                .iter()
                .zip(cand)
                .filter(|(b, _)| b.rps > 0.0)
                .map(|(b, c)| c.rps / b.rps)
                .collect();
            let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let highest = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let per_round = match ratios.is_empty() {
                true => "—".to_string(),
                false => format!("{:.3} ({lowest:.3}–{highest:.3})", median(ratios)),
            };
            let overall = match rps(base) > 0.0 {
                true => format!("{:.3}", rps(cand) / rps(base)),
                false => "—".to_string(),
            };
            let errors: u64 = base.iter().chain(cand).map(|m| m.errors).sum();
            let _ = writeln!(
                text,
                "| {what} | {concurrency} | {:.0} | {:.0} | {overall} | {per_round} | {:.3} | {:.3} | {errors} |",
                rps(base),
                rps(cand),
                p50(base),
                p50(cand),
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
