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

/// A client that sends half a request and goes quiet does not keep its
/// connection: its headers have a deadline (the connection is dropped), and
/// so has its body (an error answer, then the connection is free).
#[sqlx::test]
async fn half_sent_requests_do_not_hold_connections(db: PgPool) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut config = crate::helpers::test_config();
    config.request_timeout_ms = 300;
    let app = crate::helpers::spawn_app_configured(db, config).await;
    let deadline = std::time::Duration::from_secs(10);

    let mut headers_only = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    headers_only
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: origin\r\n")
        .await
        .unwrap();
    let mut read = Vec::new();
    let closed = tokio::time::timeout(deadline, headers_only.read_to_end(&mut read)).await;
    assert!(
        closed.is_ok(),
        "the connection was still open after {deadline:?}"
    );
    assert!(
        !String::from_utf8_lossy(&read).contains("200 OK"),
        "{read:?}"
    );

    let mut half_body = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    half_body
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: origin\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\nConnection: close\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    let mut read = Vec::new();
    let answered = tokio::time::timeout(deadline, half_body.read_to_end(&mut read)).await;
    assert!(answered.is_ok(), "no answer after {deadline:?}");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
}
