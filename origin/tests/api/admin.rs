//! The review workflow and role checks, and bad input on every admin endpoint.

use redis::AsyncCommands as _;
use rushgate_core::Role;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{RedisServer, TestApp, event_body, spawn_app, spawn_app_with, test_config};

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

async fn public_ids(app: &TestApp) -> Vec<i64> {
    app.get("/api/events", None).await.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

#[sqlx::test]
async fn operator_drafts_admin_approves_customer_cannot(db: PgPool) {
    let app = spawn_app(db).await;
    let (operator_id, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let (_, customer) = app.user(Role::Customer).await;

    app.post("/api/admin/events", Some(&customer), event_body(60, 3600))
        .await
        .assert_error(403, "forbidden");
    let created = app
        .post("/api/admin/events", Some(&operator), event_body(60, 3600))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["status"], "draft");
    assert_eq!(created.body["phase"], "hidden");
    let id = id_of(&created.body);

    let mut edited = event_body(60, 3600);
    edited["name"] = json!("Spring Tour (extra date)");
    edited["tiers"] = json!([{"name": "GA", "price_cents": 2500, "stock": 40}]);
    let updated = app
        .put(&format!("/api/admin/events/{id}"), Some(&operator), edited)
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["name"], "Spring Tour (extra date)");
    assert_eq!(updated.body["tiers"][0]["stock_total"], 40);

    let submitted = app
        .post(
            &format!("/api/admin/events/{id}/submit"),
            Some(&operator),
            json!({}),
        )
        .await;
    assert_eq!(submitted.body["status"], "pending_review");
    assert!(public_ids(&app).await.is_empty());

    for who in [&customer, &operator] {
        app.post(
            &format!("/api/admin/events/{id}/approve"),
            Some(who),
            json!({}),
        )
        .await
        .assert_error(403, "forbidden");
    }
    app.put(
        &format!("/api/admin/events/{id}"),
        Some(&operator),
        event_body(60, 3600),
    )
    .await
    .assert_error(409, "invalid_state");

    let approved = app
        .post(
            &format!("/api/admin/events/{id}/approve"),
            Some(&admin),
            json!({"note": "looks good"}),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["review_note"], "looks good");
    assert_eq!(public_ids(&app).await, vec![id]);
    // The note is for the organiser: the public event does not carry it.
    let public = app.get(&format!("/api/events/{id}"), None).await;
    assert_eq!(public.status, 200, "{:?}", public.body);
    assert!(
        public.body.get("review_note").is_none(),
        "{:?}",
        public.body
    );

    let tier = approved.body["tiers"][0]["id"].as_i64().unwrap();
    let key = app.keys(id, 0).await.stock(tier);
    let stock: i64 = app.redis.conn.clone().get(&key).await.unwrap();
    assert_eq!(stock, 40);

    // Approving again is refused and never resets a sale in progress.
    let _: () = app.redis.conn.clone().set(&key, 7).await.unwrap();
    app.post(
        &format!("/api/admin/events/{id}/approve"),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_error(409, "invalid_state");
    let record = rushgate_origin::events::repo::get(&app.db, id)
        .await
        .unwrap()
        .unwrap();
    rushgate_origin::sale::stock::init(&app.redis, &app.state.replicas, &record)
        .await
        .unwrap();
    let stock: i64 = app.redis.conn.clone().get(&key).await.unwrap();
    assert_eq!(stock, 7);

    let mine = app.get("/api/admin/events", Some(&operator)).await;
    assert_eq!(mine.body["events"].as_array().unwrap().len(), 1);
    let (_, other_operator) = app.user(Role::Operator).await;
    let theirs = app.get("/api/admin/events", Some(&other_operator)).await;
    assert!(theirs.body["events"].as_array().unwrap().is_empty());
    let all = app.get("/api/admin/events", Some(&admin)).await;
    assert_eq!(all.body["events"][0]["id"], id);
    app.get("/api/admin/events", Some(&customer))
        .await
        .assert_error(403, "forbidden");
    let _ = operator_id;
}

#[sqlx::test]
async fn rejected_events_can_be_fixed_and_resubmitted(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let id = id_of(
        &app.post("/api/admin/events", Some(&operator), event_body(60, 3600))
            .await
            .body,
    );
    app.post(
        &format!("/api/admin/events/{id}/submit"),
        Some(&operator),
        json!({}),
    )
    .await;
    let rejected = app
        .post(
            &format!("/api/admin/events/{id}/reject"),
            Some(&admin),
            json!({"note": "venue missing"}),
        )
        .await;
    assert_eq!(rejected.body["status"], "rejected");
    assert_eq!(rejected.body["review_note"], "venue missing");
    app.post(
        &format!("/api/admin/events/{id}/approve"),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_error(409, "invalid_state");
    let fixed = app
        .put(
            &format!("/api/admin/events/{id}"),
            Some(&operator),
            event_body(60, 3600),
        )
        .await;
    assert_eq!(fixed.body["status"], "draft");
    assert!(fixed.body.get("review_note").is_none());
    let resubmitted = app
        .post(
            &format!("/api/admin/events/{id}/submit"),
            Some(&operator),
            json!({}),
        )
        .await;
    assert_eq!(resubmitted.body["status"], "pending_review");
    let cancelled = app
        .post(
            &format!("/api/admin/events/{id}/cancel"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
}

#[sqlx::test]
async fn operators_cannot_touch_each_others_events(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, alice) = app.user(Role::Operator).await;
    let (_, bob) = app.user(Role::Operator).await;
    let id = id_of(
        &app.post("/api/admin/events", Some(&alice), event_body(60, 3600))
            .await
            .body,
    );
    let before = app.snapshot().await;
    app.put(
        &format!("/api/admin/events/{id}"),
        Some(&bob),
        event_body(60, 3600),
    )
    .await
    .assert_error(403, "forbidden");
    app.post(
        &format!("/api/admin/events/{id}/submit"),
        Some(&bob),
        json!({}),
    )
    .await
    .assert_error(403, "forbidden");
    app.get(&format!("/api/admin/events/{id}"), Some(&bob))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn bad_event_input_changes_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let draft = id_of(
        &app.post("/api/admin/events", Some(&operator), event_body(60, 3600))
            .await
            .body,
    );
    let approved = id_of(
        &app.approved_event(&operator, &admin, event_body(60, 3600))
            .await,
    );
    let before = app.snapshot().await;

    let invalid: Vec<(&str, Value, &str)> = vec![
        ("name", json!(""), "name"),
        ("closes_at", json!("2000-01-01T00:00:00Z"), "closes_at"),
        ("opens_at", json!("not a time"), "opens_at"),
        ("per_user_limit", json!(0), "per_user_limit"),
        ("per_user_limit", json!("two"), "per_user_limit"),
        ("per_order_limit", json!(5), "per_order_limit"),
        ("payment_window_s", json!(1), "payment_window_s"),
        ("buckets", json!(0), "buckets"),
        ("admission", json!({"rounds": [2.0]}), "admission.rounds[0]"),
        ("admission", json!({"mode": "magic"}), "admission.mode"),
        ("tiers", json!([]), "tiers"),
        (
            "tiers",
            json!([{"name": "A", "price_cents": -1, "stock": 1}]),
            "tiers[0].price_cents",
        ),
        (
            "tiers",
            json!([{"name": "A", "price_cents": 1, "stock": 0}]),
            "tiers[0].stock",
        ),
        (
            "tiers",
            json!([{"name": "A", "price_cents": 1}]),
            "tiers[0]",
        ),
        ("surprise", json!(true), ""),
    ];
    for (field, value, named) in invalid {
        let mut body = event_body(60, 3600);
        body[field] = value;
        for answer in [
            app.post("/api/admin/events", Some(&operator), body.clone())
                .await,
            app.put(
                &format!("/api/admin/events/{draft}"),
                Some(&operator),
                body.clone(),
            )
            .await,
        ] {
            answer.assert_error(400, "invalid_input");
            if !named.is_empty() {
                let got = answer.body["field"].as_str().unwrap_or("");
                assert!(got.starts_with(named), "{field}: {:?}", answer.body);
            }
        }
    }
    app.post_raw(
        "/api/admin/events",
        Some(&operator),
        "application/json",
        "{\"name\":",
    )
    .await
    .assert_error(400, "invalid_input");
    let huge = json!({"name": "x".repeat(20_000)});
    app.post("/api/admin/events", Some(&operator), huge)
        .await
        .assert_error(413, "payload_too_large");
    app.put(
        &format!("/api/admin/events/{approved}"),
        Some(&operator),
        event_body(60, 3600),
    )
    .await
    .assert_error(409, "invalid_state");
    app.post(
        &format!("/api/admin/events/{approved}/submit"),
        Some(&operator),
        json!({}),
    )
    .await
    .assert_error(409, "invalid_state");
    app.post(
        &format!("/api/admin/events/{draft}/approve"),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_error(409, "invalid_state");
    app.post(
        &format!("/api/admin/events/{draft}/reject"),
        Some(&admin),
        json!({"note": 5}),
    )
    .await
    .assert_error(400, "invalid_input");
    app.post(
        &format!("/api/admin/events/{draft}/reject"),
        Some(&admin),
        json!({"note": "n".repeat(1001)}),
    )
    .await
    .assert_error(400, "invalid_input");
    for path in [
        "/api/admin/events/777777",
        "/api/admin/events/777777/submit",
    ] {
        let answer = if path.ends_with("submit") {
            app.post(path, Some(&operator), json!({})).await
        } else {
            app.get(path, Some(&operator)).await
        };
        answer.assert_error(404, "not_found");
    }
    app.get("/api/admin/events/abc", Some(&operator))
        .await
        .assert_error(400, "invalid_input");
    app.post("/api/admin/events", None, event_body(60, 3600))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(app.snapshot().await, before, "nothing changed");
}

#[sqlx::test]
async fn a_refused_review_changes_nothing_in_either_store(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let id = id_of(
        &app.post("/api/admin/events", Some(&operator), event_body(60, 3600))
            .await
            .body,
    );
    app.post(
        &format!("/api/admin/events/{id}/submit"),
        Some(&operator),
        json!({}),
    )
    .await;
    let before = app.snapshot().await;
    for action in ["approve", "reject"] {
        for (note, status, field) in [
            (json!("fine\u{0}"), 400, "note"),
            (json!("n".repeat(1001)), 400, "note"),
        ] {
            let answer = app
                .post(
                    &format!("/api/admin/events/{id}/{action}"),
                    Some(&admin),
                    json!({ "note": note }),
                )
                .await;
            answer.assert_error(status, "invalid_input");
            assert_eq!(answer.body["field"], field);
        }
    }
    let nul_name = json!({"name": "Spring\u{0}Tour"});
    let mut body = event_body(60, 3600);
    body["tiers"][0]["name"] = json!("Floor\u{0}");
    for (payload, field) in [(nul_name, "name"), (body, "tiers[0].name")] {
        let mut full = event_body(60, 3600);
        for (k, v) in payload.as_object().unwrap() {
            full[k] = v.clone();
        }
        let answer = app.post("/api/admin/events", Some(&operator), full).await;
        answer.assert_error(400, "invalid_input");
        assert_eq!(answer.body["field"], field);
    }
    assert_eq!(app.snapshot().await, before, "no stock, no stream, no row");
}

#[sqlx::test]
async fn approval_with_redis_down_approves_nothing(db: PgPool) {
    let mut redis = RedisServer::temporary(false).await.unwrap();
    let app = spawn_app_with(db, test_config(), &redis.url()).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    let id = id_of(
        &app.post("/api/admin/events", Some(&operator), event_body(-1, 3600))
            .await
            .body,
    );
    app.post(
        &format!("/api/admin/events/{id}/submit"),
        Some(&operator),
        json!({}),
    )
    .await;
    let approve = format!("/api/admin/events/{id}/approve");

    redis.crash();
    app.post(&approve, Some(&admin), json!({"note": "go"}))
        .await
        .assert_error(503, "overloaded");
    let status: String = sqlx::query_scalar("SELECT status FROM events WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "pending_review", "not approved without its stock");

    redis.restart().await.unwrap();
    let mut approved = app.post(&approve, Some(&admin), json!({})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while approved.status == 503 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        approved = app.post(&approve, Some(&admin), json!({})).await;
    }
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["tiers"][0]["remaining"], 10);
    assert_eq!(approved.body["phase"], "open");
}
