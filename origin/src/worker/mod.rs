//! Background work: the order worker, the expiry sweeper, the ledger check, the
//! webhook delivery worker (`webhooks::deliver`), and the per-process
//! housekeeping of the HTTP side (sold-out flag re-checks, funnel flushes,
//! the webhook backlog's gauges). Each
//! exposes a step that tests call directly; here they run in loops until shutdown.

pub mod expiry;
pub mod orders;

use std::future::Future;
use std::time::Duration;

use clap::Args;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::AppState;
use crate::sale::ledger::Ledger;
use crate::webhooks::WebhookConfig;
use crate::webhooks::deliver::Deliverer;
use expiry::Sweeper;
use orders::OrderWorker;

#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Entries pending this long at another consumer are taken over (it died), ms.
    #[arg(long, env = "RUSHGATE_WORKER_CLAIM_IDLE_MS", default_value_t = 15_000)]
    pub claim_idle_ms: u64,
    /// Pause of the order worker when the streams are empty, ms.
    #[arg(long, env = "RUSHGATE_WORKER_POLL_MS", default_value_t = 20)]
    pub poll_ms: u64,
    /// Order-worker loops per process (consumers of the group): while one waits
    /// for PostgreSQL, another reads the next batch from Redis.
    #[arg(long, env = "RUSHGATE_ORDER_WORKERS", default_value_t = 2)]
    pub order_workers: usize,
    /// Interval of the expiry sweeper, ms.
    #[arg(long, env = "RUSHGATE_SWEEP_INTERVAL_MS", default_value_t = 1000)]
    pub sweep_interval_ms: u64,
    /// Interval of the ledger check (stock against orders, and the rebuild of
    /// buckets Redis lost), ms.
    #[arg(long, env = "RUSHGATE_LEDGER_INTERVAL_MS", default_value_t = 5000)]
    pub ledger_interval_ms: u64,
    /// Pause of the webhook delivery worker when nothing is due, ms.
    #[arg(long, env = "RUSHGATE_WEBHOOK_POLL_MS", default_value_t = 50)]
    pub webhook_poll_ms: u64,
    #[command(flatten)]
    pub webhooks: WebhookConfig,
}

