//! `rushgate-bench`: parse the command line, run the command.

use clap::Parser as _;

mod cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run(cli::Cli::parse()).await
}
