//! The fair queue at the edge (SPEC §4, "Queue"): `POST /api/events/{id}/queue`
//! joins through the user's shard, which remembers the first join, and signs
//! a pass from it; `GET` answers a waiting user from their pass and this
//! isolate's copy of the event's frontier — place, odds, and when admitted a
//! purchase URL good for the rest of their window. Neither reaches the origin.

use std::rc::Rc;

use rushgate_core::api::header;
use rushgate_core::draw::{self, Seed};
use rushgate_core::queue::status;
use rushgate_core::queue::wire::{FrontierView, QueueStatus};
use rushgate_core::token::QueuePassClaims;
use rushgate_core::{ErrorBody, ErrorCode, TokenError, purchase, queue};
use time::OffsetDateTime;
use worker::{Env, Request, Response};

use crate::clock;
use crate::config::Config;
use crate::door;
use crate::entrants::{self, JoinAsk};
use crate::error::{EdgeError, json};
use crate::frontier;
use crate::session;
use crate::shard::{self, ShardAsk};
use crate::snapshot;

/// A pass outlives the sale by a day, so that it can still read `closed`.
const PASS_AFTER_CLOSE_S: i64 = 86_400;

/// `POST /api/events/{id}/queue`.
pub async fn join(
    req: &Request,
    env: &Env,
    config: &Rc<Config>,
    event_id: i64,
    body: &[u8],
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let now = clock::now();
    let user = session::user(req.headers(), &config.keys, now.unix_timestamp())?;
    let view = snapshot::public_view(config, event_id, now_ms).await?;
    if view.admission.queue_window_s().is_none() {
        return Err(EdgeError::new(
            ErrorCode::InvalidState,
            "this sale has no queue: ask for a purchase URL",
        ));
    }
    snapshot::door_phase(&view, now)?;
    door::pass(req, env, config, &user, &view, body, now_ms).await?;
    let ask = JoinAsk {
        event_id,
        user_id: user.user_id,
        now_ms,
        opens_at_ms: queue::unix_ms(view.opens_at),
        shards: config.dedup_shards,
        sid: user.sid,
        generation: user.generation,
    };
    let answer = shard::ask(env, config, user.user_id, &ShardAsk::Join(ask)).await?;
    if answer == "revoked" {
        return Err(session::unauthenticated());
    }
    let (joined_ms, late_ahead) =
        entrants::parse_joined(&answer).ok_or_else(EdgeError::origin_unavailable)?;
    let claims = QueuePassClaims {
        event_id,
        user_id: user.user_id,
        joined_ms,
        late_ahead,
        exp: view.closes_at.unix_timestamp() + PASS_AFTER_CLOSE_S,
    };
    let pass = config.keys.sign(&claims);
    let mut status = answer_for(env, config, &claims, now_ms).await?;
    status.pass = Some(pass.clone());
    let mut response = json(200, &status);
    // Served over HTTPS (as on Cloudflare), the pass travels over HTTPS only.
    let secure = if req.inner().url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={pass}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        header::queue_cookie(event_id),
        (claims.exp - now.unix_timestamp()).max(0)
    );
    response.headers_mut().set("set-cookie", &cookie)?;
    Ok(response)
}

/// `GET /api/events/{id}/queue` with the pass in `X-Queue-Pass` or its cookie.
pub async fn status(
    req: &Request,
    env: &Env,
    config: &Rc<Config>,
    event_id: i64,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let headers = req.headers();
    let from_header = headers.get(header::QUEUE_PASS)?;
    let cookies = headers.get("cookie")?;
    let name = header::queue_cookie(event_id);
    let pass = from_header
        .as_deref()
        .or_else(|| rushgate_core::session::cookie(cookies.as_deref(), &name));
    let Some(pass) = pass else {
        return Err(EdgeError::from(
            ErrorBody::new(
                ErrorCode::InvalidInput,
                "send your queue pass in X-Queue-Pass",
            )
            .with_field(header::QUEUE_PASS),
        ));
    };
    let invalid = || EdgeError::new(ErrorCode::BadSignature, "this queue pass is not valid");
    let claims: QueuePassClaims = match config.keys.verify(pass, now_ms.div_euclid(1000)) {
        Ok(claims) => claims,
        Err(TokenError::Expired) => return Err(ErrorCode::Closed.into()),
        Err(TokenError::BadSignature) => return Err(invalid()),
    };
    if claims.event_id != event_id {
        return Err(invalid());
    }
    Ok(json(200, &answer_for(env, config, &claims, now_ms).await?))
}

/// Where the pass stands now, with a purchase URL when admitted.
async fn answer_for(
    env: &Env,
    config: &Config,
    claims: &QueuePassClaims,
    now_ms: i64,
) -> Result<QueueStatus, EdgeError> {
    let view = frontier::read(env, claims.event_id, now_ms).await?;
    let fraction = number_fraction(&view, claims.user_id)?;
    let jitter = f64::from(u32::from_le_bytes(clock::random())) / 4_294_967_296.0;
    let answer = status::answer(&view, claims, fraction, now_ms, jitter);
    let mut status = answer.status;
    if let Some(until_ms) = answer.url_until_ms {
        let now = clock::now();
        let ttl_s = ((until_ms - now_ms) / 1000).clamp(1, i64::from(u32::MAX)) as u32;
        let closes_at = OffsetDateTime::from_unix_timestamp(view.closes_at_ms.div_euclid(1000))
            .map_err(|_| EdgeError::origin_unavailable())?;
        let issued = purchase::issue(
            &config.keys,
            claims.event_id,
            claims.user_id,
            now,
            ttl_s,
            closes_at,
            clock::random(),
        );
        status.purchase_url = Some(issued.path);
        status.expires_at = OffsetDateTime::from_unix_timestamp(issued.claims.exp).ok();
    }
    Ok(status)
}

/// The user's draw number's share of number space, from the seed the
/// frontier carries.
fn number_fraction(view: &FrontierView, user_id: i64) -> Result<f64, EdgeError> {
    let mut seed: Seed = [0; draw::SEED_LEN];
    hex::decode_to_slice(&view.seed, &mut seed).map_err(|_| EdgeError::origin_unavailable())?;
    Ok(queue::fraction(&draw::number_bytes(&seed, user_id)))
}
