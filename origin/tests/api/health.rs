//! Liveness, readiness against real dependencies, metrics, and JSON for unknown
//! routes and methods.

use sqlx::PgPool;

use rushgate_core::Role;

use crate::helpers::{RedisServer, event_body, spawn_app, spawn_app_with, test_config};

#[sqlx::test]
async fn health_ready_and_metrics(db: PgPool) {
    let app = spawn_app(db).await;
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["redis"], "ok");
    assert_eq!(ready.body["postgres"], "ok");
    app.get("/api/events", None).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("rushgate_http_requests_total"), "{text}");
    assert!(
        text.contains("rushgate_event_cache_lookups_total"),
        "{text}"
    );
}

#[sqlx::test]
async fn readiness_fails_when_redis_dies(db: PgPool) {
    let mut redis = RedisServer::temporary(false).await.unwrap();
    let app = spawn_app_with(db, test_config(), &redis.url()).await;
    let (_, operator) = app.user(Role::Operator).await;
    let (_, admin) = app.user(Role::Admin).await;
    app.approved_event(&operator, &admin, event_body(-10, 3600))
        .await;
    assert_eq!(app.get("/readyz", None).await.status, 200);
    redis.crash();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["redis"], "unavailable");
    assert_eq!(ready.body["postgres"], "ok");
    // Public reads that need Redis answer 503, not 500, and do not hang.
    app.get("/api/events", None)
        .await
        .assert_error(503, "overloaded");
}

#[sqlx::test]
async fn unknown_routes_and_methods_answer_json(db: PgPool) {
    let app = spawn_app(db).await;
    app.get("/api/nope", None)
        .await
        .assert_error(404, "not_found");
    app.request(reqwest::Method::DELETE, "/api/events", None, None)
        .await
        .assert_error(405, "method_not_allowed");
}

#[sqlx::test]
async fn the_openapi_document_is_served_and_is_the_one_in_docs(db: PgPool) {
    let app = spawn_app(db).await;
    let served = app.get("/api/openapi.json", None).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body["openapi"], "3.1.0");
    let documented: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/openapi.json")).unwrap();
    assert!(
        served.body == documented,
        "docs/openapi.json disagrees with the code: regenerate it with \
         `cargo run -p rushgate-origin -- openapi > docs/openapi.json`"
    );
    // Every route the code serves is described.
    for path in [
        "/buy/{event_id}/{token}",
        "/api/events/{id}/purchase-url",
        "/api/admin/events/{id}/orders.csv",
        "/api/internal/edge-report",
        "/api/openapi.json",
    ] {
        assert!(served.body["paths"][path].is_object(), "{path}");
    }
}
