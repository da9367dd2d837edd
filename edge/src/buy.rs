//! `POST /buy/{event_id}/{token}` at the edge, cheapest rejection first:
//! verify the session and the purchase token (HMAC, no IO) → check the body
//! against the event snapshot (tier, quantity) → sold-out short-circuit
//! (snapshot and what the origin or the desk said) → the user's shard: revoked
//! session, per-user dedup window or single-use retry token (Durable Object) →
//! probability admission (the automatic lottery's from the whole event's
//! arrival rate, as the sale's desk sums it) → room in this isolate's lease of
//! units in flight (the desk never leases out more than are left, across all
//! isolates) → forward to the origin with `X-Rushgate-Admit`, and relay its
//! answer. An attempt refused before the shard (bad token, bad body,
//! sold out, a draw ticket before its turn) is not counted and opens no dedup
//! window. A queue's buyers were admitted before they had the URL: they skip
//! the short-circuit, the round and the room check. In an automatic lottery's
//! opening draw (`core::opening`) first attempts get a ticket instead of a
//! round, and a drawn ticket at its turn is admitted (while every unit left
//! is on its way for earlier turns, it gets a new ticket a moment later).

use rushgate_core::admission::{self, Crowd};
use rushgate_core::api::{BuyRequest, header, is_json_object};
use rushgate_core::dedup::Gate;
use rushgate_core::opening::{self, Draw, Turn};
use rushgate_core::token::{RetryClaims, SessionClaims};
use rushgate_core::{ErrorBody, ErrorCode, attest, purchase};
use std::rc::Rc;
use time::OffsetDateTime;

use worker::js_sys::Uint8Array;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Context, Env, Headers, Method, web_sys};

use crate::clock;
use crate::config::Config;
use crate::error::EdgeError;
use crate::flight;
use crate::funnel::{self, Step};
use crate::origin;
use crate::session;
use crate::shard::{self, Answer, Ask, ShardAsk};
use crate::snapshot;

