//! Liveness, readiness (Redis and PostgreSQL answer) and Prometheus metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let limit = Duration::from_secs(2);
    let redis = tokio::time::timeout(limit, state.redis.ping()).await;
    let postgres = tokio::time::timeout(
        limit,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.db),
    )
    .await;
    let redis_ok = matches!(redis, Ok(Ok(())));
    let postgres_ok = matches!(postgres, Ok(Ok(_)));
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let status = if redis_ok && postgres_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"redis": word(redis_ok), "postgres": word(postgres_ok)})),
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
