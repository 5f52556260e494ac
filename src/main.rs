/// jemalloc in place of glibc's allocator: 1.199-1.319 times the calls per second at
/// concurrency 16 and 64 (docs/PERFORMANCE-profile.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::Parser;
use mcpgate::cli::{Cli, Command};
use mcpgate::configuration::Settings;
use mcpgate::startup::Application;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let settings = match Settings::load(&cli.config) {
        Ok(settings) => settings,
        Err(err) => {
            log::error!("{err}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Stdio => mcpgate::transport::stdio::serve(settings).await,
        Command::Migrate => mcpgate::store::migrate(&mcpgate::store::pool(&settings.database))
            .map(|n| log::info!("applied {n} migrations"))
            .map_err(Into::into),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let served = Application::build(settings)
        .await?
        .run_until_stopped()
        .await;
    mcpgate::upstream::end_all_processes();
    served?;
    Ok(())
}
