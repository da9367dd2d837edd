//! Command line: `serve`, `worker`, `migrate`, `user add`, `stock rebuild`,
//! `stock adjust`, `openapi`, `demo`. Each command reads its
//! configuration from flags or `RUSHGATE_*` variables and runs to completion.

use std::io::BufRead as _;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use rushgate_core::Role;
use tokio::net::TcpListener;

use crate::app::{self, AppState};
use crate::auth::password::Hashers;
use crate::config::{Config, Environment, StoreConfig};
use crate::demo;
use crate::sale::Replicas;
use crate::store::{db, redis::Redis};
use crate::telemetry::LogConfig;
use crate::users::{self, Password, Username};
use crate::webhooks::deliver::Deliverer;
use crate::worker::expiry::Sweeper;
use crate::worker::orders::OrderWorker;
use crate::worker::{self, WorkerConfig};
use tokio_util::task::TaskTracker;

#[derive(Debug, Parser)]
#[command(name = "rushgate-origin", version, about = "rushgate origin service")]
pub struct Cli {
    #[command(flatten)]
    pub log: LogConfig,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API; also runs the order worker and the expiry sweeper
    /// unless `--no-workers`.
    Serve {
        #[command(flatten)]
        config: Config,
        /// Leave the order worker and the sweeper to `worker` processes.
        #[arg(long, env = "RUSHGATE_NO_WORKERS")]
        no_workers: bool,
    },
    /// Run the order worker and the expiry sweeper only.
    Worker {
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        worker: WorkerConfig,
    },
    /// Create the database if needed and apply migrations.
    Migrate {
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the live stock in Redis.
    #[command(subcommand)]
    Stock(StockCommand),
    /// Print the OpenAPI description of the HTTP API (as served at
    /// `/api/openapi.json`; docs/openapi.json is this output).
    Openapi,
    /// Seed demo users and a demo sale (refused in production).
    Demo {
        #[command(flatten)]
        store: StoreConfig,
        #[arg(long, env = "RUSHGATE_ENV", value_enum, default_value = "development")]
        environment: Environment,
        /// Seconds from now until the demo sale opens.
        #[arg(long, default_value_t = 90)]
        opens_in_s: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from the first line of stdin.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "customer")]
        role: Role,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Give a user another role; their sessions end.
    SetRole {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        store: AccountStore,
    },
    /// Disable a user: they cannot log in and their sessions end.
    Disable {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        store: AccountStore,
    },
    /// Enable a disabled user again.
    Enable {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        store: AccountStore,
    },
    /// Delete a user: their sessions end, their name and password go, their
    /// orders stay.
    Delete {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        store: AccountStore,
    },
}

/// Where accounts live, and how long their sessions may last (so that ending
/// them is remembered that long).
#[derive(Debug, clap::Args)]
pub struct AccountStore {
    #[command(flatten)]
    store: StoreConfig,
    /// Lifetime of a login session, in seconds (as the origin's).
    #[arg(long, env = "RUSHGATE_SESSION_TTL_S", default_value_t = 12 * 3600)]
    session_ttl_s: u32,
}

