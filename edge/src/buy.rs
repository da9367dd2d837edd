//! `POST /buy/{event_id}/{token}` at the edge, cheapest rejection first:
//! verify the session and the purchase token (HMAC, no IO) → sold-out
//! short-circuit (snapshot and what the origin said) → per-user dedup window or
//! single-use retry token (Durable Object) → probability admission → room in
//! the stock (never more units in flight to the origin than are left) → forward
//! to the origin with `X-Rushgate-Admit`, and relay its answer.

use rushgate_core::admission::{self, Crowd};
use rushgate_core::api::{BuyRequest, REMAINING_HEADER};
use rushgate_core::dedup::{Gate, shard_of};
use rushgate_core::token::{AdmissionClaims, PurchaseClaims, RetryClaims, TokenError};
use rushgate_core::{ErrorBody, ErrorCode, purchase};
use std::rc::Rc;

use worker::{Env, Method, Request, Response};

use crate::clock;
use crate::config::Config;
use crate::dedup_shard::{Ask, parse_answer};
use crate::error::EdgeError;
use crate::funnel::{self, Step};
use crate::origin;
use crate::session;
use crate::snapshot;

/// Header carrying the edge's attestation to the origin.
pub const ADMIT_HEADER: &str = "x-rushgate-admit";
/// Header a buyer sends a retry token back in.
pub const RETRY_HEADER: &str = "x-retry-token";
/// Durable Object binding of the dedup shards.
pub const DEDUP_BINDING: &str = "DEDUP";

fn refuse(code: ErrorCode, message: &str) -> EdgeError {
    EdgeError::new(code, message)
}

pub async fn buy(
    mut req: Request,
    env: &Env,
    config: &Rc<Config>,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let now = clock::now();
    let now_s = now.unix_timestamp();
    let path = req.path();
    let user = session::user(&req, &config.keys, now_s)?;
    let (event_id, token) = purchase::parse_path(&path)
        .ok_or_else(|| refuse(ErrorCode::BadSignature, "this purchase URL is not valid"))?;
    let claims: PurchaseClaims = config.keys.verify(token, now_s).map_err(|e| match e {
        TokenError::BadSignature => {
            refuse(ErrorCode::BadSignature, "this purchase URL is not valid")
        }
        TokenError::Expired => refuse(
            ErrorCode::UrlExpired,
            "this purchase URL has expired; ask for a new one",
        ),
    })?;
    if claims.event_id != event_id {
        return Err(refuse(
            ErrorCode::BadSignature,
            "this purchase URL is not valid",
        ));
    }
    if claims.user_id != user.user_id {
        return Err(refuse(
            ErrorCode::WrongUser,
            "this purchase URL belongs to someone else",
        ));
    }
    funnel::bump(event_id, Step::Arrival);

    let body = req.bytes().await?;
    let order: BuyRequest = serde_json::from_slice(&body).map_err(|_| {
        refuse(
            ErrorCode::InvalidInput,
            "send {\"tier_id\": .., \"quantity\": ..}",
        )
    })?;
    let view = snapshot::view(config, event_id, now_ms)
        .await?
        .ok_or_else(|| refuse(ErrorCode::NotFound, "no such event"))?;
    if snapshot::tier_sold_out(&view, order.tier_id, now_ms) {
        funnel::bump(event_id, Step::SoldOut);
        return Err(refuse(ErrorCode::SoldOut, "sold out"));
    }

    let retry = retry_claims(&req, config, event_id, user.user_id, now_s)?;
    // A first attempt with no dedup window has nothing to ask the shard.
    let gate = if retry.is_none() && view.dedup_window_s == 0 {
        Gate::Pass
    } else {
        let ask = Ask {
            user_id: user.user_id,
            event_id,
            window_s: view.dedup_window_s,
            now_ms,
            retry: retry.map(|r| (hex::encode(r.nonce), r.exp * 1000)),
        };
        ask_shard(env, config, &ask).await?
    };
    let duplicate = |message: &str, retry_after_s: u64| {
        funnel::bump(event_id, Step::Deduped);
        EdgeError(
            ErrorBody::new(ErrorCode::DuplicateRequest, message).with_retry_after(retry_after_s),
        )
    };
    match gate {
        Gate::Pass => {}
        Gate::Duplicate { retry_after_s } => {
            return Err(duplicate("you just tried; wait a moment", retry_after_s));
        }
        Gate::Spent => return Err(duplicate("this retry token was already used", 1)),
    }

    let round = retry.map_or(0, |r| r.round);
    let rounds = view.admission().unwrap_or_default();
    let remaining = view.tiers.iter().map(|t| t.remaining).sum();
    let crowd = Crowd {
        remaining,
        arrivals_per_s: snapshot::arrival(event_id, now_ms),
    };
    let p = admission::probability(&rounds, round, crowd);
    let u = admission::unit_interval(u32::from_le_bytes(clock::random()));
    let in_flight = admission::admitted(p, u)
        .then(|| snapshot::take_in_flight(&view, order.tier_id, order.quantity))
        .flatten();
    let Some(in_flight) = in_flight else {
        funnel::bump(event_id, Step::NotAdmitted);
        return Err(not_admitted(config, event_id, user.user_id, round, now_s));
    };

    funnel::bump(event_id, Step::Forwarded);
    let response = forward(&req, config, &path, user.user_id, body, now_s).await?;
    drop(in_flight);
    let remaining = response
        .headers()
        .get(REMAINING_HEADER)?
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(remaining) = remaining {
        snapshot::learn_remaining(event_id, order.tier_id, remaining, clock::now_ms());
    }
    Ok(response)
}

