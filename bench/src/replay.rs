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
use tokio::sync::Semaphore;
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
    /// Requests (so connections) open at once at most, as an upstream with a
    /// connection pool keeps them; a request waits for one, and that wait
    /// counts in its latency.
    #[arg(long, default_value_t = 1024)]
    pub connections: usize,
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
    // Every answer, and the served ones (2xx) apart: under overload the
    // refused ones are quick, and what matters is how fast the rest stay.
    let recorder = Arc::new(Recorder::default());
    let served = Arc::new(Recorder::default());
    let body = json!({"tier_id": args.tier, "quantity": 1}).to_string();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let open = Arc::new(Semaphore::new(args.connections.max(1)));
    let mut tasks = Vec::with_capacity(total);
    for (path, auth) in lines.into_iter().take(total) {
        let due = ticker.tick().await.into_std();
        let request = client
            .post(format!("{}{path}", args.target))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body.clone());
        let (recorder, served, open) = (recorder.clone(), served.clone(), open.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(_connection) = open.acquire().await else {
                return;
            };
            let status = request.send().await.map(|r| r.status());
            let latency = due.elapsed();
            let outcome = match status {
                Ok(status) if status.is_success() => {
                    served.record(Endpoint::Buy, latency, status.as_str());
                    status.as_str().to_owned()
                }
                Ok(status) => status.as_str().to_owned(),
                Err(_) => "no answer".to_owned(),
            };
            recorder.record(Endpoint::Buy, latency, &outcome);
        }));
    }
    futures::future::join_all(tasks).await;
    let elapsed = started.elapsed();
    let report = recorder.report(elapsed);
    print!("{}", stats::table(&report));
    if let Some(all) = report.first() {
        let refused = all.outcomes.get("503").copied().unwrap_or(0);
        let summary = match served.report(elapsed).first() {
            Some(ok) => format!(
                "served {} ({:.0}/s): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                ok.requests, ok.per_second, ok.p50_ms, ok.p99_ms, ok.max_ms
            ),
            None => "served none".to_owned(),
        };
        println!(
            "offered {:.0} req/s for {} s: {summary}; answered 503 {:.1} %; all p99 {:.1} ms",
            args.rate,
            args.seconds,
            100.0 * refused as f64 / all.requests.max(1) as f64,
            all.p99_ms
        );
    }
    Ok(())
}