/// The hot path, so on the runtime's own request and response objects: the
/// `worker` crate's would copy the method, URL, headers and `cf` properties of
/// every request, and build every answer twice.
pub async fn buy(
    req: &web_sys::Request,
    path: &str,
    env: &Env,
    ctx: &Context,
    config: &Rc<Config>,
    now_ms: i64,
) -> Result<web_sys::Response, EdgeError> {
    let now_s = now_ms.div_euclid(1000);
    // Read first, whatever the answer: a connection answered with its body
    // unread cannot carry the client's next request.
    let body = Uint8Array::new(&JsFuture::from(req.array_buffer()?).await?).to_vec();
    let headers = Headers(req.headers());
    let user = session::user(&headers, &config.keys, now_s)?;
    let claims = purchase::verify(&config.keys, path, user.user_id, now_s)?;
    let event_id = claims.event_id;

    let order: Option<BuyRequest> = is_json_object(&body)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten();
    let order = order.ok_or_else(|| {
        EdgeError::new(
            ErrorCode::InvalidInput,
            "send {\"tier_id\": .., \"quantity\": ..}",
        )
    })?;
    let view = snapshot::public_view(config, event_id, now_ms).await?;
    purchase::check_order(
        &order,
        view.tiers.iter().map(|t| t.id),
        view.per_order_limit,
    )
    .map_err(EdgeError::from)?;
    funnel::bump(event_id, Step::Arrival);
    // A queue admits before the purchase URL, at the pace the stock allows:
    // its buyers go to the origin, which knows of units given back before
    // this isolate's snapshot does.
    let queued = view.admission.queue_window_s().is_some();
    let word = flight::snapshot_word(&view, order.tier_id, snapshot::fetched_ms(event_id));
    if !queued && flight::sold_out(event_id, order.tier_id, word, now_ms) {
        funnel::bump(event_id, Step::SoldOut);
        return Err(ErrorCode::SoldOut.into());
    }

    let retry = retry_claims(&headers, config, event_id, user.user_id, now_s)?;
    // The opening draw's turn, decided before the shard: a ticket before its
    // turn is not spent.
    // The user's number (an HMAC) only for a ticket or an entrant.
    let number = || opening::number(&config.keys, event_id, user.user_id);
    let draw = (view.admission.draw_s())
        .and_then(|draw_s| Draw::new(rushgate_core::queue::unix_ms(view.opens_at), draw_s));
    let turn = match (draw, retry) {
        (Some(draw), Some(r)) if r.round == 0 => {
            let share = flight::drawn_share(env, config, &view, now_ms, draw.ends_ms).await?;
            Some(draw.ticket(now_ms, number(), share))
        }
        (Some(draw), _) => Some(draw.attempt(now_ms)),
        (None, _) => None,
    };
    if let Some(Turn::Wait { until_ms }) = turn {
        funnel::bump(event_id, Step::NotAdmitted);
        let token = headers.get(header::RETRY_TOKEN)?.unwrap_or_default();
        let message = "your turn in the opening draw comes at retry_at";
        return Err(come_back(message, token, until_ms, now_ms));
    }
    // A first attempt in the draw's window enters it at the user's shard,
    // which every isolate's entrants reach (the desk fixes the share from them).
    let entering = matches!(turn, Some(Turn::Enter { .. }));
    // A first attempt with no dedup window has nothing else to ask the shard;
    // the origin checks the session for revocation itself.
    let gate = if retry.is_none() && view.dedup_window_s == 0 && !entering {
        Gate::Pass
    } else {
        let ask = Ask {
            user_id: user.user_id,
            event_id,
            window_s: view.dedup_window_s,
            now_ms,
            sid: user.sid,
            generation: user.generation,
            retry: retry.map(|r| (r.nonce, r.exp * 1000)),
            draw: entering.then(number),
        };
        match ask_shard(env, config, &ask).await? {
            Answer::Gate(gate) => gate,
            Answer::Revoked => return Err(session::unauthenticated()),
        }
    };
    let duplicate = |message: &str, retry_after_s: u64| {
        funnel::bump(event_id, Step::Deduped);
        EdgeError::from(
            ErrorBody::new(ErrorCode::DuplicateRequest, message).with_retry_after(retry_after_s),
        )
    };
    match gate {
        Gate::Pass => {}
        Gate::Duplicate { retry_after_s } => {
            return Err(duplicate(
                ErrorCode::DuplicateRequest.message(),
                retry_after_s,
            ));
        }
        Gate::Spent => return Err(duplicate("this retry token was already used", 1)),
    }

    let round = retry.map_or(0, |r| r.round);
    let remaining = view.tiers.iter().map(|t| t.remaining).sum();
    let here = snapshot::arrival(event_id, now_ms);
    let arrivals_per_s = if view.admission.is_auto() {
        flight::event_rate(env, event_id, order.tier_id, word, here, now_ms).await
    } else {
        here
    };
    let crowd = Crowd {
        remaining,
        arrivals_per_s,
    };
    let p = match turn {
        Some(Turn::Enter { until_ms }) => {
            return Err(ticket(config, &user, event_id, until_ms, now_ms, None));
        }
        Some(Turn::Late { until_ms }) => {
            return Err(late(config, &user, event_id, until_ms, now_ms));
        }
        Some(Turn::Admit) => 1.0,
        _ => admission::probability(&view.admission, round, crowd),
    };
    // One draw for the round and for the retry token a loser gets.
    let draw: [u8; 20] = clock::random();
    let u = admission::unit_interval(u32::from_le_bytes([draw[0], draw[1], draw[2], draw[3]]));
    let in_flight = match admission::admitted(p, u) {
        true if queued => Some(None),
        true => {
            let room = flight::room(
                env,
                event_id,
                order.tier_id,
                order.quantity,
                word,
                here,
                now_ms,
            );
            room.await?.map(Some)
        }
        false => None,
    };
    let Some(in_flight) = in_flight else {
        if turn == Some(Turn::Admit) {
            // A drawn ticket at its turn, while every unit left is on its way
            // for someone else: a new ticket, a moment later (the turn stays).
            let until_ms = now_ms + opening::HOLD_OVER_MS;
            let message = "your turn has come while every unit left is with earlier turns; \
                           come back at retry_at";
            return Err(ticket(
                config,
                &user,
                event_id,
                until_ms,
                now_ms,
                Some(message),
            ));
        }
        funnel::bump(event_id, Step::NotAdmitted);
        let nonce = std::array::from_fn(|i| draw[4 + i]);
        return Err(not_admitted(
            config,
            event_id,
            user.user_id,
            round,
            now_s,
            nonce,
        ));
    };

    funnel::bump(event_id, Step::Forwarded);
    let response = forward(&headers, config, path, user.user_id, body, now_s).await?;
    match in_flight {
        Some(units) if response.status_code() == 202 => units.sold(),
        other => drop(other),
    }
    let remaining = response
        .headers()
        .get(header::REMAINING)?
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(remaining) = remaining {
        let word = rushgate_core::desk::Word {
            remaining,
            at_ms: clock::now_ms(),
        };
        flight::learn(event_id, order.tier_id, word);
        if !queued {
            let env = env.clone();
            ctx.wait_until(flight::tell_desk(env, event_id, order.tier_id, word, here));
        }
    }
    Ok(response.into())
}