/// A name for this process's stream consumer, unique across restarts.
pub fn consumer_name() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Runs `step` until `shutdown`; pauses `idle` after a step that found nothing and
/// backs off (up to 5 s) after failures. A step in progress always completes.
pub async fn run_loop<F, Fut>(
    name: &'static str,
    shutdown: CancellationToken,
    idle: Duration,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        let pause = match step().await {
            Ok(true) => {
                backoff = Duration::from_millis(100);
                Duration::ZERO
            }
            Ok(false) => {
                backoff = Duration::from_millis(100);
                idle
            }
            Err(e) => {
                tracing::warn!(task = name, error = %format!("{e:#}"), retry_in = ?backoff, "step failed");
                let pause = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                pause
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    tracing::debug!(task = name, "stopped");
}

/// How often stopped consumers are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How long a consumer with nothing pending must have been silent to count as
/// stopped; running workers read every `poll_ms`.
const STOPPED_CONSUMER_IDLE: Duration = Duration::from_secs(15 * 60);

/// Background work of a `serve` or `worker` process.
pub struct Workers {
    pub orders: Vec<OrderWorker>,
    pub sweeper: Sweeper,
    pub ledger: Ledger,
    pub deliverer: Deliverer,
}

/// Starts the order workers, the expiry sweeper, the ledger check, the
/// pruner of stopped consumers and the webhook delivery worker.
pub fn spawn_workers(
    tracker: &TaskTracker,
    workers: Workers,
    config: &WorkerConfig,
    shutdown: &CancellationToken,
) {
    let Workers {
        orders: workers,
        sweeper,
        ledger,
        deliverer,
    } = workers;
    let pruner = deliverer.clone();
    tracker.spawn(run_loop(
        "webhook-prune",
        shutdown.clone(),
        PRUNE_EVERY,
        move || {
            let pruner = pruner.clone();
            async move { Ok(pruner.prune().await?) }
        },
    ));
    let stop = shutdown.clone();
    let idle = Duration::from_millis(config.webhook_poll_ms);
    tracker.spawn(async move {
        let d = deliverer.clone();
        run_loop("webhooks", stop, idle, move || {
            let d = d.clone();
            async move { Ok(d.run_once().await? > 0) }
        })
        .await;
        // Deliveries under way finish (or their leases send them again later).
        let _ = tokio::time::timeout(Duration::from_secs(10), deliverer.settle()).await;
    });
    let poll = Duration::from_millis(config.poll_ms);
    if let Some(pruner) = workers.first().cloned() {
        tracker.spawn(run_loop(
            "consumer-pruner",
            shutdown.clone(),
            PRUNE_EVERY,
            move || {
                let pruner = pruner.clone();
                async move {
                    pruner.prune_consumers(STOPPED_CONSUMER_IDLE).await?;
                    Ok(false)
                }
            },
        ));
    }
    for worker in workers {
        tracing::info!(consumer = worker.consumer(), "order worker running");
        tracker.spawn(run_loop(
            "order-worker",
            shutdown.clone(),
            poll,
            move || {
                let worker = worker.clone();
                async move { Ok(worker.run_once().await?.read > 0) }
            },
        ));
    }
    tracker.spawn(run_loop(
        "ledger",
        shutdown.clone(),
        Duration::from_millis(config.ledger_interval_ms),
        move || {
            let ledger = ledger.clone();
            async move {
                ledger.run_once(OffsetDateTime::now_utc()).await?;
                Ok(false)
            }
        },
    ));
    let every = Duration::from_millis(config.sweep_interval_ms);
    tracker.spawn(run_loop(
        "expiry-sweeper",
        shutdown.clone(),
        every,
        move || {
            let sweeper = sweeper.clone();
            async move {
                let outcome = sweeper.run_once(OffsetDateTime::now_utc()).await?;
                Ok(outcome.expired > 0 || outcome.released + outcome.already_released >= 500)
            }
        },
    ));
}

/// Starts the HTTP side's housekeeping: sold-out flag re-checks, revoked
/// sessions (and their relay to the edge), and funnel flushes.
pub fn spawn_housekeeping(tracker: &TaskTracker, state: AppState, shutdown: &CancellationToken) {
    if let Some(edge_url) = state.config.edge_url.clone() {
        match crate::auth::relay::Relay::new(&edge_url) {
            Ok(relay) => {
                let s = state.clone();
                tracker.spawn(run_loop(
                    "revocation-relay",
                    shutdown.clone(),
                    Duration::from_millis(500),
                    move || {
                        let (s, relay) = (s.clone(), relay.clone());
                        async move { relay.run_once(&s).await }
                    },
                ));
            }
            Err(e) => tracing::error!(error = %e, "the revocation relay cannot start"),
        }
    }
    let s = state.clone();
    tracker.spawn(run_loop(
        "revocation-sync",
        shutdown.clone(),
        Duration::from_secs(1),
        move || {
            let s = s.clone();
            async move {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                s.revocations.sync(&s.redis, now).await?;
                Ok(false)
            }
        },
    ));
    let s = state.clone();
    tracker.spawn(run_loop(
        "sold-out-recheck",
        shutdown.clone(),
        Duration::from_millis(500),
        move || {
            let s = s.clone();
            async move {
                s.flags.recheck(&s.redis).await?;
                Ok(false)
            }
        },
    ));
    let s = state.clone();
    tracker.spawn(run_loop(
        "webhook-backlog",
        shutdown.clone(),
        Duration::from_secs(2),
        move || {
            let s = s.clone();
            async move {
                let (pending, dead, oldest) = crate::webhooks::repo::backlog(&s.db).await?;
                metrics::gauge!("rushgate_webhook_pending").set(pending as f64);
                metrics::gauge!("rushgate_webhook_dead").set(dead as f64);
                metrics::gauge!("rushgate_webhook_oldest_pending_seconds")
                    .set(oldest.unwrap_or(0.0));
                Ok(false)
            }
        },
    ));
    let s = state.clone();
    tracker.spawn(run_loop(
        "metrics-upkeep",
        shutdown.clone(),
        Duration::from_secs(5),
        move || {
            // Drains histogram samples into their summaries, bounding memory.
            s.metrics.run_upkeep();
            std::future::ready(Ok(false))
        },
    ));
    let s = state;
    let stop = shutdown.clone();
    tracker.spawn(async move {
        run_loop("funnel-flush", stop, Duration::from_secs(1), || {
            let s = s.clone();
            async move {
                s.funnel.flush(&s.redis).await?;
                Ok(false)
            }
        })
        .await;
        // Last flush on the way out, so no count is lost.
        if let Err(e) = s.funnel.flush(&s.redis).await {
            tracing::warn!(error = %e, "final funnel flush failed");
        }
    });
}
