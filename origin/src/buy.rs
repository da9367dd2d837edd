//! `POST /buy/{event_id}/{token}`: the purchase itself.
//!
//! Cheapest refusal first: session, edge attestation, purchase token (all HMAC, no
//! IO), event from the cache, body, then the in-memory sold-out flag and the token
//! bucket — and only then one Redis round trip to `reserve.lua`.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rushgate_core::api::{BuyRequest, OrderStatus, REMAINING_HEADER, Reservation};
use rushgate_core::token::{AdmissionClaims, PurchaseClaims, TokenError};
use rushgate_core::{bucket, purchase};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser};
use crate::funnel::Step;
use crate::rebalance;
use crate::reserve::{self, Attempt, Outcome};

/// Header carrying the edge's attestation.
pub const ADMIT_HEADER: &str = "x-rushgate-admit";

pub fn router() -> Router<AppState> {
    Router::new().route("/buy/{event_id}/{token}", post(buy))
}

async fn buy(
    State(state): State<AppState>,
    user: AuthUser,
    uri: Uri,
    EdgeAdmission(admission): EdgeAdmission,
    ApiJson(body): ApiJson<BuyRequest>,
) -> ApiResult<Response> {
    let now = OffsetDateTime::now_utc();
    let unix = now.unix_timestamp();
    if state.config.require_edge_admission {
        check_admission(&state, admission.as_ref(), uri.path(), user.user_id, unix)?;
    }
    let (event, token) = purchase::parse_path(uri.path()).ok_or(ApiError::BadSignature)?;
    let claims = check_token(&state, event, token, user.user_id, unix)?;
    let event_id = claims.event_id;
    state.funnel.bump(event_id, Step::Forwarded);

    let event = state
        .events
        .get(event_id)
        .await?
        .filter(|e| e.is_public(now))
        .ok_or(ApiError::NotFound("event"))?;
    if now < event.schedule.opens_at {
        return Err(ApiError::NotOpen {
            opens_at: event.schedule.opens_at,
        });
    }
    if now >= event.schedule.closes_at {
        return Err(ApiError::Closed);
    }
    let tier = event
        .tier(body.tier_id)
        .ok_or_else(|| ApiError::invalid("tier_id", "no such tier in this event"))?;
    if body.quantity < 1 || body.quantity > i64::from(event.per_order_limit) {
        return Err(ApiError::invalid(
            "quantity",
            format!("must be between 1 and {}", event.per_order_limit),
        ));
    }

    let bucket = bucket::for_user(event_id, user.user_id, event.buckets);
    if state.flags.is_set(tier.id) {
        state.funnel.bump(event_id, Step::SoldOutFlagged);
        let mut response = ApiError::SoldOut.into_response();
        response
            .headers_mut()
            .insert(REMAINING_HEADER, HeaderValue::from(0));
        return Ok(response);
    }
    if state.limiter.check().is_err() {
        state.funnel.bump(event_id, Step::RateLimited);
        return Err(ApiError::Overloaded { retry_after_s: 1 });
    }

    let attempt = Attempt {
        reservation_id: Uuid::now_v7(),
        event_id,
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
    let (outcome, exhausted) = reserve_or_borrow(&state, &attempt, event.buckets).await?;
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
                    .insert(REMAINING_HEADER, HeaderValue::from(left));
            }
            Ok(response)
        }
        Outcome::Replay { id } => Ok((StatusCode::OK, queued(id)).into_response()),
        Outcome::SoldOut { left: 0 } if exhausted => {
            state.flags.set(event_id, tier.id, event.buckets);
            let mut response = ApiError::SoldOut.into_response();
            response
                .headers_mut()
                .insert(REMAINING_HEADER, HeaderValue::from(0));
            Ok(response)
        }
        // Units remain in other buckets but kept being taken first.
        Outcome::SoldOut { left: 0 } => Err(ApiError::Overloaded { retry_after_s: 1 }),
        Outcome::SoldOut { left } => Err(ApiError::SoldOutPartly { left }),
        Outcome::LimitExceeded { held } => Err(ApiError::LimitExceeded {
            limit: event.per_user_limit,
            held,
        }),
    }
}

/// Reserves in the buyer's bucket; if it is short and the tier has other
/// buckets, moves units over from the fullest one and tries again. The flag is
/// true when every bucket of the tier was found empty.
async fn reserve_or_borrow(
    state: &AppState,
    attempt: &Attempt,
    buckets: u32,
) -> ApiResult<(Outcome, bool)> {
    let mut outcome = reserve::reserve(&state.redis, attempt).await?;
    if buckets == 1 {
        return Ok((outcome, true));
    }
    for _ in 0..3 {
        if !matches!(outcome, Outcome::SoldOut { .. }) {
            break;
        }
        let moved = rebalance::borrow(
            &state.redis,
            attempt.event_id,
            attempt.tier_id,
            buckets,
            attempt.bucket,
            attempt.quantity,
        )
        .await?;
        if moved == 0 {
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

/// The `X-Rushgate-Admit` header, if any (no copy of the other headers).
struct EdgeAdmission(Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for EdgeAdmission {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(ADMIT_HEADER).cloned()))
    }
}

/// The edge's `X-Rushgate-Admit` must be authentic and bound to this request.
fn check_admission(
    state: &AppState,
    header: Option<&HeaderValue>,
    path: &str,
    user_id: i64,
    now: i64,
) -> ApiResult<()> {
    let admitted = header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| state.keys.verify_signature::<AdmissionClaims>(v).ok())
        .is_some_and(|claims| claims.admits("POST", path, user_id, now));
    if admitted {
        Ok(())
    } else {
        Err(ApiError::NotAdmittedByEdge)
    }
}

/// The purchase token must be authentic, unexpired, for this event and this user.
fn check_token(
    state: &AppState,
    event_id: i64,
    token: &str,
    user_id: i64,
    now: i64,
) -> ApiResult<PurchaseClaims> {
    let claims: PurchaseClaims = state.keys.verify(token, now).map_err(|e| match e {
        TokenError::BadSignature => ApiError::BadSignature,
        TokenError::Expired => ApiError::UrlExpired,
    })?;
    if event_id != claims.event_id {
        return Err(ApiError::BadSignature);
    }
    if claims.user_id != user_id {
        return Err(ApiError::WrongUser);
    }
    Ok(claims)
}
