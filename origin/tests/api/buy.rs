//! `/buy`: the crowd, replays, limits, the sold-out flag, the rate limit, edge
//! attestation, and bad input that changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use reqwest::StatusCode;
use rushgate_core::Role;
use rushgate_core::token::{AdmissionClaims, PurchaseClaims};
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use uuid::Uuid;

use std::time::Duration;

use rushgate_origin::store::redis::Redis;

use crate::helpers::{
    RedisServer, TestApp, event_body, spawn_app, spawn_app_configured, test_config,
};
use crate::invariants::assert_invariants;

/// An open event with one tier of `stock` units, as `{event_id, tier_id}`.
pub async fn open_sale(app: &TestApp, stock: i64, per_user_limit: i64, buckets: i64) -> (i64, i64) {
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let mut body = event_body(-5, 3600);
    body["per_user_limit"] = json!(per_user_limit);
    body["buckets"] = json!(buckets);
    body["tiers"] = json!([{"name": "GA", "price_cents": 4200, "stock": stock}]);
    let event = app.approved_event(&operator, &admin, body).await;
    (
        event["id"].as_i64().unwrap(),
        event["tiers"][0]["id"].as_i64().unwrap(),
    )
}

fn reservation_id(body: &Value) -> Uuid {
    Uuid::parse_str(body["reservation_id"].as_str().unwrap()).unwrap()
}

async fn crowd(buckets: i64, db: PgPool) {
    let app = Arc::new(spawn_app(db).await);
    let (event_id, tier_id) = open_sale(&app, 100, 2, buckets).await;

    // 600 users, two purchase URLs each; every URL is sent twice: 2,400 attempts.
    let mut users = Vec::new();
    for _ in 0..600 {
        users.push(app.user(Role::Customer).await);
    }
    let urls = futures::future::join_all(users.iter().map(|(_, token)| {
        let app = app.clone();
        async move {
            (
                app.purchase_url(event_id, token).await,
                app.purchase_url(event_id, token).await,
            )
        }
    }))
    .await;
    let mut attempts = Vec::new();
    for ((user_id, token), (first, second)) in users.iter().zip(&urls) {
        for (url, quantity) in [(first, 1), (second, 2)] {
            for _ in 0..2 {
                attempts.push((*user_id, token.clone(), url.clone(), quantity));
            }
        }
    }
    assert!(attempts.len() >= 2_000);
    let barrier = Arc::new(Barrier::new(attempts.len()));
    let tasks = attempts.into_iter().map(|(user_id, token, url, quantity)| {
        let (app, barrier) = (app.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            // A client retries an `overloaded` answer with the same URL, as the
            // page does; the retry must find, never double, its reservation.
            let mut answer = app.buy(&url, &token, tier_id, quantity).await;
            let mut unsure = false;
            for _ in 0..50 {
                if answer.status != StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
                unsure = true;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                answer = app.buy(&url, &token, tier_id, quantity).await;
            }
            (user_id, url, answer, unsure)
        })
    });
    let answers = futures::future::join_all(tasks).await;

    let mut by_url: HashMap<String, Vec<Uuid>> = HashMap::new();
    let mut created = HashSet::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    // Users with an attempt that was answered 503 and then, on retry, refused:
    // the 503 may have come after the units were held (e.g. the replicas did
    // not confirm in time) and the retry met the sold-out flag first.
    let mut unsure_users = HashSet::new();
    for answer in answers {
        let (user_id, url, answer, unsure) = answer.unwrap();
        *statuses.entry(answer.status.as_u16()).or_default() += 1;
        match answer.status {
            StatusCode::ACCEPTED | StatusCode::OK => {
                let id = reservation_id(&answer.body);
                if answer.status == StatusCode::ACCEPTED {
                    assert!(created.insert(id), "one 202 per reservation");
                }
                by_url.entry(url).or_default().push(id);
            }
            StatusCode::CONFLICT => assert_eq!(answer.code(), "sold_out"),
            StatusCode::FORBIDDEN => assert_eq!(answer.code(), "limit_exceeded"),
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
        if unsure && !answer.status.is_success() {
            unsure_users.insert(user_id);
        }
    }
    for (url, ids) in &by_url {
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "replays of {url} differ: {ids:?}"
        );
    }
    // Every URL that succeeded holds exactly one reservation. (A 202 lost to a
    // timeout shows up as its replay's 200.)
    let accepted: HashSet<Uuid> = by_url.values().map(|ids| ids[0]).collect();
    assert_eq!(accepted.len(), by_url.len(), "one reservation per URL");
    assert!(created.is_subset(&accepted));

    // Three workers drain the streams at once.
    let workers = (0..3).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { app.drain_orders().await })
    });
    let written: u64 = futures::future::join_all(workers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    // Every order is a reservation the API answered for, or one of a user
    // whose attempt was left unsure.
    let orders: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, user_id FROM orders WHERE event_id = $1")
            .bind(event_id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        written as usize,
        orders.len(),
        "each reservation written once"
    );
    let mut reservations = accepted.clone();
    for (id, user_id) in &orders {
        if !accepted.contains(id) {
            assert!(
                unsure_users.contains(user_id),
                "order {id} was never answered for: {statuses:?}"
            );
            reservations.insert(*id);
        }
    }
    assert!(
        accepted
            .iter()
            .all(|id| orders.iter().any(|(o, _)| o == id))
    );

    let tally = assert_invariants(&app, event_id, Some(&reservations)).await;
    let tier = &tally.tiers[&tier_id];
    assert_eq!(
        tier.awaiting, 100,
        "exactly the stock is held: {statuses:?}"
    );
    assert_eq!(tier.remaining, 0, "nothing undersold");
    assert!(tally.queued_ids.is_empty());
}

