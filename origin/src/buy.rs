//! `POST /buy/{event_id}/{token}`: the purchase itself.
//!
//! Cheapest refusal first: session, edge attestation, purchase token (all HMAC, no
//! IO), event from the cache, body, then the in-memory sold-out flag and the token
//! bucket — and only then one Redis round trip to `reserve.lua`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use rushgate_core::api::{BuyRequest, OrderStatus, Reservation, header};
use rushgate_core::{ErrorBody, ErrorCode, bucket, purchase};
use time::OffsetDateTime;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser, EdgeAdmission};
use crate::funnel::Step;
use crate::overload::{self, Limiter};
use crate::sale::reserve::{self, Attempt, Outcome};
use crate::sale::{Bucket, transfer};

/// The purchase route, behind the adaptive in-flight limit (`overload`): past
/// it, a purchase is answered 503 `overloaded` at once instead of waiting in a
/// queue, so under overload the purchases that are served stay fast.
pub fn router(limiter: Limiter) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(buy).layer(middleware::from_fn_with_state(limiter, overload::shed)))
}

#[utoipa::path(post, path = "/buy/{event_id}/{token}", tag = "buying",
    params(("event_id" = i64, Path), ("token" = String, Path, description = "the signed token of a purchase URL")),
    security(("bearer" = []), ("cookie" = [])),
    request_body = BuyRequest,
    responses(
        (status = 202, description = "the units are held for you: the order is on its way", body = Reservation, headers(("x-rushgate-remaining" = i64, description = "units left in the tier, when exactly known"))),
        (status = 200, description = "the same URL again: the same reservation, nothing more held", body = Reservation),
        (status = 403, description = "`bad_signature` | `url_expired` | `wrong_user` | `not_admitted_by_edge` | `not_open` | `limit_exceeded`", body = ErrorBody),
        (status = 404, description = "`not_found`: the event is not public", body = ErrorBody),
        (status = 409, description = "`sold_out`", body = ErrorBody),
        (status = 410, description = "`closed`", body = ErrorBody),
        crate::openapi::Signed, crate::openapi::Common
    ))]
async fn buy(
    State(state): State<AppState>,
    user: AuthUser,
    uri: Uri,
    admission: EdgeAdmission,
    ApiJson(body): ApiJson<BuyRequest>,
) -> ApiResult<Response> {
    let now = OffsetDateTime::now_utc();
    let unix = now.unix_timestamp();
    let path = uri.path();
    admission.check(&state, "POST", path, user.user_id, unix)?;
    let claims = purchase::verify(&state.keys, path, user.user_id, unix)?;
    let event_id = claims.event_id;
    state.funnel.bump(event_id, Step::Forwarded);

    let event = state
        .events
        .get(event_id)
        .await?
        .filter(|e| e.is_public(now))
        .ok_or_else(|| ApiError::not_found("event"))?;
    let in_presale = event.schedule.presale.is_some_and(|p| p.contains(now));
    if now < event.schedule.opens_at && !in_presale {
        return Err(ErrorBody::from(ErrorCode::NotOpen)
            .with_opens_at(event.schedule.opens_at)
            .into());
    }
    if now >= event.schedule.closes_at {
        return Err(ErrorCode::Closed.into());
    }
    purchase::check_order(
        &body,
        event.tiers.iter().map(|t| t.id),
        event.per_order_limit,
    )?;
    let tier = event
        .tier(body.tier_id)
        .ok_or_else(|| ApiError::invalid("tier_id", "no such tier in this event"))?;

    let bucket = Bucket {
        event_id,
        bucket: bucket::for_user(event_id, user.user_id, event.buckets),
        buckets: event.buckets,
    };
    if state.flags.is_set(tier.id) {
        state.funnel.bump(event_id, Step::SoldOutFlagged);
        return Ok(sold_out());
    }
    if state.limiter.check().is_err() {
        state.funnel.bump(event_id, Step::RateLimited);
        return Err(ApiError::overloaded(1));
    }

    let attempt = Attempt {
        reservation_id: Uuid::now_v7(),
        tier_id: tier.id,
        bucket,
        user_id: user.user_id,
        quantity: body.quantity,
        per_user_limit: event.per_user_limit,
        amount_cents: tier.price_cents * body.quantity,
        payment_window_s: event.payment_window_s,
        nonce_hex: claims.nonce_hex(),
        token_exp: claims.exp,
        now,
    };
    let (outcome, exhausted) = reserve_or_borrow(&state, &attempt).await?;
    if matches!(outcome, Outcome::Reserved { .. } | Outcome::Replay { .. }) {
        // A 202 is a promise: it waits until the replicas hold the reservation.
        state
            .replicas
            .confirm(&state.redis.keys.bucket(bucket))
            .await
            .map_err(crate::sale::Error::from)?;
    }
    match outcome {
        Outcome::Reserved { id, left } => {
            let mut response = (StatusCode::ACCEPTED, queued(id)).into_response();
            // With one bucket, what is left in it is what is left in the tier.
            if event.buckets == 1 {
                if left == 0 {
                    state.flags.set(event_id, tier.id, event.buckets);
                }
                response
                    .headers_mut()
                    .insert(header::REMAINING, HeaderValue::from(left));
            }
            Ok(response)
        }
        Outcome::Replay { id } => Ok((StatusCode::OK, queued(id)).into_response()),
        Outcome::SoldOut { left: 0 } if exhausted => {
            state.flags.set(event_id, tier.id, event.buckets);
            Ok(sold_out())
        }
        // Units remain in other buckets but kept being taken first.
        Outcome::SoldOut { left: 0 } => Err(ApiError::overloaded(1)),
        Outcome::SoldOut { left } => Err(ApiError::refused(
            ErrorCode::SoldOut,
            format!("only {left} left in this tier"),
        )),
        Outcome::LimitExceeded { held } => Err(ApiError::refused(
            ErrorCode::LimitExceeded,
            format!(
                "at most {} per person; you already hold {held}",
                event.per_user_limit
            ),
        )),
    }
}

/// `sold_out`, telling the edge that nothing is left.
fn sold_out() -> Response {
    let mut response = ApiError::from(ErrorCode::SoldOut).into_response();
    response
        .headers_mut()
        .insert(header::REMAINING, HeaderValue::from(0));
    response
}

/// Reserves in the buyer's bucket; if it is short and the tier has other
/// buckets, moves units over from the fullest one that answers and tries
/// again. The flag is true when every bucket of the tier was found empty; a
/// bucket whose node did not answer is not known to be empty.
async fn reserve_or_borrow(state: &AppState, attempt: &Attempt) -> ApiResult<(Outcome, bool)> {
    let mut outcome = reserve::reserve(&state.redis, attempt).await?;
    if attempt.bucket.buckets <= 1 {
        return Ok((outcome, true));
    }
    for _ in 0..3 {
        if !matches!(outcome, Outcome::SoldOut { .. }) {
            break;
        }
        let borrowed = transfer::borrow(
            &state.redis,
            &state.replicas,
            attempt.bucket,
            attempt.tier_id,
            attempt.quantity,
        )
        .await?;
        if borrowed.moved == 0 {
            if borrowed.unreachable > 0 {
                // Some stock sits on a node failing over: not sold out yet.
                return Err(ApiError::overloaded(1));
            }
            return Ok((outcome, true));
        }
        outcome = reserve::reserve(&state.redis, attempt).await?;
    }
    Ok((outcome, false))
}

fn queued(id: Uuid) -> Json<Reservation> {
    Json(Reservation {
        reservation_id: id,
        status: OrderStatus::Queued,
    })
}
