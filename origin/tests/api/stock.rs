//! Rebuilding a sale's stock from PostgreSQL after Redis lost its data: buying
//! fails safe while it is gone, releases wait in the outbox, and the rebuild
//! restores every invariant.

use redis::AsyncCommands as _;
use rushgate_core::Role;
use rushgate_origin::events::repo;
use rushgate_origin::sale::ledger::Reconciled;
use rushgate_origin::sale::{rebuild, stock};
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
    let done = rebuild::rebuild(&app.db, &app.redis, &app.state.replicas, &event, None)
        .await
        .unwrap();
    assert_eq!((done.rebuilt, done.present), (2, 0));
    assert_eq!(done.written[&tier_id], 6);
    assert_invariants(&app, event_id, None).await;

    // The waiting releases land, once; a second rebuild changes nothing.
    let swept = app
        .sweeper()
        .run_once(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(swept.released, 2);
    assert_eq!(pending_releases(&app).await, 0);
    let again = rebuild::rebuild(&app.db, &app.redis, &app.state.replicas, &event, None)
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

/// One ledger pass at `now`; the check of `event_id`.
async fn check(app: &TestApp, event_id: i64) -> Reconciled {
    let done = app
        .ledger()
        .run_once(OffsetDateTime::now_utc())
        .await
        .unwrap();
    done.into_iter()
        .find(|r| r.event_id == event_id)
        .expect("the event is checked")
}

#[sqlx::test]
async fn the_ledger_finds_a_broken_stock_key_and_the_operator_fixes_it(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 20, 2, 3).await;
    let (_, admin) = app.user(Role::Admin).await;
    let stats = format!("/api/admin/events/{event_id}/stats");

    // A sale with orders in every state adds up, and says so.
    let buyers = reserve_n(&app, event_id, tier_id, 4).await;
    assert_eq!(app.drain_orders().await, 4);
    act(&app, &buyers[0], "pay", "paid").await;
    act(&app, &buyers[1], "cancel", "cancelled").await;
    reserve_n(&app, event_id, tier_id, 1).await; // queued, not yet a row
    let clean = check(&app, event_id).await;
    assert_eq!(clean.check.tiers[0].unaccounted, 0, "{:?}", clean.check);
    assert_eq!(clean.check.streak, 0);
    let body = app.get(&stats, Some(&admin)).await.body;
    assert_eq!(body["ledger"]["tiers"][0]["unaccounted"], 0, "{body}");
    assert!(body["ledger"]["warning"].is_null());

    // Someone adds 3 units to a bucket by hand: counted twice, could oversell.
    let keys = app.keys(event_id, 1).await;
    let _: i64 = app
        .redis
        .conn
        .clone()
        .incr(keys.stock(tier_id), 3)
        .await
        .unwrap();
    let first = check(&app, event_id).await;
    assert_eq!(first.check.tiers[0].unaccounted, -3);
    assert!(first.check.warning.is_none(), "one check is not enough");
    let second = check(&app, event_id).await;
    let warning = second
        .check
        .warning
        .clone()
        .expect("a persisting difference warns");
    assert!(
        warning.contains(&format!(
            "stock adjust --event {event_id} --tier {tier_id} --units -3"
        )),
        "{warning}"
    );
    let body = app.get(&stats, Some(&admin)).await.body;
    assert_eq!(body["ledger"]["warning"], warning.as_str(), "{body}");

    // The command it names puts it right.
    let event = repo::get(&app.db, event_id).await.unwrap().unwrap();
    let done = stock::adjust(&app.redis, &app.state.replicas, &event, tier_id, -3)
        .await
        .unwrap();
    assert_eq!((done.units, done.missing), (-3, 0));
    let fixed = check(&app, event_id).await;
    assert_eq!(
        (fixed.check.tiers[0].unaccounted, fixed.check.streak),
        (0, 0)
    );
    assert!(fixed.check.warning.is_none());
    assert_eq!(app.drain_orders().await, 1);
    assert_invariants(&app, event_id, None).await;
}

#[sqlx::test]
async fn the_ledger_writes_back_a_sale_redis_lost_by_itself(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 2).await;
    let buyers = reserve_n(&app, event_id, tier_id, 3).await;
    assert_eq!(app.drain_orders().await, 3);
    act(&app, &buyers[0], "pay", "paid").await;
    let (_, late) = app.user(Role::Customer).await;
    let url = app.purchase_url(event_id, &late).await;

    lose_redis(&app).await;
    app.buy(&url, &late, tier_id, 1)
        .await
        .assert_error(409, "sold_out");

    // The first check finds the buckets gone; the next writes them back.
    let first = check(&app, event_id).await;
    assert!(first.rebuilt.is_none());
    assert_eq!(first.check.lost_buckets, vec![0, 1]);
    let second = check(&app, event_id).await;
    let rebuilt = second.rebuilt.expect("written back");
    assert_eq!((rebuilt.rebuilt, rebuilt.written[&tier_id]), (2, 7));
    assert!(second.check.lost_buckets.is_empty());
    assert_eq!(second.check.tiers[0].unaccounted, 0, "{:?}", second.check);
    assert_invariants(&app, event_id, None).await;

    // The HTTP side's re-check clears its sold-out flag; the sale goes on.
    app.state.flags.recheck(&app.redis).await.unwrap();
    assert_eq!(app.buy(&url, &late, tier_id, 1).await.status, 202);
    assert_eq!(app.drain_orders().await, 1);
    assert_invariants(&app, event_id, None).await;
}

#[sqlx::test]
async fn one_lost_bucket_comes_back_empty_and_the_ledger_names_what_it_held(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 12, 2, 3).await;
    reserve_n(&app, event_id, tier_id, 2).await;
    assert_eq!(app.drain_orders().await, 2);

    // One node loses one bucket while the others keep their stock.
    let keys = app.keys(event_id, 2).await;
    let left: i64 = app
        .redis
        .conn
        .clone()
        .get(keys.stock(tier_id))
        .await
        .unwrap();
    let _: () = app
        .redis
        .conn
        .clone()
        .del(keys.stock(tier_id))
        .await
        .unwrap();
    check(&app, event_id).await;
    let second = check(&app, event_id).await;
    assert_eq!(second.rebuilt.map(|r| r.rebuilt), Some(1));
    // Back empty (never more than it held), and the ledger says how many to return.
    let now: i64 = app
        .redis
        .conn
        .clone()
        .get(keys.stock(tier_id))
        .await
        .unwrap();
    assert_eq!(now, 0);
    assert_eq!(second.check.tiers[0].unaccounted, left);
    let third = check(&app, event_id).await;
    let warning = third.check.warning.expect("units missing warn");
    assert!(warning.contains(&format!("--units {left}")), "{warning}");

    // The command it names returns them: every unit is accounted for again.
    let event = repo::get(&app.db, event_id).await.unwrap().unwrap();
    let done = stock::adjust(&app.redis, &app.state.replicas, &event, tier_id, left)
        .await
        .unwrap();
    assert_eq!(done.units, left);
    assert_eq!(check(&app, event_id).await.check.tiers[0].unaccounted, 0);
    assert_invariants(&app, event_id, None).await;
}