#[sqlx::test]
async fn a_crowd_buys_exactly_the_stock(db: PgPool) {
    crowd(1, db).await;
}

#[sqlx::test]
async fn a_crowd_buys_exactly_the_stock_across_buckets(db: PgPool) {
    crowd(4, db).await;
}

#[sqlx::test]
async fn replays_return_the_original_and_limits_hold(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (_, alice) = app.user(Role::Customer).await;
    let url = app.purchase_url(event_id, &alice).await;
    let first = app.buy(&url, &alice, tier_id, 2).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(first.body["status"], "queued");
    let again = app.buy(&url, &alice, tier_id, 1).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body, "the same body again");

    let second_url = app.purchase_url(event_id, &alice).await;
    let over = app.buy(&second_url, &alice, tier_id, 1).await;
    over.assert_error(403, "limit_exceeded");

    let (_, bob) = app.user(Role::Customer).await;
    let bob_url = app.purchase_url(event_id, &bob).await;
    app.buy(&bob_url, &bob, tier_id, 3)
        .await
        .assert_error(400, "invalid_input");
    let ids = HashSet::from([reservation_id(&first.body)]);
    assert_invariants(&app, event_id, Some(&ids)).await;
}

#[sqlx::test]
async fn bad_buy_input_changes_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (other_event, _) = open_sale(&app, 10, 2, 1).await;
    let (alice_id, alice) = app.user(Role::Customer).await;
    let (_, bob) = app.user(Role::Customer).await;
    let url = app.purchase_url(event_id, &alice).await;
    let bob_url = app.purchase_url(event_id, &bob).await;
    let before = app.snapshot().await;

    let mut tampered = url.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let expired_token = app.state.keys.sign(&PurchaseClaims {
        event_id,
        user_id: alice_id,
        exp: OffsetDateTime::now_utc().unix_timestamp() - 1,
        nonce: [1; 16],
    });
    let token = url.rsplit('/').next().unwrap();
    let cases: Vec<(String, Option<&str>, Value, u16, &str)> = vec![
        (
            url.clone(),
            None,
            json!({"tier_id": tier_id, "quantity": 1}),
            401,
            "unauthenticated",
        ),
        (
            tampered,
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 1}),
            403,
            "bad_signature",
        ),
        (
            format!("/buy/{event_id}/{expired_token}"),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 1}),
            403,
            "url_expired",
        ),
        (
            bob_url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 1}),
            403,
            "wrong_user",
        ),
        (
            format!("/buy/{other_event}/{token}"),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 1}),
            403,
            "bad_signature",
        ),
        (
            format!("/buy/{event_id}/not-a-token"),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 1}),
            403,
            "bad_signature",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id + 999, "quantity": 1}),
            400,
            "invalid_input",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 0}),
            400,
            "invalid_input",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": -1}),
            400,
            "invalid_input",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": i64::MAX}),
            400,
            "invalid_input",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 1e30}),
            400,
            "invalid_input",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id}),
            400,
            "invalid_input",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": "x", "quantity": 1}),
            400,
            "invalid_input",
        ),
        (
            url.clone(),
            Some(&alice),
            json!({"tier_id": tier_id, "quantity": 1, "price": 0}),
            400,
            "invalid_input",
        ),
    ];
    for (path, token, body, status, code) in cases {
        let answer = app.post(&path, token, body.clone()).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{path} {body}: {:?}",
            answer.body
        );
        assert_eq!(answer.code(), code, "{path} {body}");
    }
    // Bodies are JSON objects and nothing after: an array is not one (serde
    // would read the struct from it), trailing bytes are not JSON (found by
    // bench/scripts/fuzz.sh).
    let array = format!("[{tier_id}, 1]");
    let trailing = format!("{{\"tier_id\": {tier_id}, \"quantity\": 1}}\u{f5}");
    let trailing_array = format!("[{tier_id}, 1]\u{f5}");
    for junk in [
        "{junk",
        array.as_str(),
        trailing.as_str(),
        trailing_array.as_str(),
    ] {
        app.post_raw(&url, Some(&alice), "application/json", junk.to_owned())
            .await
            .assert_error(400, "invalid_input");
    }
    app.post_raw(&url, Some(&alice), "application/json", "x".repeat(20_000))
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(app.snapshot().await, before, "nothing changed");
}