#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// After Redis lost its data: write an approved event's stock and per-user
    /// counts back from PostgreSQL. Buckets whose stock is still in Redis are left
    /// alone, so it is safe to run twice.
    Rebuild {
        #[arg(long)]
        event: i64,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Add units to a tier's live stock, or take them out (negative), as the
    /// ledger check in the admin stats advises. A take stops at zero.
    Adjust {
        #[arg(long)]
        event: i64,
        #[arg(long)]
        tier: i64,
        #[arg(long, allow_negative_numbers = true)]
        units: i64,
        #[command(flatten)]
        store: StoreConfig,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, no_workers } => serve(config, no_workers).await,
        Command::Worker { store, worker } => work(&store, &worker).await,
        Command::Migrate { store } => {
            let pool = db::connect(&store.database_url, 2).await?;
            db::migrate(&pool).await?;
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::User(UserCommand::Add {
            username,
            role,
            store,
        }) => add_user(&store, &username, role).await,
        Command::User(UserCommand::SetRole {
            username,
            role,
            store,
        }) => {
            let change = users::Change {
                role: Some(role),
                ..users::Change::default()
            };
            change_user(&store, &username, change).await
        }
        Command::User(UserCommand::Disable { username, store }) => {
            let change = users::Change {
                disabled: Some(true),
                ..users::Change::default()
            };
            change_user(&store, &username, change).await
        }
        Command::User(UserCommand::Enable { username, store }) => {
            let change = users::Change {
                disabled: Some(false),
                ..users::Change::default()
            };
            change_user(&store, &username, change).await
        }
        Command::User(UserCommand::Delete { username, store }) => {
            let change = users::Change {
                delete: true,
                ..users::Change::default()
            };
            change_user(&store, &username, change).await
        }
        Command::Openapi => {
            println!("{}", app::openapi_document().to_pretty_json()?);
            Ok(())
        }
        Command::Stock(StockCommand::Rebuild { event, store }) => {
            rebuild_stock(&store, event).await
        }
        Command::Stock(StockCommand::Adjust {
            event,
            tier,
            units,
            store,
        }) => adjust_stock(&store, event, tier, units).await,
        Command::Demo {
            store,
            environment,
            opens_in_s,
        } => {
            anyhow::ensure!(
                environment != Environment::Production,
                "the demo refuses to run in production"
            );
            let pool = db::connect(&store.database_url, 2).await?;
            db::migrate(&pool).await?;
            let redis = store.redis().await?;
            let replicas = store.replicas().await?;
            demo::seed(&pool, &redis, &replicas, opens_in_s).await
        }
    }
}

