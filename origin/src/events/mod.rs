//! The public side of events: server time, the list, one event, and purchase
//! URLs for signed-in users once a sale is open (or, in its presale, for
//! holders of a presale code).

pub mod cache;
pub mod repo;
pub mod view;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use rushgate_core::api::{DoorAnswer, EventList, EventView, PurchaseUrl, ServerTime};
use rushgate_core::{ErrorBody, ErrorCode, Phase, purchase};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthUser, EdgeAdmission, Id, OptionalJson};
use crate::sale::stock;
use repo::EventRecord;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(server_time))
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(purchase_url))
}

#[utoipa::path(get, path = "/api/time", tag = "events", responses((status = 200, description = "for countdown calibration", body = ServerTime)))]
async fn server_time() -> Json<ServerTime> {
    Json(ServerTime {
        now: OffsetDateTime::now_utc(),
    })
}

#[utoipa::path(get, path = "/api/events", tag = "events", responses((status = 200, description = "approved events past `visible_at`, closed ones for a week after closing", body = EventList), crate::openapi::Common))]
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
        .ok_or(ApiError::not_found("event"))
}

#[utoipa::path(get, path = "/api/events/{id}", tag = "events", params(("id" = i64, Path, description = "event id"), ("view" = Option<String>, Query, description = "the event page's visitor id: the edge counts a page view")), responses((status = 200, body = EventView), (status = 404, description = "`not_found`: unknown, or not public", body = ErrorBody), crate::openapi::Common))]
async fn detail(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<EventView>> {
    let now = OffsetDateTime::now_utc();
    let event = public_event(&state, id, now).await?;
    let remaining = stock::remaining(&state.redis, &[&event]).await?;
    Ok(Json(view::public(&event, now, &remaining)))
}

#[utoipa::path(post, path = "/api/events/{id}/purchase-url", tag = "events", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "a purchase URL for this user, once the sale is open; in a presale, for a holder of a presale code (sent once as `presale_code`; the URL lasts until the presale closes at most)", body = PurchaseUrl), (status = 403, description = "`not_open`, with `opens_at`; in a presale `presale_code_required` (no code, or no such code) | `presale_code_taken` (bound to another account); `not_admitted_by_edge` when asked here directly behind an edge (`RUSHGATE_REQUIRE_EDGE_ADMISSION`): the edge's door hands them out", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 409, description = "`sold_out`; `queue_required` where the sale admits through its queue", body = ErrorBody), (status = 410, description = "`closed`", body = ErrorBody), crate::openapi::Signed, crate::openapi::Common))]
async fn purchase_url(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
    admission: EdgeAdmission,
    OptionalJson(answer): OptionalJson<DoorAnswer>,
) -> ApiResult<Json<PurchaseUrl>> {
    let now = OffsetDateTime::now_utc();
    // Behind an edge, purchase URLs come through its door: a client asking
    // here directly would skip the proof of work.
    let path = format!("/api/events/{id}/purchase-url");
    admission.check(&state, "POST", &path, user.user_id, now.unix_timestamp())?;
    let event = public_event(&state, id, now).await?;
    let remaining = stock::remaining(&state.redis, &[&event]).await?;
    let phase = event.phase(now, stock::total(&event, &remaining));
    let presale = event.schedule.presale.filter(|_| phase == Phase::Presale);
    let ends_at = match presale {
        // The presale buys directly, in any admission mode, until it closes.
        Some(presale) => {
            let code = answer.presale_code.as_deref();
            crate::presale::admit(&state.db, id, user.user_id, code).await?;
            presale.closes_at
        }
        None if event.admission.queue_window_s().is_some() => {
            return Err(ErrorCode::QueueRequired.into());
        }
        None => {
            purchase::check_phase(phase).map_err(|code| match code {
                ErrorCode::NotOpen => ErrorBody::from(code)
                    .with_opens_at(event.schedule.opens_at)
                    .into(),
                ErrorCode::NotFound => ApiError::not_found("event"),
                code => ApiError::from(code),
            })?;
            event.schedule.closes_at
        }
    };
    let issued = purchase::issue(
        &state.keys,
        event.id,
        user.user_id,
        now,
        state.config.purchase_url_ttl_s,
        ends_at,
        rand::random(),
    );
    let expires_at = OffsetDateTime::from_unix_timestamp(issued.claims.exp)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(PurchaseUrl {
        url: issued.path,
        expires_at,
    }))
}
