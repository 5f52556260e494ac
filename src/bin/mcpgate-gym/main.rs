//! `mcpgate-gym`: the prompt gym, an offline benchmark of the whole training loop. For each
//! scenario and seed it runs the real `Trainer` against a simulated world (BFCL v4 tools whose
//! descriptions start degraded, a simulated client, simulated users and a simulated optimizer
//! LLM over the real HTTP path) and writes a JSON and a Markdown report. Deterministic for a
//! given seed.

mod client;
mod data;
mod measure;
mod operator;
mod optimizer;
mod report;
mod scenario;
mod world;

use std::path::PathBuf;

use clap::Parser;

/// The prompt gym.
#[derive(Parser)]
struct Cli {
    /// Seeds to run each scenario with.
    #[arg(long = "seed", default_values_t = [1, 2, 3, 4, 5, 6, 7, 8])]
    seeds: Vec<u64>,
    /// Scenarios to run (all when left out).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Feedback events per run (each scenario's own when left out).
    #[arg(long)]
    events: Option<usize>,
    /// Where `gym-report.json` and `GYM.md` go.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
}

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match actix_rt::System::new().block_on(gym(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mcpgate-gym: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn gym(cli: Cli) -> Result<(), String> {
    let known = scenario::all();
    let mut chosen = Vec::new();
    for name in &cli.scenarios {
        let found = known.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = known.iter().map(|s| s.name).collect();
            format!(
                "no scenario is named `{name}`; there are {}",
                names.join(", ")
            )
        })?;
        chosen.push(found.clone());
    }
    if chosen.is_empty() {
        chosen = known;
    }
    if let Some(events) = cli.events {
        for s in &mut chosen {
            s.events = events;
            s.regression_at = s.regression_at.map(|_| events / 2);
        }
    }
    let mut all = Vec::new();
    for scenario in &chosen {
        for &seed in &cli.seeds {
            let data = data::load(seed)?;
            let client = client::Client::new(&data.corpus);
            let run = world::run(&data, &client, scenario, seed).await?;
            let figures = report::figures(&client, &data, scenario, seed, &run);
            eprintln!(
                "{} seed {}: {:.1}% → {:.1}% (oracle {:.1}%), {} events, {} LLM calls",
                scenario.name,
                seed,
                figures.before * 100.0,
                figures.after * 100.0,
                figures.oracle * 100.0,
                figures.events,
                figures.llm_calls
            );
            all.push(figures);
        }
    }
    let command = format!(
        "mcpgate-gym {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    std::fs::create_dir_all(&cli.out).map_err(|e| format!("{}: {e}", cli.out.display()))?;
    let json =
        serde_json::to_string_pretty(&serde_json::json!({"command": command.trim(), "runs": all}))
            .map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        let path = cli.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("gym-report.json", &json)?;
    write("GYM.md", &report::markdown(command.trim(), &chosen, &all))?;
    Ok(())
}
