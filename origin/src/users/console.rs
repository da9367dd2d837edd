//! The admins' accounts console: find accounts, change a role, disable or
//! enable, delete. Every change that matters ends the account's sessions at
//! once (its generation moves on: `auth::revoked`, and through the relay at the
//! edge). Deleting keeps the row — orders and events point at it — without its
//! name or password. The deployment always keeps an enabled admin.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use rushgate_core::ErrorBody;
use rushgate_core::api::{UserChange, UserList, UserView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Id, Staff};

use super::Change;

/// The most accounts one listing answers.
const LISTED: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(change, delete))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct Search {
    /// Accounts whose username starts with this (all without it).
    username: Option<String>,
}

#[utoipa::path(get, path = "/api/admin/users", tag = "console", params(Search), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "up to 100 accounts, by username (admins)", body = UserList), crate::openapi::Managed, crate::openapi::Common))]
async fn list(
    State(state): State<AppState>,
    user: Staff,
    Query(search): Query<Search>,
) -> ApiResult<Json<UserList>> {
    user.reviewer()?;
    let prefix = search.username.unwrap_or_default();
    if prefix.chars().count() > 32 {
        return Err(ApiError::invalid("username", "is at most 32 characters"));
    }
    let users = super::list(&state.db, &prefix, LISTED).await?;
    Ok(Json(UserList {
        users: users.iter().map(super::UserRow::view).collect(),
    }))
}

#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "console", params(("id" = i64, Path, description = "user id")), security(("bearer" = []), ("cookie" = [])), request_body = UserChange, responses((status = 200, description = "changed; a new role or disabling ends the account's sessions everywhere", body = UserView), (status = 404, description = "`not_found`", body = ErrorBody), (status = 409, description = "`invalid_state`: the account is deleted, or it is the only enabled admin", body = ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn change(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
    ApiJson(body): ApiJson<UserChange>,
) -> ApiResult<Json<UserView>> {
    let admin = user.reviewer()?;
    let change = Change {
        role: body.role,
        disabled: body.disabled,
        delete: false,
    };
    let (after, moved) = super::change(&state.db, id, change)
        .await?
        .ok_or(ApiError::not_found("user"))?;
    if moved {
        crate::auth::end_sessions(&state, id, after.generation()).await?;
    }
    tracing::info!(user_id = id, by = admin.user_id, role = %after.role(), disabled = after.disabled, "account changed");
    Ok(Json(after.view()))
}

#[utoipa::path(delete, path = "/api/admin/users/{id}", tag = "console", params(("id" = i64, Path, description = "user id")), security(("bearer" = []), ("cookie" = [])), responses((status = 204, description = "deleted: its sessions end, its name and password are gone, its orders stay"), (status = 404, description = "`not_found`", body = ErrorBody), (status = 409, description = "`invalid_state`: already deleted, or the only enabled admin", body = ErrorBody), crate::openapi::Managed, crate::openapi::Common))]
async fn delete(State(state): State<AppState>, user: Staff, Id(id): Id) -> ApiResult<StatusCode> {
    let admin = user.reviewer()?;
    let change = Change {
        delete: true,
        ..Change::default()
    };
    let (after, _) = super::change(&state.db, id, change)
        .await?
        .ok_or(ApiError::not_found("user"))?;
    crate::auth::end_sessions(&state, id, after.generation()).await?;
    tracing::info!(user_id = id, by = admin.user_id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}
