//! `rushgate-dev up`: starts the stack, prints what runs where as one JSON line
//! on stdout, and stops everything on Ctrl-C or SIGTERM. `rushgate-dev
//! redis-cluster` does the same for a Redis Cluster alone (the tests' cluster).

use clap::{Parser, Subcommand};
use rushgate_dev::redis::RedisCluster;
use rushgate_dev::{Options, Stack};

#[derive(Debug, Parser)]
#[command(name = "rushgate-dev", about = "Run the whole rushgate stack locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the stack; print `{"edge", "origins", "redis_url", ...}` on one line
    /// of stdout once everything answers; stop it all on Ctrl-C or SIGTERM.
    Up {
        #[command(flatten)]
        options: Box<Options>,
        /// Seed the demo users and sale (`rushgate-origin demo`) and print them.
        #[arg(long)]
        demo: bool,
    },
    /// Start a Redis Cluster of `masters` masters with a replica each on free
    /// ports; print `{"redis_url": "<seed>,<seed>,..."}` once it is ready; stop
    /// it on Ctrl-C or SIGTERM.
    RedisCluster {
        #[arg(long, default_value_t = 3)]
        masters: usize,
        /// Keep the nodes' files here (default: a temporary directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up { options, demo } => {
            let stack = Stack::start(*options).await?;
            if demo {
                eprint!("{}", stack.origin_cli(&["demo"])?);
            }
            println!("{}", stack.describe());
            shutdown().await;
            drop(stack);
        }
        Command::RedisCluster { masters, dir } => {
            let (dir, temporary) = match dir {
                Some(dir) => (dir, false),
                None => (
                    std::env::temp_dir().join(format!(
                        "rushgate-cluster-{}",
                        uuid::Uuid::new_v4().simple()
                    )),
                    true,
                ),
            };
            let cluster = RedisCluster::start(&dir, masters, false).await?;
            println!("{}", serde_json::json!({ "redis_url": cluster.urls() }));
            shutdown().await;
            drop(cluster);
            if temporary {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
