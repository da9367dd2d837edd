//! Webhooks end to end: a crowd's orders delivered to a real HTTP receiver at
//! the endpoint's pace, signed and in order per order; a receiver that fails
//! and recovers, and one whose deliveries are dead-lettered and retried from
//! the console API. (A worker killed mid-delivery: the system tests.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use futures::StreamExt as _;
use rushgate_client::eventually;
use rushgate_core::Role;
use rushgate_core::webhook::{self, EventType};
use rushgate_dev::receiver::{Received, Receiver, densest_second, densest_within};
use rushgate_origin::webhooks::WebhookConfig;
use rushgate_origin::webhooks::deliver::Deliverer;
use rushgate_origin::worker::run_loop;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::buy::open_sale;
use crate::helpers::{TestApp, spawn_app};
use crate::invariants::assert_invariants;

const SECRET: &str = "a-test-secret-of-some-length";

#[derive(clap::Parser)]
struct Probe {
    #[command(flatten)]
    config: WebhookConfig,
}

/// The delivery settings of a test: the receivers are on loopback, unless
/// `args` say otherwise.
fn config(args: &[&str]) -> WebhookConfig {
    let mut all = vec!["test"];
    if !args.contains(&"--webhook-allow-private") {
        all.extend(["--webhook-allow-private", "true"]);
    }
    all.extend_from_slice(args);
    Probe::parse_from(all).config
}

/// The delivery worker's loop, as `serve` runs it, until dropped.
struct Running(CancellationToken);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn run(db: &PgPool, config: &WebhookConfig) -> Running {
    let deliverer = Deliverer::new(db.clone(), config).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(run_loop(
        "webhooks",
        stop.clone(),
        Duration::from_millis(20),
        move || {
            let d = deliverer.clone();
            async move { Ok(d.run_once().await? > 0) }
        },
    ));
    Running(stop)
}

/// Adds an endpoint of the event's own through the console API.
async fn add_endpoint(
    app: &TestApp,
    event_id: i64,
    operator: &str,
    body: serde_json::Value,
) -> i64 {
    let answer = app
        .post(
            &format!("/api/admin/events/{event_id}/webhooks"),
            Some(operator),
            body,
        )
        .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.body["id"].as_i64().unwrap()
}