/// The verified retry token sent back by a loser of an earlier round, if any.
fn retry_claims(
    req: &Request,
    config: &Config,
    event_id: i64,
    user_id: i64,
    now_s: i64,
) -> Result<Option<RetryClaims>, EdgeError> {
    let Some(token) = req.headers().get(RETRY_HEADER)? else {
        return Ok(None);
    };
    let claims: RetryClaims = config
        .keys
        .verify(&token, now_s)
        .map_err(|_| refuse(ErrorCode::BadSignature, "this retry token is not valid"))?;
    if claims.event_id != event_id || claims.user_id != user_id {
        return Err(refuse(
            ErrorCode::BadSignature,
            "this retry token is not valid",
        ));
    }
    if now_s < claims.not_before {
        return Err(EdgeError(
            ErrorBody::new(
                ErrorCode::NotAdmitted,
                "too early; wait for your next round",
            )
            .with_retry_after((claims.not_before - now_s) as u64)
            .with_retry_token(token),
        ));
    }
    Ok(Some(claims))
}

/// Asks the user's dedup shard whether this attempt may go on.
async fn ask_shard(env: &Env, config: &Config, ask: &Ask) -> Result<Gate, EdgeError> {
    let shard = shard_of(ask.user_id, config.dedup_shards);
    let stub = env
        .durable_object(DEDUP_BINDING)?
        .get_by_name(&format!("dedup-{shard}"))?;
    let mut response = stub.fetch_with_str(&ask.url()).await?;
    Ok(parse_answer(&response.text().await?))
}

/// 429 with a signed, single-use ticket into the next round.
fn not_admitted(config: &Config, event_id: i64, user_id: i64, round: u32, now_s: i64) -> EdgeError {
    let wait = admission::retry_after_s(round);
    let token = config.keys.sign(&RetryClaims {
        event_id,
        user_id,
        round: round + 1,
        not_before: now_s + i64::from(wait),
        exp: now_s + i64::from(wait) + 120,
        nonce: clock::random(),
    });
    EdgeError(
        ErrorBody::new(
            ErrorCode::NotAdmitted,
            "the sale is busy: you are in the next round",
        )
        .with_retry_after(u64::from(wait))
        .with_retry_token(token),
    )
}

/// Sends the admitted request to the origin, attested, and returns its answer.
async fn forward(
    req: &Request,
    config: &Config,
    path: &str,
    user_id: i64,
    body: Vec<u8>,
    now_s: i64,
) -> Result<Response, EdgeError> {
    let admit = config.keys.sign(&AdmissionClaims {
        method: "POST".into(),
        path: path.to_owned(),
        user_id,
        timestamp: now_s,
    });
    let headers = origin::headers_of(req);
    headers.set(ADMIT_HEADER, &admit)?;
    origin::send(config, Method::Post, path, headers, Some(body)).await
}
