//! The public side of events: server time, the list, one event, and purchase
//! URLs for signed-in users once a sale is open.

pub mod cache;
pub mod repo;
pub mod view;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use rushgate_core::api::{EventList, EventView, PurchaseUrl, ServerTime};
use rushgate_core::{ErrorCode, purchase};
use time::OffsetDateTime;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, Id};
use crate::stock;
use repo::EventRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/time", get(server_time))
        .route("/api/events", get(list))
        .route("/api/events/{id}", get(detail))
        .route("/api/events/{id}/purchase-url", post(purchase_url))
}

async fn server_time() -> Json<ServerTime> {
    Json(ServerTime {
        now: OffsetDateTime::now_utc(),
    })
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<EventList>> {
    let now = OffsetDateTime::now_utc();
    let all = state.events.public().await?;
    let visible: Vec<&EventRecord> = all
        .iter()
        .map(Arc::as_ref)
        .filter(|e| e.is_public(now))
        .collect();
    let remaining = stock::remaining(&state.redis, &visible).await?;
    let events = visible
        .iter()
        .map(|e| view::summary(e, now, &remaining))
        .collect();
    Ok(Json(EventList {
        events,
        server_time: now,
    }))
}

/// A public event by id: approved and past `visible_at`, else `not_found`.
async fn public_event(
    state: &AppState,
    id: i64,
    now: OffsetDateTime,
) -> ApiResult<Arc<EventRecord>> {
    state
        .events
        .get(id)
        .await?
        .filter(|e| e.is_public(now))
        .ok_or(ApiError::NotFound("event"))
}

async fn detail(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<EventView>> {
    let now = OffsetDateTime::now_utc();
    let event = public_event(&state, id, now).await?;
    let remaining = stock::remaining(&state.redis, &[&event]).await?;
    Ok(Json(view::full(&event, now, &remaining)))
}

async fn purchase_url(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<PurchaseUrl>> {
    let now = OffsetDateTime::now_utc();
    let event = public_event(&state, id, now).await?;
    let remaining = stock::remaining(&state.redis, &[&event]).await?;
    let phase = event.phase(now, stock::total(&event, &remaining));
    purchase::check_phase(phase).map_err(|code| match code {
        ErrorCode::NotOpen => ApiError::NotOpen {
            opens_at: event.schedule.opens_at,
        },
        ErrorCode::SoldOut => ApiError::SoldOut,
        ErrorCode::Closed => ApiError::Closed,
        _ => ApiError::NotFound("event"),
    })?;
    let issued = purchase::issue(
        &state.keys,
        event.id,
        user.user_id,
        now,
        state.config.purchase_url_ttl_s,
        event.schedule.closes_at,
        rand::random(),
    );
    let expires_at = OffsetDateTime::from_unix_timestamp(issued.claims.exp)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(PurchaseUrl {
        url: issued.path,
        expires_at,
    }))
}
