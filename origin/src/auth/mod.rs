//! Accounts: register, log in, log out, who am I. Sessions are signed tokens
//! (core), carried as a Bearer token or an HttpOnly cookie; logging out revokes
//! the session, and changing an account revokes all of its sessions
//! (`revoked`). Passwords are hashed on threads of their own (`password`);
//! guessing and making accounts in bulk are limited per account and per client
//! address (`limits`).

pub mod limits;
pub mod password;
pub mod relay;
pub mod revoked;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rushgate_core::api::{Challenge, Credentials, LoggedIn, LoggedOut, Me, Registered};
use rushgate_core::challenge::{Conditions, Lane};
use rushgate_core::session::SESSION_COOKIE;
use rushgate_core::token::SessionClaims;
use rushgate_core::{ErrorBody, ErrorCode, Role};
use time::{Duration, OffsetDateTime};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser, ClientAddress, session_claims};
use crate::users::{self, Password, Username};
use limits::{Answer, Counted};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(challenge))
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn answer_of(body: &Credentials) -> Answer {
    Answer {
        challenge: body.challenge.clone(),
        nonce: body.nonce.clone(),
    }
}

#[utoipa::path(post, path = "/api/auth/register", tag = "accounts", request_body = Credentials, responses((status = 201, body = Registered), (status = 403, description = "`challenge_required` (many new accounts from the client's network lately: send a solved `GET /api/auth/challenge` along, or wait `retry_after_s`) | `challenge_failed`", body = ErrorBody), (status = 409, description = "`username_taken`", body = ErrorBody), crate::openapi::Common))]
async fn register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let now = now_ms();
    let (redis, keys, config) = (&state.redis, &state.keys, &state.config.limits);
    limits::door(
        redis,
        keys,
        config,
        Counted::Registrations,
        &address,
        &answer_of(&body),
        now,
    )
    .await?;
    let user_id = users::create(
        &state.db,
        &state.hashers,
        &username,
        password,
        Role::Customer,
    )
    .await?;
    limits::count(redis, Counted::Registrations, &address, now).await?;
    tracing::info!(user_id, "registered");
    Ok((StatusCode::CREATED, Json(Registered { user_id })))
}

#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = Credentials, responses((status = 200, description = "the session, also as an HttpOnly cookie", body = LoggedIn), (status = 401, description = "`bad_credentials`", body = ErrorBody), (status = 403, description = "`challenge_required` (many failed logins from the client's network lately: send a solved `GET /api/auth/challenge` along, or wait `retry_after_s`) | `challenge_failed`", body = ErrorBody), (status = 429, description = "`slow_down`: too many wrong passwords for this account in a row; try again in `retry_after_s`", body = ErrorBody), crate::openapi::Common))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    if body.username.len() > 64 || body.password.len() > 1024 {
        return Err(ApiError::from(ErrorCode::BadCredentials));
    }
    let now = now_ms();
    let (redis, keys, config) = (&state.redis, &state.keys, &state.config.limits);
    limits::account_may_try(redis, &body.username, now).await?;
    limits::door(
        redis,
        keys,
        config,
        Counted::FailedLogins,
        &address,
        &answer_of(&body),
        now,
    )
    .await?;
    let user = users::find_by_username(&state.db, &body.username)
        .await?
        .filter(users::UserRow::active);
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = state.hashers.verify(body.password, stored).await?;
    let Some(user) = user.filter(|_| matches) else {
        limits::failed_login(redis, &body.username, &address, now).await?;
        return Err(ApiError::from(ErrorCode::BadCredentials));
    };
    limits::logged_in(redis, &body.username).await?;
    let ttl = Duration::seconds(i64::from(state.config.session_ttl_s));
    let expires_at = OffsetDateTime::now_utc() + ttl;
    let claims = SessionClaims {
        user_id: user.id,
        role: user.role(),
        exp: expires_at.unix_timestamp(),
        sid: rand::random(),
        generation: user.generation(),
    };
    let token = state.keys.sign(&claims);
    let cookie = session_cookie(&token, ttl.whole_seconds(), state.config.cookie_secure());
    let body = LoggedIn {
        token,
        user_id: user.id,
        role: claims.role,
        expires_at,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct LaneQuery {
    /// `fast` (default) or `slow`: 16× less work, counted after a short wait.
    lane: Option<String>,
}

#[utoipa::path(get, path = "/api/auth/challenge", tag = "accounts", params(LaneQuery), responses((status = 200, description = "a proof of work for the next login or registration from this network, as hard as its recent tries ask (the door's format, `difficulty` at least 16)", body = Challenge), crate::openapi::Common))]
async fn challenge(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Query(query): Query<LaneQuery>,
) -> ApiResult<Json<Challenge>> {
    let lane = match query.lane.as_deref() {
        None | Some("fast") => Lane::Fast,
        Some("slow") => Lane::Slow,
        Some(_) => return Err(ApiError::invalid("lane", "is fast or slow")),
    };
    let now = now_ms();
    let (text, claims) = limits::issue(
        &state.redis,
        &state.keys,
        &state.config.limits,
        &address,
        lane,
        now,
    )
    .await?;
    let at =
        |s: i64| OffsetDateTime::from_unix_timestamp(s).map_err(|e| ApiError::Internal(e.into()));
    Ok(Json(Challenge {
        challenge: text,
        difficulty: claims.difficulty,
        expires_at: at(claims.exp)?,
        not_before: at(claims.not_before)?,
        conditions: Conditions::default(),
    }))
}

/// Ends the session the request carries (Bearer token or cookie): it is refused
/// from now on, whichever way it is presented, and the cookie is cleared.
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts", security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "the session is ended (refused from now on, as token and as cookie) and the cookie cleared; also without a session", body = LoggedOut), crate::openapi::Common))]
async fn logout(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    let now = OffsetDateTime::now_utc();
    if let Some(claims) = session_claims(&parts, &state.keys, now.unix_timestamp()) {
        state
            .revocations
            .revoke(&state.redis, &claims, now_ms(), state.config.session_ttl_s)
            .await?;
        tracing::info!(user_id = claims.user_id, "logged out");
    }
    let cookie = session_cookie("", 0, state.config.cookie_secure());
    Ok(([(header::SET_COOKIE, cookie)], Json(LoggedOut { ok: true })).into_response())
}

#[utoipa::path(get, path = "/api/me", tag = "accounts", security(("bearer" = []), ("cookie" = [])), responses((status = 200, body = Me), crate::openapi::Signed, crate::openapi::Common))]
async fn me(user: AuthUser) -> Json<Me> {
    Json(Me {
        user_id: user.user_id,
        role: user.role,
    })
}

/// Ends every session of an account (its role changed, it was disabled or
/// deleted): here at once, at the other origins at their next sync, at the
/// edge through the relay.
pub async fn end_sessions(state: &AppState, user_id: i64, generation: u32) -> ApiResult<()> {
    state
        .revocations
        .revoke_account(
            &state.redis,
            user_id,
            generation,
            now_ms(),
            state.config.session_ttl_s,
        )
        .await?;
    Ok(())
}

fn session_cookie(token: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}