#[sqlx::test]
async fn schedule_is_enforced_at_buy_time(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let (user_id, alice) = app.user(Role::Customer).await;
    let upcoming = app
        .approved_event(&operator, &admin, event_body(3600, 7200))
        .await;
    let closed = app
        .approved_event(&operator, &admin, event_body(-7200, -10))
        .await;
    let before = app.snapshot().await;
    for (event, status, code) in [(&upcoming, 403, "not_open"), (&closed, 410, "closed")] {
        let id = event["id"].as_i64().unwrap();
        let token = app.state.keys.sign(&PurchaseClaims {
            event_id: id,
            user_id,
            exp: OffsetDateTime::now_utc().unix_timestamp() + 60,
            nonce: [7; 16],
        });
        let tier = event["tiers"][0]["id"].as_i64().unwrap();
        app.buy(&format!("/buy/{id}/{token}"), &alice, tier, 1)
            .await
            .assert_error(status, code);
    }
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn origin_requires_the_edge_attestation_when_configured(db: PgPool) {
    let mut config = test_config();
    config.require_edge_admission = true;
    let app = spawn_app_configured(db, config).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (user_id, alice) = app.user(Role::Customer).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let admit = |path: &str, user: i64, at: i64| {
        app.state.keys.sign(&AdmissionClaims {
            method: "POST".into(),
            path: path.into(),
            user_id: user,
            timestamp: at,
        })
    };
    // A purchase URL asked here directly would skip the edge's door.
    let asks = format!("/api/events/{event_id}/purchase-url");
    app.post(&asks, Some(&alice), json!({}))
        .await
        .assert_error(403, "not_admitted_by_edge");
    let ask_with = |header: String| {
        app.client
            .post(app.url(&asks))
            .bearer_auth(&alice)
            .header(rushgate_core::api::header::ADMIT, header)
            .json(&json!({}))
            .send()
    };
    let refused = ask_with(admit(&asks, user_id + 1, now)).await.unwrap();
    assert_eq!(refused.status(), 403, "another user's admission");
    let answer = ask_with(admit(&asks, user_id, now)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    let url = body["url"].as_str().unwrap().to_owned();
    let before = app.snapshot().await;
    app.buy(&url, &alice, tier_id, 1)
        .await
        .assert_error(403, "not_admitted_by_edge");

    let send = |header: String| {
        app.client
            .post(app.url(&url))
            .bearer_auth(&alice)
            .header(rushgate_core::api::header::ADMIT, header)
            .json(&json!({"tier_id": tier_id, "quantity": 1}))
            .send()
    };
    for bad in [
        admit("/buy/1/other", user_id, now),
        admit(&url, user_id + 1, now),
        admit(&url, user_id, now - 600),
        "garbage".to_owned(),
    ] {
        assert_eq!(send(bad).await.unwrap().status(), 403);
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "refused attempts changed nothing"
    );
    assert_eq!(send(admit(&url, user_id, now)).await.unwrap().status(), 202);
}

#[sqlx::test]
async fn sold_out_is_answered_from_memory_until_stock_returns(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 2, 2, 1).await;
    let (_, alice) = app.user(Role::Customer).await;
    let (_, bob) = app.user(Role::Customer).await;
    let (_, carol) = app.user(Role::Customer).await;
    let bob_url = app.purchase_url(event_id, &bob).await;
    let carol_url = app.purchase_url(event_id, &carol).await;
    let bought = app
        .buy(
            &app.purchase_url(event_id, &alice).await,
            &alice,
            tier_id,
            2,
        )
        .await;
    assert_eq!(bought.status, 202);
    assert!(
        app.state.flags.is_set(tier_id),
        "the last unit sets the flag"
    );

    let script_rejections = || async {
        let n: Option<i64> = redis::cmd("HGET")
            .arg(app.keys(event_id, 0).await.funnel())
            .arg("sold_out_rejections")
            .query_async(&mut app.redis.conn.clone())
            .await
            .unwrap();
        n.unwrap_or(0)
    };
    for _ in 0..5 {
        app.buy(&bob_url, &bob, tier_id, 1)
            .await
            .assert_error(409, "sold_out");
    }
    assert_eq!(script_rejections().await, 0, "no request reached Redis");

    // Alice cancels; this process gives the units back and clears its flag.
    app.drain_orders().await;
    let order = reservation_id(&bought.body);
    let cancelled = app
        .post(
            &format!("/api/orders/{order}/cancel"),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    assert!(!app.state.flags.is_set(tier_id));
    assert_eq!(app.buy(&bob_url, &bob, tier_id, 1).await.status, 202);

    // Stock returned by another process clears the flag at the next re-check.
    assert_eq!(app.buy(&carol_url, &carol, tier_id, 1).await.status, 202);
    assert!(app.state.flags.is_set(tier_id));
    let mut conn = app.redis.conn.clone();
    let _: () = redis::cmd("INCRBY")
        .arg(app.keys(event_id, 0).await.stock(tier_id))
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.state.flags.recheck(&app.redis).await.unwrap(), 1);
    assert!(!app.state.flags.is_set(tier_id));
}

#[sqlx::test]
async fn the_token_bucket_answers_overloaded(db: PgPool) {
    let mut config = test_config();
    config.buy_rate_per_s = 1;
    config.buy_burst = 1;
    let app = spawn_app_configured(db, config).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (_, alice) = app.user(Role::Customer).await;
    let (_, bob) = app.user(Role::Customer).await;
    let alice_url = app.purchase_url(event_id, &alice).await;
    let bob_url = app.purchase_url(event_id, &bob).await;
    assert_eq!(app.buy(&alice_url, &alice, tier_id, 1).await.status, 202);
    let before = app.snapshot().await;
    let limited = app.buy(&bob_url, &bob, tier_id, 1).await;
    limited.assert_error(503, "overloaded");
    assert!(limited.body["retry_after_s"].as_u64().unwrap() >= 1);
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn purchases_past_the_in_flight_bound_are_refused_at_once(db: PgPool) {
    // A Redis that answers slowly (paused below) with a generous timeout, so the
    // purchases that get in wait for it.
    let server = RedisServer::temporary(false).await.unwrap();
    let prefix = format!("test:{}", Uuid::new_v4().simple());
    let redis = Redis::connect(&server.url(), false, &prefix, Duration::from_secs(20))
        .await
        .unwrap();
    let mut config = test_config();
    config.buy_max_in_flight = 4;
    let app = crate::helpers::start(db, config, redis).await;
    let (event_id, tier_id) = open_sale(&app, 100, 2, 1).await;
    let mut crowd = Vec::new();
    for _ in 0..30 {
        let (_, token) = app.user(Role::Customer).await;
        let url = app.purchase_url(event_id, &token).await;
        crowd.push((token, url));
    }
    let control = redis::Client::open(server.url()).unwrap();
    let mut control = control.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .query_async(&mut control)
        .await
        .unwrap();
    // Thirty at once: four are worked on (and wait for Redis); the others are
    // answered `overloaded` without waiting for them — queued, they would all
    // have been served once Redis woke up.
    let answers = futures::future::join_all(
        crowd
            .iter()
            .map(|(token, url)| app.buy(url, token, tier_id, 1)),
    )
    .await;
    let mut ids = HashSet::new();
    let mut shed = 0;
    for answer in &answers {
        match answer.status.as_u16() {
            202 => {
                ids.insert(reservation_id(&answer.body));
            }
            503 => {
                answer.assert_error(503, "overloaded");
                assert!(answer.body["retry_after_s"].as_u64().unwrap() >= 1);
                shed += 1;
            }
            other => panic!("{other} {:?}", answer.body),
        }
    }
    assert_eq!(ids.len(), 4, "the purchases in flight were served");
    assert_eq!(shed, 26, "the rest were refused, not queued");
    app.drain_orders().await;
    let tally = assert_invariants(&app, event_id, Some(&ids)).await;
    assert_eq!(tally.tiers[&tier_id].remaining, 96);
}

#[sqlx::test]
async fn a_thin_crowd_in_one_bucket_still_buys_every_unit(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 8, 2, 4).await;
    // Four buyers who all land in the same bucket, which starts with 2 of the 8.
    let mut crowd = Vec::new();
    while crowd.len() < 4 {
        let (id, token) = app.user(Role::Customer).await;
        if rushgate_core::bucket::for_user(event_id, id, 4) == 0 {
            crowd.push(token);
        }
    }
    let mut ids = HashSet::new();
    for token in &crowd {
        let answer = app
            .buy(&app.purchase_url(event_id, token).await, token, tier_id, 2)
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        ids.insert(reservation_id(&answer.body));
    }
    let (_, late) = app.user(Role::Customer).await;
    app.post(
        &format!("/api/events/{event_id}/purchase-url"),
        Some(&late),
        json!({}),
    )
    .await
    .assert_error(409, "sold_out");
    app.drain_orders().await;
    let tally = assert_invariants(&app, event_id, Some(&ids)).await;
    assert_eq!(tally.tiers[&tier_id].awaiting, 8);
    assert_eq!(
        tally.tiers[&tier_id].remaining, 0,
        "no bucket kept units back"
    );
}

#[sqlx::test]
async fn a_transfer_cut_short_by_a_crash_is_landed_by_the_sweeper(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 8, 2, 2).await;
    // The state take.lua leaves when the process dies before give.lua: 3 units
    // debited from bucket 0 and recorded as moving to bucket 1.
    let mut conn = app.redis.conn.clone();
    let _: () = redis::pipe()
        .cmd("DECRBY")
        .arg(app.keys(event_id, 0).await.stock(tier_id))
        .arg(3)
        .ignore()
        .cmd("HSET")
        .arg(app.keys(event_id, 0).await.transfers())
        .arg("0190f5c2a1b47cc3a9d2e8b1c4f6a7d8")
        .arg(format!("1:{tier_id}:3"))
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let tally = assert_invariants(&app, event_id, None).await;
    assert_eq!(tally.tiers[&tier_id].in_flight, 3);
    assert_eq!(tally.tiers[&tier_id].remaining, 5);
    for _ in 0..2 {
        app.sweeper()
            .run_once(OffsetDateTime::now_utc())
            .await
            .unwrap();
    }
    let tally = assert_invariants(&app, event_id, None).await;
    assert_eq!(tally.tiers[&tier_id].in_flight, 0);
    assert_eq!(tally.tiers[&tier_id].remaining, 8, "landed once, not twice");
    let bucket1: i64 = redis::cmd("GET")
        .arg(app.keys(event_id, 1).await.stock(tier_id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(bucket1, 4 + 3);
}
