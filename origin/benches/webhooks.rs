//! W1: webhook deliveries/s to a receiver that takes everything at once,
//! against PostgreSQL's read rate of the same outbox rows (each delivery
//! joined with its event, in pages), in the same run; then a paced endpoint:
//! the most deliveries seen in any one second ÷ its configured rate.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p rushgate-origin --bench webhooks [-- ORDERS]`
//! (the worker's settings from the `RUSHGATE_WEBHOOK_*` variables, e.g.
//! `RUSHGATE_WEBHOOK_IN_FLIGHT=256`).

use std::time::{Duration, Instant};

use clap::Parser as _;
use rushgate_core::webhook::EventType;
use rushgate_dev::receiver::{Receiver, densest_second};
use rushgate_origin::sale::record::Reservation;
use rushgate_origin::store::db;
use rushgate_origin::webhooks::WebhookConfig;
use rushgate_origin::webhooks::deliver::Deliverer;
use rushgate_origin::webhooks::repo::{self, DeploymentEndpoint};
use sqlx::PgPool;
use uuid::Uuid;

const SECRET: &str = "the-benchmark-webhook-secret";

#[derive(clap::Parser)]
struct Probe {
    #[command(flatten)]
    config: WebhookConfig,
}

fn orders(n: usize) -> Vec<Reservation> {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    (0..n)
        .map(|i| Reservation {
            id: Uuid::now_v7(),
            user_id: 1 + i as i64,
            event_id: 1,
            tier_id: 1,
            bucket: 0,
            quantity: 1,
            amount_cents: 4500,
            created_ms: now_ms,
            payment_window_s: 3600,
        })
        .collect()
}

/// A fresh database whose one endpoint is `url` at `rate_per_s`, holding `n`
/// written orders: `2n` deliveries waiting.
async fn outbox(base: &str, name: &str, url: &str, rate_per_s: u32, n: usize) -> PgPool {
    let url_db = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let pool = db::connect(&url_db, 8).await.unwrap();
    db::migrate(&pool).await.unwrap();
    let endpoint = DeploymentEndpoint {
        url: url.to_owned(),
        types: EventType::ALL.to_vec(),
        rate_per_s,
        burst: (rate_per_s / 10).max(1),
    };
    repo::sync_deployment(&pool, &[endpoint]).await.unwrap();
    for chunk in orders(n).chunks(2000) {
        rushgate_origin::orders::repo::insert_batch(&pool, chunk)
            .await
            .unwrap();
    }
    pool
}

/// Reads every waiting delivery with its event and order, 1,000 a page in
/// the claim's order: what PostgreSQL gives the worker at best.
async fn read_rows_per_s(pool: &PgPool) -> f64 {
    let started = Instant::now();
    let (mut after, mut rows) = (0_i64, 0_usize);
    loop {
        type Row = (
            i64,
            Uuid,
            String,
            Uuid,
            i32,
            i64,
            String,
            time::OffsetDateTime,
        );
        let page: Vec<Row> = sqlx::query_as(
            "SELECT d.event_seq, e.id, e.type, o.id, o.quantity, o.amount_cents, o.status, \
                    o.expires_at FROM webhook_deliveries d \
             JOIN order_events e ON e.seq = d.event_seq JOIN orders o ON o.id = e.order_id \
             WHERE d.state = 'pending' AND d.event_seq > $1 ORDER BY d.event_seq LIMIT 1000",
        )
        .bind(after)
        .fetch_all(pool)
        .await
        .unwrap();
        let Some(last) = page.last() else { break };
        after = last.0;
        rows += page.len();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Runs a delivery worker until the receiver has acknowledged `want` and
/// PostgreSQL says they are delivered; returns deliveries/s.
async fn deliver(pool: &PgPool, receiver: &Receiver, want: usize) -> f64 {
    let config = Probe::parse_from(["bench", "--webhook-secret", SECRET]).config;
    let worker = Deliverer::new(pool.clone(), &config).unwrap();
    let started = Instant::now();
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(rushgate_origin::worker::run_loop(
        "webhooks",
        stop.clone(),
        Duration::from_millis(5),
        move || {
            let w = worker.clone();
            async move { Ok(w.run_once().await? > 0) }
        },
    ));
    while receiver.acknowledged() < want {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        let recorded: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")
                .fetch_one(pool)
                .await
                .unwrap();
        if recorded as usize >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = want as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    running.await.unwrap();
    rate
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let run = &Uuid::new_v4().simple().to_string()[..8];
    let mut databases = Vec::new();
    for round in 0..3 {
        let receiver = Receiver::start(SECRET).await.unwrap();
        let name = format!("rg_w1_{run}_{round}");
        let pool = outbox(&base, &name, &receiver.url(), 10_000, n).await;
        let read = read_rows_per_s(&pool).await;
        let sent = deliver(&pool, &receiver, 2 * n).await;
        assert!(receiver.received().iter().all(|r| r.signed));
        println!(
            "round {round}: {} deliveries: {sent:.0}/s delivered, outbox read {read:.0} rows/s, ratio {:.4}",
            2 * n,
            sent / read
        );
        pool.close().await;
        databases.push(name);
    }
    for rate in [50_u32, 200] {
        let receiver = Receiver::start(SECRET).await.unwrap();
        let name = format!("rg_w1_{run}_paced_{rate}");
        // Twelve seconds of work at the rate.
        let orders = (rate * 6) as usize;
        let pool = outbox(&base, &name, &receiver.url(), rate, orders).await;
        let sent = deliver(&pool, &receiver, 2 * orders).await;
        let densest = densest_second(&receiver.received());
        println!(
            "paced at {rate}/s (burst {}): {} deliveries at {sent:.1}/s on average, densest second {densest} = {:.3} × the rate",
            (rate / 10).max(1),
            2 * orders,
            densest as f64 / f64::from(rate)
        );
        pool.close().await;
        databases.push(name);
    }
    let admin = db::connect(&base, 1).await.unwrap();
    for name in databases {
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();
    }
}