async fn serve(config: Config, no_workers: bool) -> anyhow::Result<()> {
    let (keys, generated) = config.app.keyring()?;
    if let Some(key) = generated {
        tracing::warn!(
            "RUSHGATE_SIGNING_KEY is unset: using a fresh development key for this run: {key} \
             (give the edge the same value as SIGNING_KEY)"
        );
    }
    let store = &config.store;
    let pool = db::connect(&store.database_url, store.db_max_connections).await?;
    db::migrate(&pool).await?;
    let redis = store.redis().await?;
    let replicas = store.replicas().await?;
    let mut app_config = config.app;
    app_config.webhook_allow_private = config.worker.webhooks.webhook_allow_private;
    if app_config.webhook_allow_private && app_config.environment == Environment::Production {
        tracing::warn!(
            "RUSHGATE_WEBHOOK_ALLOW_PRIVATE is on in production: webhooks may reach this network"
        );
    }
    let state = AppState::new(
        app_config,
        keys,
        pool.clone(),
        redis.clone(),
        replicas.clone(),
    );
    // Sessions revoked while this process was down are refused from the start.
    state
        .revocations
        .sync(&redis, time::OffsetDateTime::now_utc().unix_timestamp())
        .await
        .context("reading revoked sessions")?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let shutdown = app::shutdown_on_signal();
    let tracker = TaskTracker::new();
    worker::spawn_housekeeping(&tracker, state.clone(), &shutdown);
    if !no_workers {
        start_workers(
            &tracker,
            pool,
            redis,
            replicas,
            Some(state.flags.clone()),
            &config.worker,
            &shutdown,
        )
        .await?;
    }
    tracing::info!(addr = %listener.local_addr()?, "rushgate origin listening");
    app::serve(listener, state, shutdown.clone()).await?;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn work(store: &StoreConfig, config: &WorkerConfig) -> anyhow::Result<()> {
    let pool = db::connect(&store.database_url, store.db_max_connections).await?;
    db::migrate(&pool).await?;
    let redis = store.redis().await?;
    let replicas = store.replicas().await?;
    let shutdown = app::shutdown_on_signal();
    let tracker = TaskTracker::new();
    start_workers(&tracker, pool, redis, replicas, None, config, &shutdown).await?;
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn start_workers(
    tracker: &TaskTracker,
    pool: sqlx::PgPool,
    redis: Redis,
    replicas: Replicas,
    flags: Option<crate::sale::soldout::SoldOutFlags>,
    config: &WorkerConfig,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let orders = (0..config.order_workers.max(1))
        .map(|_| {
            OrderWorker::new(
                pool.clone(),
                redis.clone(),
                replicas.clone(),
                worker::consumer_name(),
                std::time::Duration::from_millis(config.claim_idle_ms),
            )
        })
        .collect();
    let ledger = crate::sale::ledger::Ledger::new(pool.clone(), redis.clone(), replicas.clone());
    crate::webhooks::sync_deployment(&pool, &config.webhooks).await?;
    let deliverer = Deliverer::new(pool.clone(), &config.webhooks)?;
    let sweeper = Sweeper::new(pool, redis, replicas, flags);
    let workers = worker::Workers {
        orders,
        sweeper,
        ledger,
        deliverer,
    };
    worker::spawn_workers(tracker, workers, config, shutdown);
    Ok(())
}

async fn rebuild_stock(store: &StoreConfig, event_id: i64) -> anyhow::Result<()> {
    let pool = db::connect(&store.database_url, 2).await?;
    let redis = store.redis().await?;
    let replicas = store.replicas().await?;
    let event = crate::events::repo::get(&pool, event_id)
        .await?
        .with_context(|| format!("no event {event_id}"))?;
    let done = crate::sale::rebuild::rebuild(&pool, &redis, &replicas, &event, None).await?;
    println!(
        "event {event_id}: {} bucket(s) rebuilt, {} still had their stock",
        done.rebuilt, done.present
    );
    if done.rebuilt > 0 && done.present > 0 {
        println!(
            "  the lost buckets came back empty (the others kept selling, so what they held \
             is not known from PostgreSQL); the ledger check in the admin stats names the \
             units to return with `rushgate-origin stock adjust`"
        );
    } else if done.rebuilt > 0 {
        for tier in &event.tiers {
            let left = done.written.get(&tier.id).copied().unwrap_or(0);
            println!("  tier {} ({}): {left} left", tier.id, tier.name);
        }
    }
    Ok(())
}

async fn adjust_stock(
    store: &StoreConfig,
    event_id: i64,
    tier_id: i64,
    units: i64,
) -> anyhow::Result<()> {
    let pool = db::connect(&store.database_url, 2).await?;
    let redis = store.redis().await?;
    let replicas = store.replicas().await?;
    let event = crate::events::repo::get(&pool, event_id)
        .await?
        .with_context(|| format!("no event {event_id}"))?;
    anyhow::ensure!(
        event.status == rushgate_core::api::EventStatus::Approved,
        "event {event_id} is not approved: it has no live stock"
    );
    anyhow::ensure!(
        event.tier(tier_id).is_some(),
        "event {event_id} has no tier {tier_id}"
    );
    let done = crate::sale::stock::adjust(&redis, &replicas, &event, tier_id, units).await?;
    println!(
        "event {event_id} tier {tier_id}: {:+} unit(s) (asked {units:+})",
        done.units
    );
    if done.missing > 0 {
        println!(
            "  {} bucket(s) have no stock key and were left alone: run \
             `rushgate-origin stock rebuild --event {event_id}` first",
            done.missing
        );
    }
    Ok(())
}

async fn add_user(store: &StoreConfig, username: &str, role: Role) -> anyhow::Result<()> {
    let username = Username::parse(username).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = Password::parse(line.trim_end_matches(['\r', '\n']))
        .map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let pool = db::connect(&store.database_url, 2).await?;
    db::migrate(&pool).await?;
    let id = users::create(&pool, &Hashers::new(1), &username, password, role)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("added {role} {} with id {id}", username.as_str());
    Ok(())
}

/// Changes a user and ends their sessions (recorded in Redis, where every
/// origin process and the relay to the edge read it).
async fn change_user(
    accounts: &AccountStore,
    username: &str,
    change: users::Change,
) -> anyhow::Result<()> {
    let (store, ttl_s) = (&accounts.store, accounts.session_ttl_s);
    let pool = db::connect(&store.database_url, 2).await?;
    db::migrate(&pool).await?;
    let user = users::find_by_username(&pool, username)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("no user {username}"))?;
    let (after, moved) = users::change(&pool, user.id, change)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("no user {username}"))?;
    if moved {
        let redis = store.redis().await?;
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let entry = crate::auth::revoked::Revoked::Account {
            user_id: after.id,
            generation: after.generation(),
            until: now_ms / 1000 + i64::from(ttl_s),
        };
        crate::auth::revoked::append(&redis, entry, now_ms, ttl_s).await?;
    }
    let state = if after.deleted {
        "deleted".to_owned()
    } else if after.disabled {
        format!("{} (disabled)", after.role())
    } else {
        after.role().to_string()
    };
    println!(
        "user {username} (id {}): {state}; sessions ended: {moved}",
        after.id
    );
    Ok(())
}
