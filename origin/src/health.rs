//! Liveness, readiness (Redis and PostgreSQL answer) and Prometheus metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the process is up", body = Object)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Redis and PostgreSQL answer", body = Object), (status = 503, description = "`{\"redis\": ..., \"postgres\": ...}`: which is unavailable", body = Object)))]
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

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
