//! Accounts: register, log in, log out, who am I. Sessions are signed tokens
//! (core), carried as a Bearer token or an HttpOnly cookie.

pub mod password;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rushgate_core::Role;
use rushgate_core::api::{Credentials, LoggedIn, Registered};
use rushgate_core::token::SessionClaims;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser};
use crate::users::{self, Password, Username};
use rushgate_core::session::SESSION_COOKIE;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/me", get(me))
}

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

async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let user = users::find_by_username(&state.db, &body.username).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if body.password.len() > 1024 || !password::verify(body.password, stored).await? {
        return Err(ApiError::BadCredentials);
    }
    let user = user.ok_or(ApiError::BadCredentials)?;
    let ttl = Duration::seconds(i64::from(state.config.session_ttl_s));
    let expires_at = OffsetDateTime::now_utc() + ttl;
    let claims = SessionClaims {
        user_id: user.id,
        role: user.role(),
        exp: expires_at.unix_timestamp(),
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

async fn logout(State(state): State<AppState>) -> impl IntoResponse {
    let cookie = session_cookie("", 0, state.config.cookie_secure);
    ([(header::SET_COOKIE, cookie)], Json(json!({"ok": true})))
}

async fn me(user: AuthUser) -> Json<serde_json::Value> {
    Json(json!({"user_id": user.user_id, "role": user.role}))
}

fn session_cookie(token: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}
