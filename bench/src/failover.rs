//! How long a sale stops selling when a Redis master dies: starts a stack on
//! a private Redis Cluster (launcher), sends an open-loop crowd at a sale with
//! more stock than it can buy, `kill -9`s the master whose buckets hold the
//! most units once the sale is under way, restarts that node when its replica
//! has taken over (as an orchestrator would), and reports the longest stretch
//! without a new order around the kill, from the orders' reservation times.
//! Run it with one bucket and with several: spread over the masters, the others
//! keep selling.

use std::time::Duration;

use clap::Args;
use rushgate_dev::{Options, Stack};
use serde::Serialize;
use time::OffsetDateTime;

use crate::crowd::{self, CrowdArgs, Mode};

#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// Stock buckets of the sale.
    #[arg(long, default_value_t = 6)]
    pub buckets: u32,
    /// Masters of the cluster (each with a replica).
    #[arg(long, default_value_t = 3)]
    pub masters: usize,
    /// Buyers arriving per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of arrivals.
    #[arg(long, default_value_t = 20)]
    pub seconds: u32,
    /// Seconds into the sale at which the master is killed.
    #[arg(long, default_value_t = 6)]
    pub kill_after_s: u64,
    /// Use release builds of the binaries.
    #[arg(long)]
    pub release: bool,
    /// Keep the stack's logs and state here (default: removed afterwards).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub buckets: u32,
    /// Buckets on the killed master.
    pub buckets_on_victim: usize,
    /// From the kill until the victim's slots had a new master, s.
    pub failover_s: f64,
    /// The longest stretch without a new order, from 1 s before the kill to 10 s
    /// after the failover, s.
    pub longest_pause_s: f64,
    /// Orders made between the kill and the end of the failover.
    pub orders_during_failover: i64,
    /// From the kill until the first half second with at least half the
    /// orders of the second before the kill, s.
    pub back_to_half_rate_s: Option<f64>,
    /// Orders per half second, from 1 s before the kill.
    pub per_half_second: Vec<usize>,
    pub violations: Vec<String>,
}

pub async fn run(args: &FailoverArgs) -> anyhow::Result<FailoverReport> {
    let mut stack = Stack::start(Options {
        redis_cluster: Some(args.masters),
        release: args.release,
        dir: args.dir.clone(),
        ..Options::default()
    })
    .await?;
    let users = (args.rate * f64::from(args.seconds)).round() as u32;
    // Straight at the first origin (the stack has no edge).
    let crowd_args = CrowdArgs {
        users,
        stock: i64::from(users) * 2,
        dedup_window_s: 0,
        opens_in_s: 2,
        mode: Mode::Open,
        concurrency: 0,
        rate: args.rate,
        pay_probability: 0.0,
        bot_period_ms: 20,
        max_seconds: 60,
        buckets: Some(args.buckets),
        ..CrowdArgs::for_stack(&stack)
    };
    let prepared = crowd::prepare(&crowd_args).await?;
    let (event, tier, opens_at) = (
        prepared.sale.event_id,
        prepared.sale.tier_id,
        prepared.sale.opens_at,
    );
    let running = tokio::spawn({
        let crowd_args = crowd_args.clone();
        async move { crowd::run_prepared(&crowd_args, prepared).await }
    });
    let wait = (opens_at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    tokio::time::sleep(wait.unsigned_abs() + Duration::from_secs(args.kill_after_s)).await;

    // The master whose buckets hold the most units.
    let prefix = stack.redis_prefix.clone();
    let nodes = stack
        .redis_cluster_nodes()
        .ok_or_else(|| anyhow::anyhow!("the stack has no private cluster"))?;
    let victim = nodes
        .busiest_master(&prefix, event, tier, args.buckets)
        .ok_or_else(|| anyhow::anyhow!("no master for a bucket of the sale"))?;

    let killed_at = OffsetDateTime::now_utc();
    nodes.crash(victim.port);
    nodes.wait_taken_over(victim.port, &victim.slots).await?;
    let failed_over_at = OffsetDateTime::now_utc();
    nodes.restart(victim.port).await?;

    let report = running.await??;
    let db = stack.db().await?;
    let times: Vec<OffsetDateTime> = sqlx::query_scalar(
        "SELECT created_at FROM orders WHERE event_id = $1 AND created_at BETWEEN $2 AND $3 \
         ORDER BY created_at",
    )
    .bind(event)
    .bind(killed_at - time::Duration::seconds(1))
    .bind(failed_over_at + time::Duration::seconds(10))
    .fetch_all(db)
    .await?;
    let longest_pause = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_seconds_f64())
        .fold(0.0, f64::max);
    let during = times
        .iter()
        .filter(|t| (killed_at..=failed_over_at).contains(*t))
        .count() as i64;
    let from = killed_at - time::Duration::seconds(1);
    let mut per_half_second = Vec::new();
    for t in &times {
        let i = ((*t - from).as_seconds_f64() * 2.0).max(0.0) as usize;
        if per_half_second.len() <= i {
            per_half_second.resize(i + 1, 0);
        }
        per_half_second[i] += 1;
    }
    let before: usize = per_half_second.iter().take(2).sum();
    let back_to_half_rate_s = per_half_second
        .iter()
        .enumerate()
        .skip(2)
        .find(|(_, n)| **n * 2 >= before / 2)
        .map(|(i, _)| i as f64 / 2.0 - 1.0);
    Ok(FailoverReport {
        buckets: args.buckets,
        buckets_on_victim: victim.slots.len(),
        failover_s: (failed_over_at - killed_at).as_seconds_f64(),
        longest_pause_s: longest_pause,
        orders_during_failover: during,
        back_to_half_rate_s,
        per_half_second,
        violations: report.violations,
    })
}
