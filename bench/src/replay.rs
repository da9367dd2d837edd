//! Open-loop replay of prepared `/buy` requests at a fixed rate, for latency at a
//! given load. Each request's latency is measured from the moment it was due,
//! not from when it was sent, so a stalled server cannot hide its queue
//! (no coordinated omission).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use tokio::time::MissedTickBehavior;

use crate::stats::{self, Endpoint, Recorder};

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Base URL the requests go to.
    #[arg(long)]
    pub target: String,
    /// Requests written by `prepare-buy` (path TAB authorization per line).
    #[arg(long)]
    pub requests: PathBuf,
    #[arg(long)]
    pub tier: i64,
    /// Requests per second.
    #[arg(long)]
    pub rate: f64,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Skip this many lines of the file first.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
}

pub async fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.requests)
        .with_context(|| format!("reading {}", args.requests.display()))?;
    let lines: Vec<(String, String)> = text
        .lines()
        .skip(args.offset)
        .filter_map(|l| l.split_once('\t'))
        .map(|(p, a)| (p.to_owned(), a.to_owned()))
        .collect();
    let total = (args.rate * args.seconds as f64) as usize;
    anyhow::ensure!(
        lines.len() >= total,
        "{} requests prepared, {total} needed",
        lines.len()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(30))
        .build()?;
    let recorder = Arc::new(Recorder::default());
    let body = json!({"tier_id": args.tier, "quantity": 1}).to_string();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (path, auth) in lines.into_iter().take(total) {
        let due = ticker.tick().await.into_std();
        let request = client
            .post(format!("{}{path}", args.target))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body.clone());
        let recorder = recorder.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = match request.send().await {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "no answer".to_owned(),
            };
            recorder.record(Endpoint::Buy, due.elapsed(), &outcome);
        }));
    }
    futures::future::join_all(tasks).await;
    let report = recorder.report(started.elapsed());
    print!("{}", stats::table(&report));
    if let Some(buy) = report.first() {
        println!(
            "offered {:.0} req/s for {} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            args.rate, args.seconds, buy.p50_ms, buy.p99_ms, buy.max_ms
        );
    }
    Ok(())
}
