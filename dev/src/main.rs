//! `rushgate-dev up`: starts the stack, prints what runs where as one JSON line
//! on stdout, and stops everything on Ctrl-C or SIGTERM. `rushgate-dev
//! redis-cluster` does the same for a Redis Cluster alone (the tests' cluster).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rushgate_dev::edge::{self, EdgeSpec};
use rushgate_dev::redis::RedisCluster;
use rushgate_dev::stack::pair;
use rushgate_dev::{Options, Runtime, Stack};

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
        /// Seed the demo users and sale (`rushgate-origin demo`) and print
        /// them; implies `--webhook-receiver`.
        #[arg(long)]
        demo: bool,
    },
    /// Run the edge alone (the built worker under workerd, generated config)
    /// in front of origins that run elsewhere — the compose file's edge; print
    /// `{"edge": "<url>"}` once it answers; stop it on Ctrl-C or SIGTERM.
    Edge {
        /// The origins' base URLs, comma-separated.
        #[arg(
            long,
            env = "RUSHGATE_EDGE_ORIGINS",
            value_delimiter = ',',
            required = true
        )]
        origins: Vec<String>,
        #[arg(long, env = "RUSHGATE_SIGNING_KEY", hide_env_values = true)]
        signing_key: String,
        #[arg(long, default_value = "127.0.0.1")]
        listen: String,
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// More edge vars, NAME=VALUE (e.g. DEDUP_SHARDS=256).
        #[arg(long = "var", value_parser = pair)]
        vars: Vec<(String, String)>,
        /// The repository, or a copy with edge/build, static/ and dev/workerd.
        #[arg(long, env = "RUSHGATE_ROOT", default_value = ".")]
        root: PathBuf,
        /// Durable Object storage and logs.
        #[arg(long, default_value = ".rushgate/edge")]
        dir: PathBuf,
        /// Isolates the worker runs in.
        #[arg(long, default_value_t = 1)]
        isolates: usize,
        #[arg(long, value_enum, default_value = "spray")]
        spread: rushgate_dev::edge::Spread,
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
        Command::Up { mut options, demo } => {
            // The demo's deliveries go to a receiver that logs them.
            options.webhook_receiver |= demo;
            let stack = Stack::start(*options).await?;
            if demo {
                eprint!("{}", stack.origin_cli(&["demo"])?);
            }
            println!("{}", stack.describe());
            shutdown().await;
            drop(stack);
        }
        Command::Edge {
            origins,
            signing_key,
            listen,
            port,
            vars,
            root,
            dir,
            isolates,
            spread,
        } => {
            std::fs::create_dir_all(&dir)?;
            let root = root.canonicalize()?;
            let spec = EdgeSpec {
                root: &root,
                script: None,
                dir: &dir.canonicalize()?,
                listen: &listen,
                port,
                origins: &origins,
                signing_key: &signing_key,
                vars: &vars,
                isolates,
                spread,
            };
            let proc = edge::start(Runtime::Workerd, &spec).await?;
            println!(
                "{}",
                serde_json::json!({ "edge": format!("http://{listen}:{port}"), "pid": proc.pid() })
            );
            shutdown().await;
            drop(proc);
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