/// `n` customers buy one unit each, a hundred at a time (below the origin's
/// in-flight limit); returns their tokens and orders, written to PostgreSQL.
async fn crowd_buys(
    app: &Arc<TestApp>,
    event_id: i64,
    tier_id: i64,
    n: usize,
) -> Vec<(String, Uuid)> {
    let mut buyers = Vec::new();
    for _ in 0..n {
        let (_, token) = app.user(Role::Customer).await;
        let url = app.purchase_url(event_id, &token).await;
        buyers.push((token, url));
    }
    let bought: Vec<(String, Uuid)> = futures::stream::iter(buyers)
        .map(|(token, url)| {
            let app = app.clone();
            async move {
                let answer = app.buy(&url, &token, tier_id, 1).await;
                assert_eq!(answer.status, 202, "{:?}", answer.body);
                let id = Uuid::parse_str(answer.body["reservation_id"].as_str().unwrap()).unwrap();
                (token, id)
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    app.drain_orders().await;
    bought
}

/// Every recorded order event: id → (order, type).
async fn recorded_events(db: &PgPool) -> HashMap<Uuid, (Uuid, String)> {
    let rows: Vec<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT id, order_id, type FROM order_events ORDER BY seq")
            .fetch_all(db)
            .await
            .unwrap();
    rows.into_iter().map(|(id, o, t)| (id, (o, t))).collect()
}

fn acknowledged_ids(received: &[Received]) -> HashSet<Uuid> {
    received
        .iter()
        .filter(|r| r.status == 204)
        .filter_map(|r| r.event.as_ref().map(|e| e.id))
        .collect()
}

/// Each order's event types in the order they arrived (acknowledged ones).
fn arrival_order(received: &[Received]) -> HashMap<Uuid, Vec<EventType>> {
    let mut by_order: HashMap<Uuid, Vec<EventType>> = HashMap::new();
    for r in received.iter().filter(|r| r.status == 204) {
        let event = r.event.as_ref().unwrap();
        by_order.entry(event.data.id).or_default().push(event.kind);
    }
    by_order
}

#[sqlx::test]
async fn a_crowd_s_orders_are_delivered_at_the_endpoint_s_pace_signed_and_in_order(db: PgPool) {
    let app = Arc::new(spawn_app(db).await);
    let (event_id, tier_id) = open_sale(&app, 600, 1, 4).await;
    let (_, operator) = app.user(Role::Operator).await;
    // The event's owner is another operator: an admin manages any event.
    let (_, admin) = app.user(Role::Admin).await;
    let refused = app
        .post(
            &format!("/api/admin/events/{event_id}/webhooks"),
            Some(&operator),
            json!({"url": "http://127.0.0.1:1/"}),
        )
        .await;
    refused.assert_error(403, "forbidden");

    let receiver = Receiver::start(SECRET).await.unwrap();
    let endpoint = add_endpoint(
        &app,
        event_id,
        &admin,
        json!({"url": receiver.url(), "secret": SECRET, "rate_per_s": 50, "burst": 5}),
    )
    .await;

    let bought = crowd_buys(&app, event_id, tier_id, 500).await;
    // A hundred pay, fifty cancel: three or four changes per order.
    for (token, id) in bought.iter().take(100) {
        let paid = app
            .post(&format!("/api/orders/{id}/pay"), Some(token), json!({}))
            .await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
    }
    for (token, id) in bought.iter().skip(100).take(50) {
        let cancelled = app
            .post(&format!("/api/orders/{id}/cancel"), Some(token), json!({}))
            .await;
        assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    }
    let events = recorded_events(&app.db).await;
    assert_eq!(events.len(), 500 * 2 + 100 + 50);

    let _worker = run(&app.db, &config(&["--webhook-secret", "unused"]));
    eventually(Duration::from_secs(90), || async {
        acknowledged_ids(&receiver.received()).len() == events.len()
    })
    .await;

    let received = receiver.received();
    assert!(
        received.iter().all(|r| r.signed),
        "every signature verifies"
    );
    assert_eq!(
        acknowledged_ids(&received),
        events.keys().copied().collect()
    );
    // Counted at the receiver, where a busy machine can hold sends back and
    // let them arrive together: over any five seconds, the rate and the
    // burst with half a second of such slack; over any one second, never the
    // hundreds that broken pacing shows (the worker may send 64 at once).
    let five_s = densest_within(&received, Duration::from_secs(5));
    assert!(
        five_s <= 5 * 50 + 5 + 25,
        "{five_s} deliveries within five seconds"
    );
    let densest = densest_second(&received);
    assert!(densest <= 2 * 50, "{densest} deliveries within one second");
    // Each order's changes arrived in the order they happened.
    for (order, kinds) in arrival_order(&received) {
        let mut expected = vec![EventType::Queued, EventType::AwaitingPayment];
        if let Some(last) = kinds.get(2) {
            assert!(
                matches!(last, EventType::Paid | EventType::Cancelled),
                "{order}"
            );
            expected.push(*last);
        }
        assert_eq!(kinds, expected, "{order}");
    }
    // A delivery's data is the order right after the change.
    for r in &received {
        let event = r.event.as_ref().unwrap();
        assert_eq!(event.data.status, event.kind.status());
        assert_eq!(
            events[&event.id],
            (event.data.id, event.kind.as_str().to_owned())
        );
    }
    // Acknowledgements are recorded in batches, a moment after they arrive.
    let listed = crate::helpers::until_answer(
        &app,
        &format!("/api/admin/events/{event_id}/webhooks"),
        &admin,
        |body| body["endpoints"][0]["delivered"] == events.len(),
    )
    .await;
    let mine = &listed["endpoints"][0];
    assert_eq!(mine["id"], endpoint);
    assert_eq!(mine["pending"], 0);
    assert!(mine.get("secret").is_none(), "the secret is answered once");
    assert_invariants(&app, event_id, None).await;
}

#[sqlx::test]
async fn a_failing_receiver_is_retried_with_backoff_and_dead_letters_retry_from_the_console(
    db: PgPool,
) {
    let app = Arc::new(spawn_app(db).await);
    let (event_id, tier_id) = open_sale(&app, 20, 1, 1).await;
    let (_, admin) = app.user(Role::Admin).await;
    let flaky = Receiver::start(SECRET).await.unwrap();
    let down = Receiver::start(SECRET).await.unwrap();
    flaky.fail_with(Some(503));
    down.fail_with(Some(500));
    let body = |url: String| json!({"url": url, "secret": SECRET, "rate_per_s": 200});
    let flaky_id = add_endpoint(&app, event_id, &admin, body(flaky.url())).await;
    let down_id = add_endpoint(&app, event_id, &admin, body(down.url())).await;

    crowd_buys(&app, event_id, tier_id, 20).await;
    let events = recorded_events(&app.db).await;
    assert_eq!(events.len(), 40);
    let settings = [
        "--webhook-backoff-ms",
        "200",
        "--webhook-backoff-max-ms",
        "1000",
        "--webhook-max-attempts",
        "6",
    ];
    let _worker = run(&app.db, &config(&settings));

    // The flaky receiver is down for three tries of each first event.
    eventually(Duration::from_secs(30), || async {
        let mut tries: HashMap<Uuid, usize> = HashMap::new();
        for r in flaky.received() {
            *tries.entry(r.event.unwrap().id).or_default() += 1;
        }
        tries.len() == 20 && tries.values().all(|&n| n >= 3)
    })
    .await;
    let listed = app
        .get(
            &format!("/api/admin/events/{event_id}/webhooks"),
            Some(&admin),
        )
        .await;
    let flaky_row = listed.body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == flaky_id)
        .unwrap()
        .clone();
    assert_eq!(flaky_row["retrying"], 20, "{flaky_row}");
    assert_eq!(flaky_row["dead"], 0, "{flaky_row}");
    flaky.fail_with(None);
    eventually(Duration::from_secs(30), || async {
        acknowledged_ids(&flaky.received()).len() == events.len()
    })
    .await;
    // Nothing lost, and each retry waited at least half its nominal backoff
    // (the jitter's floor), and not much more than all of it.
    let mut arrivals: HashMap<Uuid, Vec<time::OffsetDateTime>> = HashMap::new();
    for r in flaky.received() {
        arrivals.entry(r.event.unwrap().id).or_default().push(r.at);
    }
    for times in arrivals.values() {
        for (failures, pair) in times.windows(2).enumerate() {
            let gap = (pair[1] - pair[0]).whole_milliseconds() as u64;
            let floor = webhook::backoff_ms(failures as u32 + 1, 200, 1000, 0.0);
            let nominal = webhook::backoff_ms(failures as u32 + 1, 200, 1000, 1.0);
            assert!(
                gap >= floor,
                "try {} came {gap} ms after the last",
                failures + 2
            );
            assert!(
                gap <= nominal + 1500,
                "try {} came {gap} ms after the last",
                failures + 2
            );
        }
    }
    for kinds in arrival_order(&flaky.received()).values() {
        assert_eq!(kinds, &[EventType::Queued, EventType::AwaitingPayment]);
    }

    // The other endpoint never answered: each order's first event is dead
    // after six tries, and holds its second back.
    let dead_url = format!("/api/admin/events/{event_id}/webhooks/dead");
    let dead = crate::helpers::until_answer(&app, &dead_url, &admin, |body| {
        body["dead"].as_array().unwrap().len() == 20
    })
    .await;
    for letter in dead["dead"].as_array().unwrap() {
        assert_eq!(letter["endpoint_id"], down_id);
        assert_eq!(letter["type"], "order.queued");
        assert_eq!(letter["attempts"], 6);
        assert_eq!(letter["last_error"], "HTTP 500");
    }
    assert_eq!(down.received().len(), 20 * 6);
    let flaky_delivered = |body: &serde_json::Value| {
        body["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == flaky_id && e["delivered"] == 40)
    };
    let listed = crate::helpers::until_answer(
        &app,
        &format!("/api/admin/events/{event_id}/webhooks"),
        &admin,
        flaky_delivered,
    )
    .await;
    let row = |id: i64| {
        listed["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(row(flaky_id)["delivered"], 40);
    assert_eq!(row(down_id)["dead"], 20);
    assert_eq!(row(down_id)["pending"], 20);
    assert_eq!(
        row(down_id)["retrying"],
        0,
        "held back behind the dead, never tried"
    );
    // Held back until a retry: not due, so no worker keeps asking for them.
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries \
         WHERE endpoint_id = $1 AND state = 'pending' AND next_at = 'infinity'",
    )
    .bind(down_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(held, 20);

    // Back up, and retried from the console: everything arrives, in order.
    down.fail_with(None);
    let retried = app
        .post(
            &format!("/api/admin/events/{event_id}/webhooks/{down_id}/retry"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(retried.body["requeued"], 20);
    eventually(Duration::from_secs(30), || async {
        acknowledged_ids(&down.received()).len() == events.len()
    })
    .await;
    for kinds in arrival_order(&down.received()).values() {
        assert_eq!(kinds, &[EventType::Queued, EventType::AwaitingPayment]);
    }
    let dead = app.get(&dead_url, Some(&admin)).await;
    assert_eq!(dead.body["dead"], json!([]));
}

#[sqlx::test]
async fn bad_endpoints_are_refused_and_change_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, _) = open_sale(&app, 5, 1, 1).await;
    let (_, admin) = app.user(Role::Admin).await;
    let (_, customer) = app.user(Role::Customer).await;
    let url = format!("/api/admin/events/{event_id}/webhooks");
    let before = app.db_snapshot().await;
    for (body, field) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "http://u:p@example.com/"}), "url"),
        (
            json!({"url": "http://example.com/", "secret": "short"}),
            "secret",
        ),
        (json!({"url": "http://example.com/", "types": []}), "types"),
        (
            json!({"url": "http://example.com/", "rate_per_s": 0}),
            "rate_per_s",
        ),
        (
            json!({"url": "http://example.com/", "rate_per_s": 10, "burst": 11}),
            "burst",
        ),
    ] {
        let answer = app.post(&url, Some(&admin), body.clone()).await;
        answer.assert_error(400, "invalid_input");
        assert_eq!(answer.body["field"], field, "{body}");
    }
    let typo = app
        .post(
            &url,
            Some(&admin),
            json!({"url": "http://example.com/", "types": ["order.shipped"]}),
        )
        .await;
    typo.assert_error(400, "invalid_input");
    app.post(&url, Some(&customer), json!({"url": "http://example.com/"}))
        .await
        .assert_error(403, "forbidden");
    app.post(&url, None, json!({"url": "http://example.com/"}))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(app.db_snapshot().await, before);

    // A good one answers its generated secret once; disabling keeps it listed.
    let created = app
        .post(
            &url,
            Some(&admin),
            json!({"url": "https://example.com/hook", "types": ["order.paid"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["secret"].as_str().unwrap().len(), 64);
    assert_eq!(created.body["types"], json!(["order.paid"]));
    assert_eq!(created.body["burst"], 5);
    let id = created.body["id"].as_i64().unwrap();
    let gone = app
        .request(
            reqwest::Method::DELETE,
            &format!("{url}/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(gone.status, 204);
    let listed = app.get(&url, Some(&admin)).await;
    assert_eq!(listed.body["endpoints"][0]["enabled"], false);
    let missing = app
        .request(
            reqwest::Method::DELETE,
            &format!("{url}/999999"),
            Some(&admin),
            None,
        )
        .await;
    missing.assert_error(404, "not_found");
}

#[sqlx::test]
async fn delivered_rows_past_the_retention_are_pruned_and_nothing_else(db: PgPool) {
    let app = Arc::new(spawn_app(db).await);
    let (event_id, tier_id) = open_sale(&app, 10, 1, 1).await;
    let (_, admin) = app.user(Role::Admin).await;
    add_endpoint(
        &app,
        event_id,
        &admin,
        json!({"url": "http://127.0.0.1:9/hooks", "secret": SECRET}),
    )
    .await;
    crowd_buys(&app, event_id, tier_id, 4).await;
    // Eight deliveries: two delivered 40 days ago, one yesterday, one dead
    // for 40 days, four waiting.
    let set = |sql: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query(sql).execute(&db).await.unwrap();
        }
    };
    set("UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now() - interval '40 days' \
         WHERE event_seq IN (SELECT event_seq FROM webhook_deliveries ORDER BY event_seq LIMIT 2)")
    .await;
    set("UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now() - interval '1 day' \
         WHERE event_seq = (SELECT event_seq FROM webhook_deliveries ORDER BY event_seq OFFSET 2 LIMIT 1)")
    .await;
    set("UPDATE webhook_deliveries SET state = 'dead', next_at = now() - interval '40 days' \
         WHERE event_seq = (SELECT event_seq FROM webhook_deliveries ORDER BY event_seq OFFSET 3 LIMIT 1)")
    .await;
    let states = || async {
        sqlx::query_scalar::<_, String>("SELECT state FROM webhook_deliveries ORDER BY event_seq")
            .fetch_all(&app.db)
            .await
            .unwrap()
    };
    assert_eq!(states().await.len(), 8);

    let forever = Deliverer::new(app.db.clone(), &config(&["--webhook-keep-days", "0"])).unwrap();
    assert!(!forever.prune().await.unwrap());
    assert_eq!(states().await.len(), 8);
    let month = Deliverer::new(app.db.clone(), &config(&[])).unwrap();
    assert!(!month.prune().await.unwrap(), "less than a full batch");
    let left = states().await;
    assert_eq!(left.len(), 6);
    assert_eq!(left.iter().filter(|s| *s == "delivered").count(), 1);
    assert_eq!(left.iter().filter(|s| *s == "dead").count(), 1);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM order_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(events, 8, "the buyers' history stays");
}

/// Endpoints at private addresses are refused when added, whatever their
/// spelling; one that got into the database anyway (a deployment URL from
/// before, a name that now resolves to loopback) is never reached, and its
/// dead letters name no more than "unreachable".
#[sqlx::test]
async fn private_destinations_are_refused_and_never_reached(db: PgPool) {
    let mut app_config = crate::helpers::test_config();
    app_config.webhook_allow_private = false;
    let app = Arc::new(crate::helpers::spawn_app_configured(db, app_config).await);
    let (event_id, tier_id) = open_sale(&app, 10, 1, 1).await;
    let (_, admin) = app.user(Role::Admin).await;
    let url = format!("/api/admin/events/{event_id}/webhooks");
    let before = app.db_snapshot().await;
    for private in [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/",
        "http://192.168.0.1/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
    ] {
        let answer = app.post(&url, Some(&admin), json!({"url": private})).await;
        answer.assert_error(400, "invalid_input");
        assert_eq!(answer.body["field"], "url", "{private}");
    }
    assert_eq!(app.db_snapshot().await, before);

    // Two receivers on loopback, written straight into the table: by address
    // and by a name that resolves to loopback.
    let by_address = Receiver::start(SECRET).await.unwrap();
    let by_name = Receiver::start(SECRET).await.unwrap();
    let named = by_name.url().replace("127.0.0.1", "localhost");
    for target in [by_address.url(), named] {
        sqlx::query(
            "INSERT INTO webhook_endpoints (event_id, url, secret, types, rate_per_s, burst) \
             VALUES ($1, $2, $3, ARRAY['order.queued'], 50, 5)",
        )
        .bind(event_id)
        .bind(target)
        .bind(SECRET)
        .execute(&app.db)
        .await
        .unwrap();
    }
    crowd_buys(&app, event_id, tier_id, 3).await;
    let _worker = run(
        &app.db,
        &config(&[
            "--webhook-allow-private",
            "false",
            "--webhook-max-attempts",
            "2",
            "--webhook-backoff-ms",
            "100",
        ]),
    );
    let dead_url = format!("/api/admin/events/{event_id}/webhooks/dead");
    let dead = crate::helpers::until_answer(&app, &dead_url, &admin, |body| {
        body["dead"].as_array().unwrap().len() == 6
    })
    .await;
    for letter in dead["dead"].as_array().unwrap() {
        assert_eq!(letter["last_error"], "unreachable", "{letter}");
        assert_eq!(letter["attempts"], 2, "{letter}");
    }
    assert!(by_address.received().is_empty());
    assert!(by_name.received().is_empty());
}

/// The deployment's endpoints are listed without their query (where a token
/// may be); an event's own are shown to its managers as they wrote them.
#[sqlx::test]
async fn deployment_urls_are_shown_without_their_token(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, _) = open_sale(&app, 10, 1, 1).await;
    let (_, admin) = app.user(Role::Admin).await;
    sqlx::query(
        "INSERT INTO webhook_endpoints (event_id, url, types, rate_per_s, burst) \
         VALUES (NULL, 'https://hooks.example.com/in?token=s3cret', ARRAY['order.paid'], 50, 5)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let listed = app
        .get(
            &format!("/api/admin/events/{event_id}/webhooks"),
            Some(&admin),
        )
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let text = listed.body.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert_eq!(
        listed.body["endpoints"][0]["url"],
        "https://hooks.example.com/in?…"
    );
}
