//! Rebuilding a sale's stock from PostgreSQL after Redis lost its data: buying
//! fails safe while it is gone, releases wait in the outbox, and the rebuild
//! restores every invariant.

use redis::AsyncCommands as _;
use rushgate_core::Role;
use rushgate_origin::events::repo;
use rushgate_origin::sale::rebuild;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::buy::open_sale;
use crate::helpers::{TestApp, spawn_app};
use crate::invariants::assert_invariants;
use crate::worker::reserve_n;

/// Deletes every key of this app's prefix, as a Redis restarted without its data.
async fn lose_redis(app: &TestApp) {
    let mut conn = app.redis.conn.clone();
    let pattern = format!("{}:*", app.redis.keys.prefix());
    let keys: Vec<String> = conn.keys(&pattern).await.unwrap();
    assert!(!keys.is_empty());
    let _: () = conn.del(&keys).await.unwrap();
}

/// The buyer pays or cancels their order, which ends up `status`.
async fn act(app: &TestApp, (token, id): &(String, Uuid), action: &str, status: &str) {
    let answer = app
        .post(
            &format!("/api/orders/{id}/{action}"),
            Some(token),
            json!({}),
        )
        .await;
    assert_eq!(answer.body["status"], status, "{:?}", answer.body);
}

async fn pending_releases(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM release_outbox WHERE released_at IS NULL")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn stock_is_rebuilt_from_postgres_after_redis_loses_it(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 2).await;
    let buyers = reserve_n(&app, event_id, tier_id, 5).await;
    assert_eq!(app.drain_orders().await, 5);
    // 0 pays, 1 cancels (its unit goes back at once), 2 and 3 will close while
    // Redis is gone, 4 keeps holding; a sixth reservation is never written.
    act(&app, &buyers[0], "pay", "paid").await;
    act(&app, &buyers[1], "cancel", "cancelled").await;
    reserve_n(&app, event_id, tier_id, 1).await;
    let (_, late) = app.user(Role::Customer).await;
    let url = app.purchase_url(event_id, &late).await;

    lose_redis(&app).await;

    // Without its stock nothing sells, and units closed now wait in the outbox.
    app.buy(&url, &late, tier_id, 1)
        .await
        .assert_error(409, "sold_out");
    act(&app, &buyers[2], "cancel", "cancelled").await;
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(buyers[3].1)
        .execute(&app.db)
        .await
        .unwrap();
    let swept = app
        .sweeper()
        .run_once(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!((swept.expired, swept.released), (1, 0));
    assert_eq!(pending_releases(&app).await, 2, "both releases wait");

    // The rebuild counts paid, holding and waiting units: 10 - 4.
    let event = repo::get(&app.db, event_id).await.unwrap().unwrap();
    let done = rebuild::rebuild(&app.db, &app.redis, &app.state.replicas, &event)
        .await
        .unwrap();
    assert_eq!((done.rebuilt, done.present), (2, 0));
    assert_eq!(done.remaining[&tier_id], 6);
    assert_invariants(&app, event_id, None).await;

    // The waiting releases land, once; a second rebuild changes nothing.
    let swept = app
        .sweeper()
        .run_once(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(swept.released, 2);
    assert_eq!(pending_releases(&app).await, 0);
    let again = rebuild::rebuild(&app.db, &app.redis, &app.state.replicas, &event)
        .await
        .unwrap();
    assert_eq!((again.rebuilt, again.present), (0, 2));
    let tally = assert_invariants(&app, event_id, None).await;
    assert_eq!(tally.tiers[&tier_id].remaining, 8);

    // The sale goes on: the units that came back cleared the sold-out flag.
    assert_eq!(app.buy(&url, &late, tier_id, 1).await.status, 202);
    assert_eq!(app.drain_orders().await, 1);
    assert_invariants(&app, event_id, None).await;
}
