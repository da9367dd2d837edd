//! The order worker and the expiry sweeper under crashes and races, driven step by
//! step on real Redis and PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rushgate_core::Role;
use rushgate_origin::sale::release::{Release, Returned};
use rushgate_origin::sale::streams::{self, GROUP};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::buy::open_sale;
use crate::helpers::TestApp;
use crate::helpers::spawn_app;
use crate::invariants::assert_invariants;

/// `n` buyers each reserve one unit; returns their tokens and reservation ids.
pub async fn reserve_n(
    app: &TestApp,
    event_id: i64,
    tier_id: i64,
    n: usize,
) -> Vec<(String, Uuid)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (_, token) = app.user(Role::Customer).await;
        let url = app.purchase_url(event_id, &token).await;
        let answer = app.buy(&url, &token, tier_id, 1).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        let id = Uuid::parse_str(answer.body["reservation_id"].as_str().unwrap()).unwrap();
        out.push((token, id));
    }
    out
}

async fn pending_entries(app: &TestApp, event_id: i64) -> (usize, usize) {
    let mut conn = app.redis.conn.clone();
    let stream = app.keys(event_id, 0).await.orders();
    let length: usize = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(&stream)
        .arg(GROUP)
        .query_async(&mut conn)
        .await
        .unwrap();
    let count = match pending {
        redis::Value::Array(items) => redis::from_redis_value(items[0].clone()).unwrap_or(0),
        _ => 0,
    };
    (length, count)
}

#[sqlx::test]
async fn a_worker_dying_after_insert_before_ack_leaves_one_row_each(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 50, 1, 1).await;
    let ids: HashSet<Uuid> = reserve_n(&app, event_id, tier_id, 30)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let bucket = app.bucket(event_id, 0).await;

    // The first worker takes the entries, writes them, and dies before XACK.
    let doomed = app.order_worker(Duration::from_secs(60));
    let entries = doomed.take(bucket).await.unwrap();
    assert_eq!(entries.len(), 30);
    let parsed: Vec<_> = entries.iter().map(|e| streams::parse(e).unwrap()).collect();
    let (written, failed) = doomed.write(&parsed).await.unwrap();
    assert_eq!((written, failed.len()), (30, 0));
    drop(doomed);
    assert_eq!(pending_entries(&app, event_id).await, (30, 30));

    // A successor takes the stalled entries over and writes nothing twice.
    let successor = app.order_worker(Duration::ZERO);
    let outcome = successor.run_once().await.unwrap();
    assert_eq!((outcome.read, outcome.written, outcome.dead), (30, 0, 0));
    assert_eq!(pending_entries(&app, event_id).await, (0, 0));
    let tally = assert_invariants(&app, event_id, Some(&ids)).await;
    assert_eq!(tally.order_ids.len(), 30);
}

#[sqlx::test]
async fn a_worker_dying_before_insert_loses_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 50, 1, 1).await;
    let ids: HashSet<Uuid> = reserve_n(&app, event_id, tier_id, 30)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let doomed = app.order_worker(Duration::from_secs(60));
    assert_eq!(
        doomed
            .take(app.bucket(event_id, 0).await)
            .await
            .unwrap()
            .len(),
        30
    );
    drop(doomed);
    // A worker with the usual patience leaves them alone...
    let patient = app.order_worker(Duration::from_secs(60));
    assert_eq!(patient.run_once().await.unwrap().read, 0);
    // ...one that sees them stalled takes them.
    let successor = app.order_worker(Duration::ZERO);
    assert_eq!(successor.run_once().await.unwrap().written, 30);
    assert_eq!(pending_entries(&app, event_id).await, (0, 0));
    assert_invariants(&app, event_id, Some(&ids)).await;
}

#[sqlx::test]
async fn several_workers_write_each_order_once(db: PgPool) {
    let app = Arc::new(spawn_app(db).await);
    let (event_id, tier_id) = open_sale(&app, 200, 1, 1).await;
    let ids: HashSet<Uuid> = reserve_n(&app, event_id, tier_id, 120)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let runs = (0..4).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { app.drain_orders().await })
    });
    let written: u64 = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(written, 120);
    assert_invariants(&app, event_id, Some(&ids)).await;
}

#[sqlx::test]
async fn unparseable_entries_are_kept_aside_not_dropped(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 1, 1).await;
    reserve_n(&app, event_id, tier_id, 2).await;
    let mut conn = app.redis.conn.clone();
    let _: String = redis::cmd("XADD")
        .arg(app.keys(event_id, 0).await.orders())
        .arg("*")
        .arg("id")
        .arg("garbage")
        .query_async(&mut conn)
        .await
        .unwrap();
    let outcome = app
        .order_worker(Duration::from_secs(60))
        .run_once()
        .await
        .unwrap();
    assert_eq!((outcome.read, outcome.written, outcome.dead), (3, 2, 1));
    let dead: usize = redis::cmd("XLEN")
        .arg(app.keys(event_id, 0).await.dead())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(dead, 1);
    assert_eq!(pending_entries(&app, event_id).await, (0, 0));
}

