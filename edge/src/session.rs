//! Who is asking: the session token (Bearer or cookie) verified with core, and
//! whether it was ended by logging out. Verification is stateless; revoked
//! sessions live in the user's `DedupShard`, which `/buy` asks anyway (the check
//! rides along with the dedup gate) and purchase URLs ask once.

use rushgate_core::token::SessionClaims;
use rushgate_core::{ErrorCode, Keyring};
use worker::{Env, Headers, Request, Response};

use crate::config::Config;
use crate::dedup_shard::{self, revoke_url, session_url};
use crate::error::EdgeError;
use crate::origin;

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
    let url = session_url(&claims.sid, now_ms);
    match dedup_shard::ask(env, config, claims.user_id, &url)
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
        let url = revoke_url(&claims.sid, claims.exp * 1000);
        if let Err(e) = dedup_shard::ask(env, config, claims.user_id, &url).await {
            // The origin has revoked it: purchases still stop there.
            worker::console_error!("recording a logout at the edge failed: {e}");
        }
    }
    Ok(response)
}
