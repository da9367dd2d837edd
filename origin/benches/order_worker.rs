//! P4: order worker rows/s against PostgreSQL `COPY` rows/s of the same rows,
//! in the same run, on a fresh database and a private redis-server.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p rushgate-origin --bench order_worker [-- ROWS]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rushgate_origin::sale::record::Reservation;
use rushgate_origin::sale::{Bucket, Replicas, streams};
use rushgate_origin::store::db;
use rushgate_origin::store::redis::Redis;
use rushgate_origin::worker::orders::OrderWorker;
use sqlx::PgPool;
use uuid::Uuid;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Order-worker loops running at once, as `serve` runs them
/// (`RUSHGATE_ORDER_WORKERS`).
const CONSUMERS: usize = 2;
const EVENT: i64 = 1;
const TIER: i64 = 1;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn reservations(n: usize) -> Vec<Reservation> {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    (0..n)
        .map(|i| Reservation {
            id: Uuid::now_v7(),
            user_id: 1 + (i as i64 % 100_000),
            event_id: EVENT,
            tier_id: TIER,
            bucket: 0,
            quantity: 1,
            amount_cents: 4500,
            created_ms: now_ms,
            payment_window_s: 300,
        })
        .collect()
}

async fn fresh_db(base: &str, name: &str) -> PgPool {
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let pool = db::connect(&url, 4).await.unwrap();
    db::migrate(&pool).await.unwrap();
    pool
}

/// Fills the stream as reserve.lua would, then times the worker draining it.
async fn worker_rows_per_s(pool: &PgPool, redis: &Redis, rows: &[Reservation]) -> f64 {
    let bucket = Bucket {
        event_id: EVENT,
        bucket: 0,
        buckets: 1,
    };
    streams::register(redis, bucket).await.unwrap();
    let stream = redis.keys.bucket(bucket).orders();
    for chunk in rows.chunks(5_000) {
        let mut pipe = redis::pipe();
        for r in chunk {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("r")
                .arg(r.encode())
                .ignore();
        }
        pipe.query_async::<()>(&mut redis.conn.clone())
            .await
            .unwrap();
    }
    let started = Instant::now();
    let total = Arc::new(AtomicU64::new(0));
    let consumers = (0..CONSUMERS).map(|i| {
        let worker = OrderWorker::new(
            pool.clone(),
            redis.clone(),
            Replicas::none(),
            format!("bench-{i}"),
            Duration::from_secs(60),
        );
        let (total, want) = (total.clone(), rows.len() as u64);
        tokio::spawn(async move {
            while total.load(Ordering::Relaxed) < want {
                let outcome = worker.run_once().await.unwrap();
                total.fetch_add(outcome.written, Ordering::Relaxed);
            }
        })
    });
    futures::future::join_all(consumers).await;
    rows.len() as f64 / started.elapsed().as_secs_f64()
}

/// For the record of what bounds the worker: its INSERT alone, no Redis.
async fn insert_rows_per_s(pool: &PgPool, rows: &[Reservation]) -> f64 {
    let started = Instant::now();
    for chunk in rows.chunks(2000) {
        rushgate_origin::orders::repo::insert_batch(pool, chunk)
            .await
            .unwrap();
    }
    rows.len() as f64 / started.elapsed().as_secs_f64()
}

/// Times `COPY orders FROM STDIN` of the same rows (the fastest way in).
async fn copy_rows_per_s(pool: &PgPool, rows: &[Reservation]) -> f64 {
    let mut text = String::with_capacity(rows.len() * 120);
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    for r in rows {
        let created = r.created_at();
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r.id,
            r.event_id,
            r.tier_id,
            r.user_id,
            r.bucket,
            r.quantity,
            r.amount_cents,
            rfc3339(created),
            rfc3339(created + time::Duration::seconds(i64::from(r.payment_window_s)))
        ));
    }
    let mut conn = pool.acquire().await.unwrap();
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY orders (id, event_id, tier_id, user_id, bucket, quantity, amount_cents, created_at, expires_at) FROM STDIN",
        )
        .await
        .unwrap();
    copy.send(text.as_bytes()).await.unwrap();
    copy.finish().await.unwrap();
    rows.len() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("rushgate-p4-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let url = format!("redis://127.0.0.1:{port}");
    let redis = loop {
        if let Ok(r) = Redis::connect(&url, false, "p4", Duration::from_secs(5)).await {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let run = Uuid::new_v4().simple().to_string();
    let mut databases = Vec::new();
    let (mut worker_all, mut copy_all) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let rows = reservations(n);
        let (wdb, cdb) = (
            format!("rg_p4_{}_{round}_w", &run[..8]),
            format!("rg_p4_{}_{round}_c", &run[..8]),
        );
        let pool = fresh_db(&base, &wdb).await;
        let w = worker_rows_per_s(&pool, &redis, &rows).await;
        pool.close().await;
        let pool = fresh_db(&base, &cdb).await;
        let c = copy_rows_per_s(&pool, &rows).await;
        pool.close().await;
        let idb = format!("rg_p4_{}_{round}_i", &run[..8]);
        let pool = fresh_db(&base, &idb).await;
        let i = insert_rows_per_s(&pool, &reservations(n)).await;
        pool.close().await;
        databases.extend([wdb, cdb, idb]);
        println!(
            "round {round}: order worker {w:.0} rows/s, COPY {c:.0} rows/s (the worker's INSERT alone: {i:.0} rows/s)"
        );
        worker_all.push(w);
        copy_all.push(c);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (w, c) = (median(&mut worker_all), median(&mut copy_all));
    println!(
        "\nP4 order worker {w:.0} rows/s / PostgreSQL COPY {c:.0} rows/s = {:.2} (target >= 0.5)",
        w / c
    );
    let admin = PgPool::connect(&base).await.unwrap();
    for name in databases {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
