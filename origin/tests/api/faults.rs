//! Real faults: PostgreSQL cut off mid-sale, Redis stopped, slow, and restarted
//! with AOF. Buying keeps its promises through all of them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use rushgate_core::Role;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

use crate::buy::open_sale;
use crate::helpers::{RedisServer, TestApp, spawn_app_configured, spawn_app_with, test_config};
use crate::invariants::assert_invariants;
use crate::proxy::ChaosProxy;

async fn buyers(app: &TestApp, event_id: i64, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (_, token) = app.user(Role::Customer).await;
        let url = app.purchase_url(event_id, &token).await;
        out.push((token, url));
    }
    out
}

fn id_of(answer: &crate::helpers::Answer) -> Uuid {
    Uuid::parse_str(answer.body["reservation_id"].as_str().unwrap()).unwrap()
}

#[sqlx::test]
async fn buying_continues_while_postgres_is_unreachable(
    _pool: PgPoolOptions,
    options: PgConnectOptions,
) {
    let upstream = SocketAddr::from(([127, 0, 0, 1], options.get_port()));
    let proxy = ChaosProxy::start(upstream).await;
    let through_proxy = options.clone().host("127.0.0.1").port(proxy.addr.port());
    let db = rushgate_origin::store::db::pool(through_proxy, 4)
        .await
        .unwrap();
    let app = spawn_app_configured(db, test_config()).await;
    let (event_id, tier_id) = open_sale(&app, 100, 2, 1).await;
    let crowd = buyers(&app, event_id, 20).await;
    // The event is in the origin's cache before the outage.
    assert_eq!(
        app.get(&format!("/api/events/{event_id}"), None)
            .await
            .status,
        200
    );

    proxy.cut();
    let mut ids = HashSet::new();
    for (token, url) in &crowd {
        let answer = app.buy(url, token, tier_id, 1).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        ids.insert(id_of(&answer));
    }
    let worker = app.order_worker(Duration::from_secs(60));
    assert!(worker.run_once().await.is_err(), "PostgreSQL is away");
    let order = ids.iter().next().unwrap();
    let queued = app
        .get(&format!("/api/orders/{order}"), Some(&crowd[0].0))
        .await;
    assert!(
        queued.status == 503 || queued.body["status"] == "queued",
        "{:?}",
        queued.body
    );

    proxy.restore();
    // The same worker retries its own pending entries first.
    let mut written = 0;
    loop {
        let outcome = worker.run_once().await.unwrap();
        written += outcome.written;
        if outcome.read == 0 {
            break;
        }
    }
    assert_eq!(written, 20);
    let tally = assert_invariants(&app, event_id, Some(&ids)).await;
    assert_eq!(tally.tiers[&tier_id].awaiting, 20);
}

#[sqlx::test]
async fn redis_down_or_slow_answers_503_and_loses_nothing(db: PgPool) {
    let mut redis = RedisServer::temporary(false).await.unwrap();
    let app = spawn_app_with(db, test_config(), &redis.url()).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let crowd = buyers(&app, event_id, 3).await;

    // Slow: the server holds every command for 1.5 s; the 500 ms bound answers
    // first. The held script still runs afterwards, so the buyer's retry with the
    // same URL finds the reservation: a timeout never loses or doubles a unit.
    let admin = redis::Client::open(redis.url()).unwrap();
    let mut control = admin.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut control)
        .await
        .unwrap();
    let slow = app.buy(&crowd[0].1, &crowd[0].0, tier_id, 1).await;
    slow.assert_error(503, "overloaded");
    assert!(slow.body["retry_after_s"].as_u64().is_some());
    let mut retry = app.buy(&crowd[0].1, &crowd[0].0, tier_id, 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while retry.status == 503 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        retry = app.buy(&crowd[0].1, &crowd[0].0, tier_id, 1).await;
    }
    assert!(
        retry.status == 200 || retry.status == 202,
        "{:?}",
        retry.body
    );
    let held = id_of(&retry);
    assert_eq!(
        app.buy(&crowd[0].1, &crowd[0].0, tier_id, 1).await.body["reservation_id"],
        held.to_string()
    );

    // Down: connection refused.
    redis.crash();
    let down = app.buy(&crowd[1].1, &crowd[1].0, tier_id, 1).await;
    down.assert_error(503, "overloaded");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing was written while Redis was away");
}

#[sqlx::test]
async fn a_redis_restart_with_aof_loses_no_reservation(db: PgPool) {
    let mut redis = RedisServer::temporary(true).await.unwrap();
    let app = spawn_app_with(db, test_config(), &redis.url()).await;
    let (event_id, tier_id) = open_sale(&app, 30, 2, 1).await;
    let crowd = buyers(&app, event_id, 20).await;

    let mut ids = HashSet::new();
    for (token, url) in &crowd[..10] {
        ids.insert(id_of(&app.buy(url, token, tier_id, 1).await));
    }
    app.drain_orders().await;
    for (token, url) in &crowd[10..15] {
        ids.insert(id_of(&app.buy(url, token, tier_id, 1).await));
    }

    redis.restart().await.unwrap();

    // The connection comes back by itself; scripts reload after NOSCRIPT.
    // A request caught by the restart may have run before its answer was lost,
    // so the retry with the same URL answers 202 or (replay) 200.
    let mut answer = app.buy(&crowd[15].1, &crowd[15].0, tier_id, 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while answer.status == 503 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = app.buy(&crowd[15].1, &crowd[15].0, tier_id, 1).await;
    }
    assert!(
        answer.status == 202 || answer.status == 200,
        "{:?}",
        answer.body
    );
    ids.insert(id_of(&answer));
    for (token, url) in &crowd[16..] {
        ids.insert(id_of(&app.buy(url, token, tier_id, 1).await));
    }
    // Replays from before the restart still find their reservation.
    for (token, url) in &crowd[..15] {
        let replay = app.buy(url, token, tier_id, 1).await;
        assert_eq!(replay.status, 200, "{:?}", replay.body);
        assert!(ids.contains(&id_of(&replay)));
    }
    app.drain_orders().await;
    let tally = assert_invariants(&app, event_id, Some(&ids)).await;
    assert_eq!(tally.tiers[&tier_id].awaiting, 20);
    assert_eq!(tally.tiers[&tier_id].remaining, 10);
}
