//! `rushgate-origin`: parse the command line, set up logging, run the command.

use clap::Parser as _;
use rushgate_origin::cli::{self, Cli};
use rushgate_origin::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(&cli.log);
    cli::run(cli).await
}
