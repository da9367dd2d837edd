//! Accounts: register, log in, log out, who am I. Sessions are signed tokens
//! (core), carried as a Bearer token or an HttpOnly cookie; logging out revokes
//! the session (`revoked`).

pub mod password;
pub mod revoked;

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rushgate_core::ErrorBody;
use rushgate_core::Role;
use rushgate_core::api::{Credentials, LoggedIn, LoggedOut, Me, Registered};
use rushgate_core::token::SessionClaims;
use time::{Duration, OffsetDateTime};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser, session_claims};
use crate::users::{self, Password, Username};
use rushgate_core::ErrorCode;
use rushgate_core::session::SESSION_COOKIE;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[utoipa::path(post, path = "/api/auth/register", tag = "accounts", request_body = Credentials, responses((status = 201, body = Registered), (status = 409, description = "`username_taken`", body = ErrorBody), crate::openapi::Common))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    let username = Username::parse(&body.username)?;
    let password = Password::parse(&body.password)?;
    let user_id = users::create(&state.db, &username, password, Role::Customer).await?;
    tracing::info!(user_id, "registered");
    Ok((StatusCode::CREATED, Json(Registered { user_id })))
}

#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = Credentials, responses((status = 200, description = "the session, also as an HttpOnly cookie", body = LoggedIn), (status = 401, description = "`bad_credentials`", body = ErrorBody), crate::openapi::Common))]
async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let user = users::find_by_username(&state.db, &body.username).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if body.password.len() > 1024 || !password::verify(body.password, stored).await? {
        return Err(ApiError::from(ErrorCode::BadCredentials));
    }
    let user = user.ok_or(ApiError::from(ErrorCode::BadCredentials))?;
    let ttl = Duration::seconds(i64::from(state.config.session_ttl_s));
    let expires_at = OffsetDateTime::now_utc() + ttl;
    let claims = SessionClaims {
        user_id: user.id,
        role: user.role(),
        exp: expires_at.unix_timestamp(),
        sid: rand::random(),
    };
    let token = state.keys.sign(&claims);
    let cookie = session_cookie(&token, ttl.whole_seconds(), state.config.cookie_secure);
    let body = LoggedIn {
        token,
        user_id: user.id,
        role: claims.role,
        expires_at,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Ends the session the request carries (Bearer token or cookie): it is refused
/// from now on, whichever way it is presented, and the cookie is cleared.
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts", security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "the session is ended (refused from now on, as token and as cookie) and the cookie cleared; also without a session", body = LoggedOut), crate::openapi::Common))]
async fn logout(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    let now = OffsetDateTime::now_utc();
    if let Some(claims) = session_claims(&parts, &state.keys, now.unix_timestamp()) {
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        state
            .revocations
            .revoke(
                &state.redis,
                claims.sid,
                claims.exp,
                now_ms,
                state.config.session_ttl_s,
            )
            .await?;
        tracing::info!(user_id = claims.user_id, "logged out");
    }
    let cookie = session_cookie("", 0, state.config.cookie_secure);
    Ok(([(header::SET_COOKIE, cookie)], Json(LoggedOut { ok: true })).into_response())
}

#[utoipa::path(get, path = "/api/me", tag = "accounts", security(("bearer" = []), ("cookie" = [])), responses((status = 200, body = Me), crate::openapi::Signed, crate::openapi::Common))]
async fn me(user: AuthUser) -> Json<Me> {
    Json(Me {
        user_id: user.user_id,
        role: user.role,
    })
}

fn session_cookie(token: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}