#[sqlx::test]
async fn racing_sweepers_and_cancels_return_each_unit_once(db: PgPool) {
    let app = Arc::new(spawn_app(db).await);
    let (event_id, tier_id) = open_sale(&app, 50, 1, 1).await;
    let buyers = reserve_n(&app, event_id, tier_id, 40).await;
    app.drain_orders().await;
    for (token, id) in &buyers[..10] {
        let paid = app
            .post(&format!("/api/orders/{id}/pay"), Some(token), json!({}))
            .await;
        assert_eq!(paid.status, 200);
    }
    // Two sweepers at a time past every window, racing 15 cancels.
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let sweeps = (0..2).map(|_| {
        let sweeper = app.sweeper();
        tokio::spawn(async move { sweeper.run_once(later).await.unwrap() })
    });
    let cancels = buyers[10..25].iter().cloned().map(|(token, id)| {
        let app = app.clone();
        tokio::spawn(async move {
            app.post(&format!("/api/orders/{id}/cancel"), Some(&token), json!({}))
                .await
        })
    });
    let (sweeps, cancels) = tokio::join!(
        futures::future::join_all(sweeps),
        futures::future::join_all(cancels)
    );
    let expired: u64 = sweeps.iter().map(|s| s.as_ref().unwrap().expired).sum();
    let mut cancelled = 0;
    for answer in cancels {
        let answer = answer.unwrap();
        match answer.status.as_u16() {
            200 => cancelled += 1,
            410 => assert_eq!(answer.code(), "expired"),
            other => panic!("cancel answered {other}: {:?}", answer.body),
        }
    }
    assert_eq!(
        expired + cancelled,
        30,
        "every unpaid order closed exactly once"
    );
    app.sweeper()
        .run_once(OffsetDateTime::now_utc())
        .await
        .unwrap();
    let tally = assert_invariants(&app, event_id, None).await;
    let tier = &tally.tiers[&tier_id];
    assert_eq!(tier.paid, 10);
    assert_eq!(tier.remaining, 50 - 10, "stock ends at total minus paid");
    assert_eq!(tier.returned, 30);
}

#[sqlx::test]
async fn a_sweeper_crash_between_database_and_redis_is_repaired(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 1, 1).await;
    let buyers = reserve_n(&app, event_id, tier_id, 3).await;
    app.drain_orders().await;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);

    // Crash after the database update, before any Redis call.
    assert_eq!(app.sweeper().expire_due(later).await.unwrap(), 3);
    let tally = assert_invariants(&app, event_id, None).await;
    assert_eq!(tally.tiers[&tier_id].returning, 3);

    // Crash after release.lua for one order, before the outbox row is marked.
    let row: (i64, i32) = sqlx::query_as("SELECT user_id, quantity FROM orders WHERE id = $1")
        .bind(buyers[0].1)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let first = Release {
        order_id: buyers[0].1,
        event_id,
        tier_id,
        user_id: row.0,
        bucket: 0,
        buckets: 1,
        quantity: row.1,
    };
    assert_eq!(app.sweeper().release(&first).await.unwrap(), Returned::Now);
    assert_eq!(
        app.sweeper().release(&first).await.unwrap(),
        Returned::Already,
        "a second call is a no-op"
    );

    // The next sweeper finishes the job without returning anything twice.
    let outcome = app.sweeper().run_once(later).await.unwrap();
    assert_eq!((outcome.released, outcome.already_released), (2, 1));
    let tally = assert_invariants(&app, event_id, None).await;
    assert_eq!(tally.tiers[&tier_id].remaining, 10);
    assert_eq!(tally.tiers[&tier_id].returned, 3);
}

async fn consumers(app: &TestApp, event_id: i64) -> HashSet<String> {
    let reply: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(app.keys(event_id, 0).await.orders())
        .arg(GROUP)
        .query_async(&mut app.redis.conn.clone())
        .await
        .unwrap();
    reply.consumers.into_iter().map(|c| c.name).collect()
}

#[sqlx::test]
async fn stopped_consumers_are_pruned_never_with_pending_entries(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 50, 1, 1).await;
    let bucket = app.bucket(event_id, 0).await;
    let mut ids: HashSet<Uuid> = HashSet::new();
    ids.extend(
        reserve_n(&app, event_id, tier_id, 4)
            .await
            .iter()
            .map(|r| r.1),
    );
    // One worker wrote and acknowledged everything, then stopped…
    let finished = app.order_worker(Duration::from_secs(60));
    assert_eq!(finished.run_once().await.unwrap().written, 4);
    // …another took entries and stopped before writing them.
    ids.extend(
        reserve_n(&app, event_id, tier_id, 2)
            .await
            .iter()
            .map(|r| r.1),
    );
    let stuck = app.order_worker(Duration::from_secs(60));
    assert_eq!(stuck.take(bucket).await.unwrap().len(), 2);
    let live = app.order_worker(Duration::ZERO);
    assert_eq!(
        consumers(&app, event_id).await,
        HashSet::from([finished.consumer().to_owned(), stuck.consumer().to_owned()])
    );

    // Only the consumer with nothing pending goes.
    assert_eq!(live.prune_consumers(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(
        consumers(&app, event_id).await,
        HashSet::from([stuck.consumer().to_owned()])
    );
    // A consumer that was active recently stays too.
    assert_eq!(
        live.prune_consumers(Duration::from_secs(600))
            .await
            .unwrap(),
        0
    );

    // The live worker takes the stuck entries over; then the stuck consumer,
    // holding nothing any more, goes, and the live one stays.
    assert_eq!(live.run_once().await.unwrap().written, 2);
    assert_eq!(live.prune_consumers(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(
        consumers(&app, event_id).await,
        HashSet::from([live.consumer().to_owned()])
    );
    assert_eq!(pending_entries(&app, event_id).await, (0, 0));
    let tally = assert_invariants(&app, event_id, Some(&ids)).await;
    assert_eq!(tally.order_ids.len(), 6);
}
