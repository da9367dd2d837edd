//! Orders: queued → awaiting payment → paid / cancelled / expired, ownership,
//! admin stats and the winners export.

use std::collections::HashSet;

use rushgate_core::Role;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::buy::open_sale;
use crate::helpers::spawn_app;
use crate::invariants::assert_invariants;

fn rfc3339(v: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[sqlx::test]
async fn an_order_goes_from_queued_to_paid(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (alice_id, alice) = app.user(Role::Customer).await;
    let (_, bob) = app.user(Role::Customer).await;
    let bought = app
        .buy(
            &app.purchase_url(event_id, &alice).await,
            &alice,
            tier_id,
            2,
        )
        .await;
    let id = bought.body["reservation_id"].as_str().unwrap().to_owned();
    let path = format!("/api/orders/{id}");

    let queued = app.get(&path, Some(&alice)).await;
    assert_eq!(queued.status, 200, "{:?}", queued.body);
    assert_eq!(queued.body["status"], "queued");
    assert_eq!(queued.body["user_id"], alice_id);
    assert_eq!(queued.body["amount_cents"], 8400);
    app.get(&path, Some(&bob))
        .await
        .assert_error(404, "not_found");
    app.post(&format!("{path}/pay"), Some(&alice), json!({}))
        .await
        .assert_error(409, "invalid_state");
    // My orders lists it while it is queued, and only to its owner.
    let mine = app.get("/api/me/orders", Some(&alice)).await;
    assert_eq!(mine.body["orders"], json!([queued.body]), "{:?}", mine.body);
    assert_eq!(
        app.get("/api/me/orders", Some(&bob)).await.body["orders"],
        json!([])
    );

    assert_eq!(app.drain_orders().await, 1);
    let mine = app.get("/api/me/orders", Some(&alice)).await;
    let listed = mine.body["orders"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "written, and listed once: {listed:?}");
    assert_eq!(listed[0]["status"], "awaiting_payment");
    let awaiting = app.get(&path, Some(&alice)).await;
    assert_eq!(awaiting.body["status"], "awaiting_payment");
    let window = rfc3339(&awaiting.body["expires_at"]) - OffsetDateTime::now_utc();
    assert!(
        window.whole_seconds() > 290 && window.whole_seconds() <= 300,
        "{window}"
    );
    assert!(awaiting.body["paid_at"].is_null());
    app.post(&format!("{path}/pay"), Some(&bob), json!({}))
        .await
        .assert_error(404, "not_found");

    let paid = app
        .post(&format!("{path}/pay"), Some(&alice), json!({}))
        .await;
    assert_eq!(paid.status, 200, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert!(paid.body["paid_at"].is_string());
    let again = app
        .post(&format!("{path}/pay"), Some(&alice), json!({}))
        .await;
    assert_eq!(again.body, paid.body, "paying twice is paying once");
    app.post(&format!("{path}/cancel"), Some(&alice), json!({}))
        .await
        .assert_error(409, "invalid_state");

    let mine = app.get("/api/me/orders", Some(&alice)).await;
    assert_eq!(mine.body["orders"][0]["id"], id.as_str());
    assert!(
        app.get("/api/me/orders", Some(&bob)).await.body["orders"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let ids = HashSet::from([Uuid::parse_str(&id).unwrap()]);
    let tally = assert_invariants(&app, event_id, Some(&ids)).await;
    assert_eq!(tally.tiers[&tier_id].paid, 2);
}

#[sqlx::test]
async fn cancelling_gives_the_units_back_once(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (_, alice) = app.user(Role::Customer).await;
    let bought = app
        .buy(
            &app.purchase_url(event_id, &alice).await,
            &alice,
            tier_id,
            2,
        )
        .await;
    let id = bought.body["reservation_id"].as_str().unwrap().to_owned();
    app.drain_orders().await;

    let cancel = format!("/api/orders/{id}/cancel");
    let cancelled = app.post(&cancel, Some(&alice), json!({})).await;
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(
        app.post(&cancel, Some(&alice), json!({})).await.body,
        cancelled.body
    );
    app.post(&format!("/api/orders/{id}/pay"), Some(&alice), json!({}))
        .await
        .assert_error(409, "invalid_state");
    // A drain afterwards finds nothing left to return.
    let outcome = app
        .sweeper()
        .run_once(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(outcome.released, 0);
    let tally = assert_invariants(&app, event_id, None).await;
    assert_eq!(tally.tiers[&tier_id].remaining, 10);
    assert_eq!(tally.tiers[&tier_id].returned, 2);

    // The units and the user's allowance are back: she can buy again.
    let again = app
        .buy(
            &app.purchase_url(event_id, &alice).await,
            &alice,
            tier_id,
            2,
        )
        .await;
    assert_eq!(again.status, 202);
}

#[sqlx::test]
async fn paying_after_the_window_is_refused_and_expires_the_order(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (_, alice) = app.user(Role::Customer).await;
    let bought = app
        .buy(
            &app.purchase_url(event_id, &alice).await,
            &alice,
            tier_id,
            1,
        )
        .await;
    let id = bought.body["reservation_id"].as_str().unwrap().to_owned();
    app.drain_orders().await;
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.db)
        .await
        .unwrap();
    app.post(&format!("/api/orders/{id}/pay"), Some(&alice), json!({}))
        .await
        .assert_error(410, "expired");
    assert_eq!(
        app.get(&format!("/api/orders/{id}"), Some(&alice))
            .await
            .body["status"],
        "expired"
    );
    app.post(&format!("/api/orders/{id}/cancel"), Some(&alice), json!({}))
        .await
        .assert_error(410, "expired");
    let outcome = app
        .sweeper()
        .run_once(OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(outcome.released, 1);
    let tally = assert_invariants(&app, event_id, None).await;
    assert_eq!(tally.tiers[&tier_id].remaining, 10);
}

#[sqlx::test]
async fn bad_order_requests_change_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (event_id, tier_id) = open_sale(&app, 10, 2, 1).await;
    let (_, alice) = app.user(Role::Customer).await;
    app.buy(
        &app.purchase_url(event_id, &alice).await,
        &alice,
        tier_id,
        1,
    )
    .await;
    app.drain_orders().await;
    let before = app.snapshot().await;
    app.get("/api/orders/not-a-uuid", Some(&alice))
        .await
        .assert_error(400, "invalid_input");
    let unknown = Uuid::now_v7();
    app.get(&format!("/api/orders/{unknown}"), Some(&alice))
        .await
        .assert_error(404, "not_found");
    app.post(
        &format!("/api/orders/{unknown}/pay"),
        Some(&alice),
        json!({}),
    )
    .await
    .assert_error(404, "not_found");
    app.post(
        &format!("/api/orders/{unknown}/cancel"),
        Some(&alice),
        json!({}),
    )
    .await
    .assert_error(404, "not_found");
    app.get("/api/me/orders", None)
        .await
        .assert_error(401, "unauthenticated");
    app.post(&format!("/api/orders/{unknown}/pay"), None, json!({}))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn admin_stats_and_winners_export(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let (_, customer) = app.user(Role::Customer).await;
    let mut body = crate::helpers::event_body(-5, 3600);
    body["tiers"] = json!([{"name": "Front, \"VIP\"", "price_cents": 9900, "stock": 5}]);
    let event = app.approved_event(&operator, &admin, body).await;
    let event_id = event["id"].as_i64().unwrap();
    let tier_id = event["tiers"][0]["id"].as_i64().unwrap();

    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, buyer) = app.user(Role::Customer).await;
        let bought = app
            .buy(
                &app.purchase_url(event_id, &buyer).await,
                &buyer,
                tier_id,
                1,
            )
            .await;
        ids.push((
            buyer,
            bought.body["reservation_id"].as_str().unwrap().to_owned(),
        ));
    }
    let stats_path = format!("/api/admin/events/{event_id}/stats");
    let queued = app.get(&stats_path, Some(&admin)).await;
    assert_eq!(queued.body["tiers"][0]["reserved"], 3, "{:?}", queued.body);
    app.drain_orders().await;
    app.post(
        &format!("/api/orders/{}/pay", ids[0].1),
        Some(&ids[0].0),
        json!({}),
    )
    .await;
    app.post(
        &format!("/api/orders/{}/cancel", ids[1].1),
        Some(&ids[1].0),
        json!({}),
    )
    .await;
    app.state.funnel.flush(&app.redis).await.unwrap();

    let stats = app.get(&stats_path, Some(&operator)).await;
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    let tier = &stats.body["tiers"][0];
    assert_eq!(
        (
            tier["stock_total"].as_i64(),
            tier["remaining"].as_i64(),
            tier["reserved"].as_i64()
        ),
        (Some(5), Some(3), Some(1))
    );
    assert_eq!(
        (tier["paid"].as_i64(), tier["cancelled"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(stats.body["funnel"]["forwarded"], 3);
    assert_eq!(stats.body["funnel"]["reserved"], 3);
    app.get(&stats_path, Some(&customer))
        .await
        .assert_error(403, "forbidden");

    let csv = app
        .client
        .get(app.url(&format!("/api/admin/events/{event_id}/orders.csv")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "order_id,user_id,username,tier,quantity,amount_cents,status,created_at,paid_at"
    );
    assert_eq!(lines.len(), 3, "paid and awaiting orders only: {text}");
    assert!(text.contains(&ids[0].1) && text.contains(&ids[2].1) && !text.contains(&ids[1].1));
    assert!(
        text.contains("\"Front, \"\"VIP\"\"\""),
        "quoted per RFC 4180: {text}"
    );
}

/// Every cell of a CSV export as a spreadsheet will see it: a cell that
/// begins with a formula character carries a `'` in front (OWASP).
#[sqlx::test]
async fn exports_never_hold_a_formula(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    // Tab and CR cannot begin a stored name (names are trimmed and refuse
    // control characters); `csv_file`'s unit test covers them.
    let risky = ["=HYPERLINK(\"http://x\")", "+SUM(A1)", "-2+3", "@SUM(1)"];
    let mut body = crate::helpers::event_body(-5, 3600);
    body["tiers"] = risky
        .iter()
        .map(|name| json!({"name": name, "price_cents": 100, "stock": 5}))
        .collect();
    body["per_user_limit"] = json!(10);
    let event = app.approved_event(&operator, &admin, body).await;
    let event_id = event["id"].as_i64().unwrap();
    // A username may begin with '-' (letters, digits, '_', '.', '-').
    let buyer_id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) VALUES ('-cmd', 'x', 'customer') RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let buyer = app.token_for(buyer_id, Role::Customer);
    for tier in event["tiers"].as_array().unwrap() {
        let url = app.purchase_url(event_id, &buyer).await;
        let bought = app.buy(&url, &buyer, tier["id"].as_i64().unwrap(), 1).await;
        assert_eq!(bought.status, 202, "{:?}", bought.body);
    }
    app.drain_orders().await;

    let text = app
        .client
        .get(app.url(&format!("/api/admin/events/{event_id}/orders.csv")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), risky.len(), "{text}");
    for cell in rows.iter().flatten() {
        let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
        assert!(!formula, "cell {cell:?} would run as a formula: {text}");
    }
    let tiers: HashSet<&str> = rows.iter().map(|r| &r[3]).collect();
    let expected: HashSet<String> = risky.iter().map(|n| format!("'{n}")).collect();
    assert_eq!(tiers, expected.iter().map(String::as_str).collect());
    assert!(rows.iter().all(|r| &r[2] == "'-cmd"), "{text}");
}