/// The verified retry token sent back by a loser of an earlier round, if any.
fn retry_claims(
    headers: &Headers,
    config: &Config,
    event_id: i64,
    user_id: i64,
    now_s: i64,
) -> Result<Option<RetryClaims>, EdgeError> {
    let Some(token) = headers.get(header::RETRY_TOKEN)? else {
        return Ok(None);
    };
    let claims: RetryClaims = config
        .keys
        .verify(&token, now_s)
        .map_err(|_| EdgeError::new(ErrorCode::BadSignature, "this retry token is not valid"))?;
    if claims.event_id != event_id || claims.user_id != user_id {
        return Err(EdgeError::new(
            ErrorCode::BadSignature,
            "this retry token is not valid",
        ));
    }
    if now_s < claims.not_before {
        return Err(EdgeError::from(
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

/// Asks the user's shard whether this attempt may go on.
async fn ask_shard(env: &Env, config: &Config, ask: &Ask) -> Result<Answer, EdgeError> {
    let answer = shard::ask(env, config, ask.user_id, &ShardAsk::Gate(ask.clone())).await?;
    Ok(Answer::parse(&answer))
}

/// 429 with a signed, single-use ticket into the next round.
fn not_admitted(
    config: &Config,
    event_id: i64,
    user_id: i64,
    round: u32,
    now_s: i64,
    nonce: [u8; 16],
) -> EdgeError {
    let wait = admission::retry_after_s(round);
    let token = config.keys.sign(&RetryClaims {
        event_id,
        user_id,
        round: round + 1,
        not_before: now_s + i64::from(wait),
        exp: now_s + i64::from(wait) + 120,
        nonce,
    });
    EdgeError::from(
        ErrorBody::from(ErrorCode::NotAdmitted)
            .with_retry_after(u64::from(wait))
            .with_retry_token(token),
    )
}

/// 429 `not_admitted` in the opening draw: a ticket (a round-0 retry token)
/// for `until_ms`, checked to the millisecond.
fn ticket(
    config: &Config,
    user: &SessionClaims,
    event_id: i64,
    until_ms: i64,
    now_ms: i64,
    message: Option<&str>,
) -> EdgeError {
    let message = message.unwrap_or(
        "you are in the opening draw: everyone who asks in the sale's first seconds \
         takes a turn in a random order; yours is told at retry_at",
    );
    let token = draw_token(config, user, event_id, 0, until_ms.div_euclid(1000));
    come_back(message, token, until_ms, now_ms)
}

/// 429 `not_admitted` after the opening draw, while the drawn take their
/// turns: a round-1 token, checked by its whole second, so it must not
/// count before `until_ms`.
fn late(
    config: &Config,
    user: &SessionClaims,
    event_id: i64,
    until_ms: i64,
    now_ms: i64,
) -> EdgeError {
    let not_before = until_ms.div_euclid(1000) + i64::from(until_ms.rem_euclid(1000) > 0);
    let token = draw_token(config, user, event_id, 1, not_before);
    let message = "the opening draw's turns are under way: your round comes at retry_at";
    come_back(message, token, until_ms, now_ms)
}

fn draw_token(
    config: &Config,
    user: &SessionClaims,
    event_id: i64,
    round: u32,
    not_before: i64,
) -> String {
    funnel::bump(event_id, Step::NotAdmitted);
    config.keys.sign(&RetryClaims {
        event_id,
        user_id: user.user_id,
        round,
        not_before,
        exp: not_before + opening::SPREAD_MS / 1000 + 120,
        nonce: clock::random(),
    })
}

/// 429 `not_admitted`: come back with `token` at `until_ms`.
fn come_back(message: &str, token: String, until_ms: i64, now_ms: i64) -> EdgeError {
    let wait_ms = (until_ms - now_ms).max(0);
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(until_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    EdgeError::from(
        ErrorBody::new(ErrorCode::NotAdmitted, message)
            .with_retry_after((wait_ms as u64).div_ceil(1000))
            .with_retry_token(token)
            .with_retry_at(at),
    )
}

/// Sends the admitted request to the origin, attested, and returns its answer.
async fn forward(
    from: &Headers,
    config: &Config,
    path: &str,
    user_id: i64,
    body: Vec<u8>,
    now_s: i64,
) -> Result<worker::Response, EdgeError> {
    let admit = attest::sign(&config.keys, "POST", path, user_id, now_s);
    let headers = origin::headers_of(from);
    headers.set(header::ADMIT, &admit)?;
    origin::send(config, Method::Post, path, headers, Some(body)).await
}
