//! Who is asking: the session token (Bearer or cookie) verified with core, and
//! whether it was ended — logged out, or its account changed since (a new
//! role, disabled, deleted). Verification is stateless; ended sessions live in
//! the user's `DedupShard`, which `/buy` asks anyway (the check rides along
//! with the dedup gate), and purchase URLs, challenges and queue joins ask
//! once. The shards hear of endings from the logouts the edge passes on and
//! from the origin's relay (`POST /api/edge/revocations`), which covers the
//! rest.

use std::collections::HashMap;

use rushgate_core::api::{EDGE_REVOCATIONS_PATH, EdgeRevocations, header};
use rushgate_core::dedup::{SessionRef, shard_of};
use rushgate_core::token::SessionClaims;
use rushgate_core::{ErrorCode, Keyring};
use worker::{Env, Headers, Request, Response};

use crate::config::Config;
use crate::error::EdgeError;
use crate::origin;
use crate::query::bytes16;
use crate::shard::{self, ShardAsk};

/// The verified session of a request with these headers.
pub fn user(headers: &Headers, keys: &Keyring, now_s: i64) -> Result<SessionClaims, EdgeError> {
    let authorization = headers.get("authorization").ok().flatten();
    // The cookie counts only without an Authorization header: not read then.
    let cookie = match authorization {
        Some(_) => None,
        None => headers.get("cookie").ok().flatten(),
    };
    rushgate_core::session::token(authorization.as_deref(), cookie.as_deref())
        .and_then(|token| keys.verify::<SessionClaims>(token, now_s).ok())
        .ok_or_else(unauthenticated)
}

pub fn unauthenticated() -> EdgeError {
    ErrorCode::Unauthenticated.into()
}

/// Refuses a session that was ended by logging out.
pub async fn not_revoked(
    env: &Env,
    config: &Config,
    claims: &SessionClaims,
    now_ms: i64,
) -> Result<(), EdgeError> {
    let session = SessionRef {
        user_id: claims.user_id,
        sid: claims.sid,
        generation: claims.generation,
    };
    let ask = ShardAsk::Session { session, now_ms };
    match shard::ask(env, config, claims.user_id, &ask)
        .await?
        .as_str()
    {
        "ok" => Ok(()),
        "revoked" => Err(unauthenticated()),
        _ => Err(EdgeError::origin_unavailable()),
    }
}

/// `POST /api/auth/logout`: the origin revokes the session and clears the
/// cookie; the edge records the revocation in the user's shard too, so every
/// edge location refuses the session from now on.
pub async fn logout(
    req: Request,
    env: &Env,
    config: &Config,
    now_s: i64,
) -> Result<Response, EdgeError> {
    let claims = user(req.headers(), &config.keys, now_s).ok();
    let response = origin::pass_through(config, req).await?;
    if let Some(claims) = claims
        && (200..300).contains(&response.status_code())
    {
        let ask = ShardAsk::Revoke {
            sid: claims.sid,
            until_ms: claims.exp * 1000,
        };
        if let Err(e) = shard::ask(env, config, claims.user_id, &ask).await {
            // The origin has revoked it: purchases still stop there.
            worker::console_error!("recording a logout at the edge failed: {e}");
        }
    }
    Ok(response)
}

/// `POST /api/edge/revocations`: sessions the origin ended (its relay), signed
/// with the deployment's key and bound to the body. Each goes to its user's
/// shard; the answer is 204 once every shard has it (else the relay sends the
/// batch again).
pub async fn relayed(
    mut req: Request,
    env: &Env,
    config: &Config,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let header = req.headers().get(header::FORWARD)?;
    let claims = rushgate_core::attest::forwarded(
        &config.keys,
        header.as_deref(),
        "POST",
        EDGE_REVOCATIONS_PATH,
        now_ms.div_euclid(1000),
    );
    let body = req.bytes().await?;
    if !claims.is_some_and(|c| c.covers(&body)) {
        return Err(ErrorCode::Forbidden.into());
    }
    let batch: EdgeRevocations = serde_json::from_slice(&body)
        .map_err(|_| EdgeError::new(ErrorCode::InvalidInput, "not a revocations batch"))?;
    let mut by_shard: HashMap<u32, Vec<ShardAsk>> = HashMap::new();
    for (user_id, sid, exp) in &batch.sessions {
        let sid = bytes16(sid).ok_or_else(|| {
            EdgeError::new(ErrorCode::InvalidInput, "a session id is 32 hex digits")
        })?;
        let shard = shard_of(*user_id, config.dedup_shards);
        by_shard.entry(shard).or_default().push(ShardAsk::Revoke {
            sid,
            until_ms: exp * 1000,
        });
    }
    for (user_id, generation, until) in &batch.accounts {
        let shard = shard_of(*user_id, config.dedup_shards);
        by_shard
            .entry(shard)
            .or_default()
            .push(ShardAsk::RevokeAccount {
                user_id: *user_id,
                generation: *generation,
                until_ms: until * 1000,
            });
    }
    let asks = by_shard.into_iter().flat_map(|(at, asks)| {
        asks.into_iter()
            .map(move |ask| async move { shard::ask_at(env, at, &ask).await })
    });
    for answer in futures_util::future::join_all(asks).await {
        answer?;
    }
    Ok(Response::empty()?.with_status(204))
}
