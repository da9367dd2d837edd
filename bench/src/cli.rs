//! Command line of the benchmark driver.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

use rushgate_bench::{cold_start, crowd, failover, provision, replay, trivial};

#[derive(Debug, Parser)]
#[command(name = "rushgate-bench", version, about = "rushgate benchmark driver")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provision bench users and an open sale, and write signed `/buy` requests
    /// (one per line: path, TAB, Authorization header) for a load generator.
    PrepareBuy(provision::PrepareBuy),
    /// Simulate a crowd of buyers (and bots) against the edge or the origin and
    /// check the invariants afterwards; exits non-zero on any violation.
    Crowd(crowd::CrowdArgs),
    /// Kill the Redis master with the most stock mid-sale (a private cluster
    /// from the launcher) and report how long selling paused.
    Failover(failover::FailoverArgs),
    /// Time fresh workerd processes from exec to their first answer with the
    /// Rust edge, the JavaScript twin and an empty worker (the edge's cold start).
    ColdStart(cold_start::ColdStartArgs),
    /// Replay prepared `/buy` requests at a fixed rate (open loop) and report
    /// latency percentiles measured from when each request was due.
    Replay(replay::ReplayArgs),
    /// A bare axum server answering `GET /` with a small JSON body: the baseline
    /// for request-handling cost.
    TrivialServer {
        #[arg(long, default_value = "127.0.0.1:8099")]
        bind: SocketAddr,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PrepareBuy(args) => provision::prepare_buy(args).await,
        Command::TrivialServer { bind } => trivial::serve(bind).await,
        Command::Replay(args) => replay::run(&args).await,
        Command::ColdStart(args) => {
            let report = cold_start::run(&args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Failover(args) => {
            let report = failover::run(&args).await?;
            println!("{}", serde_json::to_string(&report)?);
            anyhow::ensure!(report.violations.is_empty(), "{:?}", report.violations);
            Ok(())
        }
        Command::Crowd(args) => {
            let report = crowd::run(&args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crowd::render(&report));
            }
            if !report.violations.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
