//! Managing events: operators create, edit and submit drafts; admins approve,
//! reject or cancel. Approval writes the stock to Redis before the status flips,
//! so an approved event always has its stock.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rushgate_core::ErrorBody;
use rushgate_core::api::{AdminEventList, EventStatus, EventView, ReviewNote};
use rushgate_core::event::{EventInput, EventSpec};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::repo::{self, EventRecord};
use crate::events::view;
use crate::extract::{ApiJson, Id, OptionalJson, Staff};
use crate::sale::stock;
use rushgate_core::ErrorCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update))
        .routes(routes!(submit))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(cancel))
}

/// The event as the console sees it, fresh from PostgreSQL.
async fn render(state: &AppState, id: i64) -> ApiResult<Json<EventView>> {
    let event = repo::get(&state.db, id)
        .await?
        .ok_or(ApiError::not_found("event"))?;
    let remaining = stock::remaining(&state.redis, &[&event]).await?;
    Ok(Json(view::full(
        &event,
        OffsetDateTime::now_utc(),
        &remaining,
    )))
}

/// Loads an event the user may manage: its owner, or any admin.
pub async fn managed(state: &AppState, user: Staff, id: i64) -> ApiResult<EventRecord> {
    let event = repo::get(&state.db, id)
        .await?
        .ok_or(ApiError::not_found("event"))?;
    if event.owner_id != user.user_id && !user.role.reviews_events() {
        return Err(ApiError::from(ErrorCode::Forbidden));
    }
    Ok(event)
}

#[utoipa::path(post, path = "/api/admin/events", tag = "console", security(("bearer" = []), ("cookie" = [])), request_body = EventInput, responses((status = 201, description = "a draft owned by the caller", body = EventView), (status = 403, description = "`forbidden`: customers", body = ErrorBody), crate::openapi::Signed, crate::openapi::Common))]
async fn create(
    State(state): State<AppState>,
    user: Staff,
    ApiJson(input): ApiJson<EventInput>,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    let spec = EventSpec::parse(&input)?;
    let id = repo::insert(&state.db, user.user_id, &spec).await?;
    tracing::info!(event_id = id, owner = user.user_id, "event drafted");
    Ok((StatusCode::CREATED, render(&state, id).await?))
}

#[utoipa::path(get, path = "/api/admin/events", tag = "console", security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "admins: every event; operators: their own", body = AdminEventList), (status = 403, description = "`forbidden`: customers", body = ErrorBody), crate::openapi::Signed, crate::openapi::Common))]
async fn list(State(state): State<AppState>, user: Staff) -> ApiResult<Json<AdminEventList>> {
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

#[utoipa::path(get, path = "/api/admin/events/{id}", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, body = EventView), crate::openapi::Managed, crate::openapi::Common))]
async fn detail(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
) -> ApiResult<Json<EventView>> {
    managed(&state, user, id).await?;
    render(&state, id).await
}

#[utoipa::path(put, path = "/api/admin/events/{id}", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), request_body = EventInput, responses((status = 200, description = "a draft, or a rejected event back to draft", body = EventView), (status = 409, description = "`invalid_state`: the event's status does not allow it", body = ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn update(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
    ApiJson(input): ApiJson<EventInput>,
) -> ApiResult<Json<EventView>> {
    managed(&state, user, id).await?;
    let spec = EventSpec::parse(&input)?;
    if !repo::update(&state.db, id, &spec).await? {
        return Err(ApiError::invalid_state(
            "only draft or rejected events can be edited",
        ));
    }
    state.events.invalidate(id).await;
    render(&state, id).await
}

#[utoipa::path(post, path = "/api/admin/events/{id}/submit", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "draft → pending_review", body = EventView), (status = 409, description = "`invalid_state`: the event's status does not allow it", body = ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn submit(
    State(state): State<AppState>,
    user: Staff,
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

#[utoipa::path(post, path = "/api/admin/events/{id}/approve", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), request_body(content = Option<ReviewNote>, description = "an optional note (at most 1000 characters); an empty body is no note"), responses((status = 200, description = "pending_review → approved, with its stock in Redis", body = EventView), (status = 409, description = "`invalid_state`: the event's status does not allow it", body = ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn approve(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
    OptionalJson(note): OptionalJson<ReviewNote>,
) -> ApiResult<Json<EventView>> {
    let user = user.reviewer()?;
    let note = checked_note(note)?;
    let event = managed(&state, user, id).await?;
    if event.status != EventStatus::PendingReview {
        return Err(wrong_status(event.status, "approved"));
    }
    // The status change holds the event's row until the stock is in Redis: if
    // Redis fails, nothing is approved; a concurrent approval waits, then finds
    // the event approved. Stock written by an approval whose commit then failed
    // belongs to an event nobody can buy from, and `stock::init` never
    // overwrites (the next approval of the same tiers writes the same figures).
    let mut tx = state.db.begin().await?;
    let moved = repo::transition(
        &mut *tx,
        id,
        &[EventStatus::PendingReview],
        EventStatus::Approved,
        note.as_deref(),
    )
    .await?;
    if !moved {
        drop(tx);
        return Err(current_status_error(&state, id, EventStatus::Approved).await);
    }
    if event.admission.queue_window_s().is_some() {
        repo::fix_draw_seed(&mut *tx, id, &rand::random()).await?;
    }
    stock::init(&state.redis, &state.replicas, &event).await?;
    tx.commit().await?;
    changed(&state, id, EventStatus::Approved).await
}

#[utoipa::path(post, path = "/api/admin/events/{id}/reject", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), request_body(content = Option<ReviewNote>, description = "an optional note (at most 1000 characters); an empty body is no note"), responses((status = 200, description = "pending_review → rejected", body = EventView), (status = 409, description = "`invalid_state`: the event's status does not allow it", body = ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn reject(
    State(state): State<AppState>,
    user: Staff,
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

#[utoipa::path(post, path = "/api/admin/events/{id}/cancel", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "any status but cancelled → cancelled", body = EventView), (status = 409, description = "`invalid_state`: the event's status does not allow it", body = ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn cancel(
    State(state): State<AppState>,
    user: Staff,
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
    ApiError::invalid_state(format!(
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
        return Err(current_status_error(state, id, to).await);
    }
    changed(state, id, to).await
}

/// The refusal for an event that was not in a status it could move to `to` from.
async fn current_status_error(state: &AppState, id: i64, to: EventStatus) -> ApiError {
    match repo::get(&state.db, id).await {
        Ok(Some(event)) => wrong_status(event.status, to.as_str()),
        Ok(None) => ApiError::not_found("event"),
        Err(e) => e.into(),
    }
}

async fn changed(state: &AppState, id: i64, to: EventStatus) -> ApiResult<Json<EventView>> {
    tracing::info!(event_id = id, status = to.as_str(), "event status changed");
    state.events.invalidate(id).await;
    render(state, id).await
}
