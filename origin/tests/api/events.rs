//! Public events: visibility, phases from the clock, purchase URLs, the read cache.

use std::time::Duration;

use redis::AsyncCommands as _;
use rushgate_core::Role;
use rushgate_core::purchase;
use rushgate_core::token::PurchaseClaims;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::helpers::{TestApp, event_body, eventually, spawn_app};

async fn staff(app: &TestApp) -> (String, String) {
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    (operator, admin)
}

fn ids(list: &Value) -> Vec<i64> {
    list["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[sqlx::test]
async fn only_approved_visible_events_are_public(db: PgPool) {
    let app = spawn_app(db).await;
    let (operator, admin) = staff(&app).await;
    let open = app
        .approved_event(&operator, &admin, event_body(-10, 3600))
        .await;
    let mut hidden_body = event_body(3600, 7200);
    hidden_body["visible_at"] = json!("2099-01-01T00:00:00Z");
    hidden_body["opens_at"] = json!("2099-01-02T00:00:00Z");
    hidden_body["closes_at"] = json!("2099-01-03T00:00:00Z");
    let hidden = app.approved_event(&operator, &admin, hidden_body).await;
    let draft = app
        .post("/api/admin/events", Some(&operator), event_body(-10, 3600))
        .await;
    let pending = app
        .post("/api/admin/events", Some(&operator), event_body(-10, 3600))
        .await;
    let pending_id = pending.body["id"].as_i64().unwrap();
    app.post(
        &format!("/api/admin/events/{pending_id}/submit"),
        Some(&operator),
        json!({}),
    )
    .await;

    let list = app.get("/api/events", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(ids(&list.body), vec![open["id"].as_i64().unwrap()]);
    let summary = &list.body["events"][0];
    assert_eq!(summary["phase"], "open");
    assert_eq!(summary["tiers"][0]["remaining"], 10);
    assert_eq!(summary["tiers"][1]["stock_total"], 5);

    for id in [&hidden["id"], &draft.body["id"], &pending.body["id"]] {
        app.get(&format!("/api/events/{id}"), None)
            .await
            .assert_error(404, "not_found");
    }
    let detail = app.get(&format!("/api/events/{}", open["id"]), None).await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.body["phase"], "open");
    assert_eq!(detail.body["status"], "approved");
    assert_eq!(detail.body["per_order_limit"], 2);
    assert_eq!(detail.body["payment_window_s"], 300);
    assert_eq!(detail.body["dedup_window_s"], 10);
    assert_eq!(detail.body["admission"], json!({"rounds": [1.0]}));
    assert!(detail.body["server_time"].is_string());
    app.get("/api/events/0", None)
        .await
        .assert_error(400, "invalid_input");
    app.get("/api/events/99999", None)
        .await
        .assert_error(404, "not_found");
}

#[sqlx::test]
async fn phases_come_from_the_clock_and_the_stock(db: PgPool) {
    let app = spawn_app(db).await;
    let (operator, admin) = staff(&app).await;
    let upcoming = app
        .approved_event(&operator, &admin, event_body(3600, 7200))
        .await;
    let closed = app
        .approved_event(&operator, &admin, event_body(-7200, -10))
        .await;
    let sold_out = app
        .approved_event(&operator, &admin, event_body(-10, 3600))
        .await;
    assert_eq!(upcoming["phase"], "upcoming");
    assert_eq!(closed["phase"], "closed");
    assert_eq!(sold_out["phase"], "open");

    let id = sold_out["id"].as_i64().unwrap();
    let mut conn = app.redis.conn.clone();
    for tier in sold_out["tiers"].as_array().unwrap() {
        let key = app.keys(id, 0).await.stock(tier["id"].as_i64().unwrap());
        let _: () = conn.set(key, 0).await.unwrap();
    }
    let detail = app.get(&format!("/api/events/{id}"), None).await;
    assert_eq!(detail.body["phase"], "sold_out");
    assert_eq!(detail.body["tiers"][0]["remaining"], 0);
}

#[sqlx::test]
async fn purchase_urls_only_once_open(db: PgPool) {
    let app = spawn_app(db).await;
    let (operator, admin) = staff(&app).await;
    let (user_id, customer) = app.user(Role::Customer).await;
    let upcoming = app
        .approved_event(&operator, &admin, event_body(3600, 7200))
        .await;
    let open = app
        .approved_event(&operator, &admin, event_body(-10, 3600))
        .await;
    let closed = app
        .approved_event(&operator, &admin, event_body(-7200, -10))
        .await;
    let path = |e: &Value| format!("/api/events/{}/purchase-url", e["id"]);
    let before = app.snapshot().await;

    app.post(&path(&open), None, json!({}))
        .await
        .assert_error(401, "unauthenticated");
    let early = app.post(&path(&upcoming), Some(&customer), json!({})).await;
    early.assert_error(403, "not_open");
    assert_eq!(early.body["opens_at"], upcoming["opens_at"]);
    app.post(&path(&closed), Some(&customer), json!({}))
        .await
        .assert_error(410, "closed");
    app.post("/api/events/4242/purchase-url", Some(&customer), json!({}))
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.snapshot().await, before, "refusals change nothing");

    let issued = app.post(&path(&open), Some(&customer), json!({})).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    let url = issued.body["url"].as_str().unwrap();
    let (event_id, token) = purchase::parse_path(url).unwrap();
    assert_eq!(event_id, open["id"].as_i64().unwrap());
    let claims: PurchaseClaims = app
        .state
        .keys
        .verify(token, OffsetDateTime::now_utc().unix_timestamp())
        .unwrap();
    assert_eq!(claims.user_id, user_id);
    let expires_at = OffsetDateTime::parse(
        issued.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires_at.unix_timestamp(), claims.exp);
    let again = app.post(&path(&open), Some(&customer), json!({})).await;
    assert_ne!(
        again.body["url"], issued.body["url"],
        "fresh nonce each time"
    );

    let id = open["id"].as_i64().unwrap();
    let mut conn = app.redis.conn.clone();
    for tier in open["tiers"].as_array().unwrap() {
        let key = app.keys(id, 0).await.stock(tier["id"].as_i64().unwrap());
        let _: () = conn.set(key, 0).await.unwrap();
    }
    app.post(&path(&open), Some(&customer), json!({}))
        .await
        .assert_error(409, "sold_out");
}

#[sqlx::test]
async fn server_time_is_now(db: PgPool) {
    let app = spawn_app(db).await;
    let answer = app.get("/api/time", None).await;
    let now = OffsetDateTime::parse(
        answer.body["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((OffsetDateTime::now_utc() - now).abs() < time::Duration::seconds(5));
}

#[sqlx::test]
async fn cache_loads_each_key_once_under_concurrency(db: PgPool) {
    let app = spawn_app(db).await;
    let (operator, admin) = staff(&app).await;
    let event = app
        .approved_event(&operator, &admin, event_body(-10, 3600))
        .await;
    let cache = &app.state.events;
    let id = event["id"].as_i64().unwrap();
    cache.invalidate(id).await;

    let base = cache.loads();
    let gets = (0..64).map(|_| cache.get(id));
    let results = futures::future::join_all(gets).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().is_some()));
    assert_eq!(cache.loads() - base, 1, "one load for 64 concurrent misses");

    let base = cache.loads();
    let unknown = (0..64).map(|_| cache.get(987_654));
    let results = futures::future::join_all(unknown).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().is_none()));
    for _ in 0..10 {
        assert!(cache.get(987_654).await.unwrap().is_none());
    }
    assert_eq!(cache.loads() - base, 1, "unknown ids are remembered");
}

#[sqlx::test]
async fn cache_serves_stale_then_refreshes_in_the_background(db: PgPool) {
    let app = spawn_app(db).await;
    let (operator, admin) = staff(&app).await;
    let event = app
        .approved_event(&operator, &admin, event_body(-10, 3600))
        .await;
    let id = event["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/events/{id}"), None).await.body["name"],
        "Spring Tour"
    );

    // A change this process was not told about, as if made by another replica.
    sqlx::query("UPDATE events SET name = 'Renamed' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let loads = app.state.events.loads();
    let first = app.get(&format!("/api/events/{id}"), None).await;
    assert_eq!(
        first.body["name"], "Spring Tour",
        "the cached copy is served at once"
    );
    eventually(Duration::from_secs(10), || async {
        app.get(&format!("/api/events/{id}"), None).await.body["name"] == "Renamed"
    })
    .await;
    assert!(
        app.state.events.loads() > loads,
        "refreshed by a background load"
    );
}
