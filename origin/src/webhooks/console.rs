//! The console's webhooks of one event: its own endpoints (added with their
//! URL, secret, event types and pace; disabled, never deleted, so their counts
//! stay), the deployment's endpoints as they stand for the event, and its dead
//! letters with a retry per endpoint. An endpoint must reach a public address
//! (`destination`); the deployment's endpoints are shown without their query,
//! where a token may be.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rushgate_core::webhook::{
    self, DeadLetterList, EndpointInput, EndpointList, EndpointView, EventType, Requeued,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Id, Staff, positive_id};

use super::{destination, repo};

/// The most endpoints of its own one event may have.
const MAX_ENDPOINTS: usize = 20;

/// The most dead letters listed at once.
const DEAD_LISTED: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(disable))
        .routes(routes!(dead))
        .routes(routes!(retry))
}

/// The event id and an endpoint id from the path.
fn ids(raw: (String, String)) -> ApiResult<(i64, i64)> {
    Ok((
        positive_id(&raw.0, "id")?,
        positive_id(&raw.1, "endpoint_id")?,
    ))
}

/// An endpoint's settings, checked: (secret, types, rate, burst).
async fn settings(
    state: &AppState,
    input: &EndpointInput,
) -> ApiResult<(String, Vec<EventType>, u32, u32)> {
    let allow_private = state.config.webhook_allow_private;
    let url = destination::check_url(&input.url, allow_private)
        .map_err(|e| ApiError::invalid("url", e))?;
    destination::check_resolved(&url, allow_private)
        .await
        .map_err(|e| ApiError::invalid("url", e))?;
    let secret = match &input.secret {
        Some(s) if !(16..=200).contains(&s.chars().count()) => {
            return Err(ApiError::invalid("secret", "must be 16 to 200 characters"));
        }
        Some(s) if s.chars().any(char::is_whitespace) => {
            return Err(ApiError::invalid("secret", "must not contain spaces"));
        }
        Some(s) => s.clone(),
        None => hex::encode(rand::random::<[u8; 32]>()),
    };
    let types = match &input.types {
        None => EventType::ALL.to_vec(),
        Some(types) if types.is_empty() => {
            return Err(ApiError::invalid("types", "name at least one event type"));
        }
        Some(types) => EventType::ALL
            .into_iter()
            .filter(|t| types.contains(t))
            .collect(),
    };
    let rate = input.rate_per_s.unwrap_or(webhook::DEFAULT_RATE_PER_S);
    if !(1..=webhook::MAX_RATE_PER_S).contains(&rate) {
        return Err(ApiError::invalid(
            "rate_per_s",
            format!("must be between 1 and {}", webhook::MAX_RATE_PER_S),
        ));
    }
    let burst = input.burst.unwrap_or_else(|| webhook::default_burst(rate));
    if !(1..=rate).contains(&burst) {
        return Err(ApiError::invalid("burst", "must be between 1 and the rate"));
    }
    Ok((secret, types, rate, burst))
}

#[utoipa::path(get, path = "/api/admin/events/{id}/webhooks", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "the event's own endpoints and the deployment's, with this event's deliveries to each", body = EndpointList), crate::openapi::Managed, crate::openapi::Common))]
async fn list(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
) -> ApiResult<Json<EndpointList>> {
    crate::admin::managed(&state, user, id).await?;
    let mut endpoints = repo::endpoints_of_event(&state.db, id).await?;
    for deployment in endpoints.iter_mut().filter(|e| e.event_id.is_none()) {
        deployment.url = destination::redacted(&deployment.url);
    }
    Ok(Json(EndpointList { endpoints }))
}

#[utoipa::path(post, path = "/api/admin/events/{id}/webhooks", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), request_body = EndpointInput, responses((status = 201, description = "added; it gets the event's changes from now on. `secret` is answered this once", body = EndpointView), (status = 400, description = "`invalid_input` naming `url`, `secret`, `types`, `rate_per_s` or `burst`", body = rushgate_core::ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn create(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
    ApiJson(input): ApiJson<EndpointInput>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    crate::admin::managed(&state, user, id).await?;
    let (secret, types, rate, burst) = settings(&state, &input).await?;
    let existing = repo::endpoints_of_event(&state.db, id).await?;
    if existing.iter().filter(|e| e.event_id == Some(id)).count() >= MAX_ENDPOINTS {
        return Err(ApiError::invalid(
            "url",
            format!("an event has at most {MAX_ENDPOINTS} endpoints of its own"),
        ));
    }
    let endpoint_id =
        repo::insert_endpoint(&state.db, id, &input, &secret, &types, rate, burst).await?;
    let url = destination::redacted(&input.url);
    tracing::info!(event_id = id, endpoint_id, %url, "webhook endpoint added");
    Ok((
        StatusCode::CREATED,
        Json(EndpointView {
            id: endpoint_id,
            event_id: Some(id),
            url: input.url,
            types,
            rate_per_s: rate,
            burst,
            enabled: true,
            pending: 0,
            retrying: 0,
            delivered: 0,
            dead: 0,
            oldest_pending_s: None,
            secret: Some(secret),
        }),
    ))
}

#[utoipa::path(delete, path = "/api/admin/events/{id}/webhooks/{endpoint_id}", tag = "console", params(("id" = i64, Path, description = "event id"), ("endpoint_id" = i64, Path, description = "one of the event's own endpoints")), security(("bearer" = []), ("cookie" = [])), responses((status = 204, description = "disabled: nothing more is queued or sent to it"), crate::openapi::Managed, crate::openapi::Common))]
async fn disable(
    State(state): State<AppState>,
    user: Staff,
    Path(raw): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (id, endpoint_id) = ids(raw)?;
    crate::admin::managed(&state, user, id).await?;
    if !repo::disable_endpoint(&state.db, id, endpoint_id).await? {
        return Err(ApiError::not_found("endpoint of this event"));
    }
    tracing::info!(event_id = id, endpoint_id, "webhook endpoint disabled");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/admin/events/{id}/webhooks/dead", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "the event's dead deliveries, oldest first (up to 200)", body = DeadLetterList), crate::openapi::Managed, crate::openapi::Common))]
async fn dead(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
) -> ApiResult<Json<DeadLetterList>> {
    crate::admin::managed(&state, user, id).await?;
    Ok(Json(DeadLetterList {
        dead: repo::dead_letters(&state.db, id, DEAD_LISTED).await?,
    }))
}

#[utoipa::path(post, path = "/api/admin/events/{id}/webhooks/{endpoint_id}/retry", tag = "console", params(("id" = i64, Path, description = "event id"), ("endpoint_id" = i64, Path, description = "an endpoint the event's deliveries go to")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "the event's dead deliveries to the endpoint are due again, with fresh tries", body = Requeued), crate::openapi::Managed, crate::openapi::Common))]
async fn retry(
    State(state): State<AppState>,
    user: Staff,
    Path(raw): Path<(String, String)>,
) -> ApiResult<Json<Requeued>> {
    let (id, endpoint_id) = ids(raw)?;
    crate::admin::managed(&state, user, id).await?;
    let requeued = repo::requeue_dead(&state.db, id, endpoint_id).await?;
    tracing::info!(
        event_id = id,
        endpoint_id,
        requeued,
        "dead deliveries retried"
    );
    Ok(Json(Requeued { requeued }))
}
