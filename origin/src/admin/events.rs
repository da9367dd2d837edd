//! Managing events: operators create, edit and submit drafts; admins approve,
//! reject or cancel. Approval writes the stock to Redis before the status flips,
//! so an approved event always has its stock.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rushgate_core::api::{AdminEventList, EventStatus, EventView, ReviewNote};
use rushgate_core::event::{EventInput, EventSpec};
use time::OffsetDateTime;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::repo::{self, EventRecord};
use crate::events::view;
use crate::extract::{ApiJson, AuthUser, Id, OptionalJson};
use crate::stock;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/events", post(create).get(list))
        .route("/api/admin/events/{id}", get(detail).put(update))
        .route("/api/admin/events/{id}/submit", post(submit))
        .route("/api/admin/events/{id}/approve", post(approve))
        .route("/api/admin/events/{id}/reject", post(reject))
        .route("/api/admin/events/{id}/cancel", post(cancel))
}

/// The event as the console sees it, fresh from PostgreSQL.
async fn render(state: &AppState, id: i64) -> ApiResult<Json<EventView>> {
    let event = repo::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let remaining = stock::remaining(&state.redis, &[&event]).await?;
    Ok(Json(view::full(
        &event,
        OffsetDateTime::now_utc(),
        &remaining,
    )))
}

/// Loads an event the user may manage: its owner, or any admin.
pub(super) async fn managed(state: &AppState, user: AuthUser, id: i64) -> ApiResult<EventRecord> {
    let user = user.manager()?;
    let event = repo::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    if event.owner_id != user.user_id && !user.role.reviews_events() {
        return Err(ApiError::Forbidden);
    }
    Ok(event)
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(input): ApiJson<EventInput>,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    let user = user.manager()?;
    let spec = EventSpec::parse(&input)?;
    let id = repo::insert(&state.db, user.user_id, &spec).await?;
    tracing::info!(event_id = id, owner = user.user_id, "event drafted");
    Ok((StatusCode::CREATED, render(&state, id).await?))
}

async fn list(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<AdminEventList>> {
    let user = user.manager()?;
    let owner = (!user.role.reviews_events()).then_some(user.user_id);
    let records = repo::list_managed(&state.db, owner).await?;
    let refs: Vec<&EventRecord> = records.iter().collect();
    let remaining = stock::remaining(&state.redis, &refs).await?;
    let now = OffsetDateTime::now_utc();
    let events = records
        .iter()
        .map(|e| view::full(e, now, &remaining))
        .collect();
    Ok(Json(AdminEventList { events }))
}

async fn detail(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<EventView>> {
    managed(&state, user, id).await?;
    render(&state, id).await
}

async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
    ApiJson(input): ApiJson<EventInput>,
) -> ApiResult<Json<EventView>> {
    managed(&state, user, id).await?;
    let spec = EventSpec::parse(&input)?;
    if !repo::update(&state.db, id, &spec).await? {
        return Err(ApiError::InvalidState(
            "only draft or rejected events can be edited".into(),
        ));
    }
    state.events.invalidate(id).await;
    render(&state, id).await
}

async fn submit(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<EventView>> {
    managed(&state, user, id).await?;
    move_status(
        &state,
        id,
        &[EventStatus::Draft],
        EventStatus::PendingReview,
        None,
    )
    .await
}

async fn approve(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
    OptionalJson(note): OptionalJson<ReviewNote>,
) -> ApiResult<Json<EventView>> {
    let user = user.reviewer()?;
    let event = managed(&state, user, id).await?;
    if event.status != EventStatus::PendingReview {
        return Err(wrong_status(event.status, "approved"));
    }
    stock::init(&state.redis, &event).await?;
    let note = checked_note(note)?;
    move_status(
        &state,
        id,
        &[EventStatus::PendingReview],
        EventStatus::Approved,
        note.as_deref(),
    )
    .await
}

async fn reject(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
    OptionalJson(note): OptionalJson<ReviewNote>,
) -> ApiResult<Json<EventView>> {
    let user = user.reviewer()?;
    managed(&state, user, id).await?;
    let note = checked_note(note)?;
    move_status(
        &state,
        id,
        &[EventStatus::PendingReview],
        EventStatus::Rejected,
        note.as_deref(),
    )
    .await
}

async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<EventView>> {
    let user = user.reviewer()?;
    managed(&state, user, id).await?;
    move_status(
        &state,
        id,
        &[
            EventStatus::Draft,
            EventStatus::PendingReview,
            EventStatus::Approved,
            EventStatus::Rejected,
        ],
        EventStatus::Cancelled,
        None,
    )
    .await
}

fn checked_note(note: ReviewNote) -> ApiResult<Option<String>> {
    match note.note {
        Some(n) if n.chars().count() > 1000 => {
            Err(ApiError::invalid("note", "must be at most 1000 characters"))
        }
        other => Ok(other),
    }
}

fn wrong_status(status: EventStatus, target: &str) -> ApiError {
    ApiError::InvalidState(format!(
        "a {} event cannot be {target}",
        status.as_str().replace('_', " ")
    ))
}

async fn move_status(
    state: &AppState,
    id: i64,
    from: &[EventStatus],
    to: EventStatus,
    note: Option<&str>,
) -> ApiResult<Json<EventView>> {
    if !repo::transition(&state.db, id, from, to, note).await? {
        let current = repo::get(&state.db, id)
            .await?
            .map(|e| e.status)
            .ok_or(ApiError::NotFound("event"))?;
        return Err(wrong_status(current, to.as_str()));
    }
    tracing::info!(event_id = id, status = to.as_str(), "event status changed");
    state.events.invalidate(id).await;
    render(state, id).await
}
