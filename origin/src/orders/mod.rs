//! A buyer's orders: status (including `queued` while the reservation is still on
//! its way to PostgreSQL), the list, payment and cancellation.

pub mod payment;
pub mod repo;

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use rushgate_core::ErrorBody;
use rushgate_core::api::{Order, OrderList, OrderStatus};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUser;
use crate::sale::release::{Release, Returned};
use payment::PaymentError;
use repo::OrderRow;
use rushgate_core::ErrorCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(pay))
        .routes(routes!(cancel))
        .routes(routes!(mine))
}

fn order_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid("id", "must be a UUID"))
}

/// An order row that belongs to `user`; others' orders look like missing ones.
fn owned(row: Option<OrderRow>, user: AuthUser) -> Option<OrderRow> {
    row.filter(|r| r.user_id == user.user_id)
}

#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", params(("id" = String, Path, description = "order id (UUID)")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "`status` is `queued` until the order is written", body = Order), (status = 404, description = "`not_found`: no such order, or someone else's", body = ErrorBody), crate::openapi::Signed, crate::openapi::Common))]
async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    if let Some(row) = owned(repo::get(&state.db, id).await?, user) {
        return Ok(Json(row.to_api()));
    }
    match crate::sale::queued::find(&state.redis, id).await? {
        Some(order) if order.user_id == user.user_id => Ok(Json(order)),
        _ => Err(ApiError::not_found("order")),
    }
}

/// The user's orders, newest first: those still queued, then the written ones.
/// Redis is read before PostgreSQL, so an order written in between shows up in
/// both (and is listed once, as written) rather than in neither.
#[utoipa::path(get, path = "/api/me/orders", tag = "orders", security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "queued orders, then up to 200 written ones, newest first; `events`: the changes of the written ones, newest first, with times", body = OrderList), crate::openapi::Signed, crate::openapi::Common))]
async fn mine(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<OrderList>> {
    let queued = crate::sale::queued::for_user(&state.redis, user.user_id).await?;
    let rows = repo::for_user(&state.db, user.user_id).await?;
    let written: HashSet<Uuid> = rows.iter().map(|r| r.id).collect();
    let events = crate::webhooks::repo::notices(&state.db, user.user_id).await?;
    Ok(Json(OrderList {
        orders: queued
            .into_iter()
            .filter(|o| !written.contains(&o.id))
            .chain(rows.iter().map(OrderRow::to_api))
            .collect(),
        events,
    }))
}

/// Refusal for an order that is not awaiting payment (or not written yet).
async fn not_awaiting(state: &AppState, id: Uuid, status: Option<OrderStatus>) -> ApiError {
    match status {
        Some(OrderStatus::Expired) => ApiError::from(ErrorCode::Expired),
        Some(OrderStatus::Cancelled) => ApiError::invalid_state("the order was cancelled"),
        Some(OrderStatus::Paid) => ApiError::invalid_state("the order is paid"),
        Some(_) => ApiError::invalid_state("the order cannot change now"),
        None => match crate::sale::queued::find(&state.redis, id).await {
            Ok(Some(_)) => {
                ApiError::invalid_state("the order is still being created; try again in a moment")
            }
            Ok(None) => ApiError::not_found("order"),
            Err(e) => e.into(),
        },
    }
}

#[utoipa::path(post, path = "/api/orders/{id}/pay", tag = "orders", params(("id" = String, Path, description = "order id (UUID)")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "paid (paying again answers the paid order)", body = Order), (status = 402, description = "`payment_declined`", body = ErrorBody), (status = 409, description = "`invalid_state`: cancelled, or still queued", body = ErrorBody), (status = 410, description = "`expired`: past the payment window", body = ErrorBody), (status = 404, description = "`not_found`: no such order, or someone else's", body = ErrorBody), crate::openapi::Signed, crate::openapi::Common))]
async fn pay(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    let mut tx = state.db.begin().await?;
    let Some(row) = owned(repo::lock(&mut tx, id).await?, user) else {
        drop(tx);
        return Err(not_awaiting(&state, id, None).await);
    };
    match row.status() {
        OrderStatus::Paid => return Ok(Json(row.to_api())),
        OrderStatus::AwaitingPayment if row.expires_at <= OffsetDateTime::now_utc() => {
            // Past its window but not swept yet: expire it now, units go back.
            repo::close_with_release(&mut tx, id, OrderStatus::Expired).await?;
            tx.commit().await?;
            return Err(ApiError::from(ErrorCode::Expired));
        }
        OrderStatus::AwaitingPayment => {}
        other => return Err(not_awaiting(&state, id, Some(other)).await),
    }
    // The row stays locked while the provider is asked, so the sweeper cannot
    // expire it half-way through a payment.
    let reference = state.payments.charge(&row).await.map_err(|e| match e {
        PaymentError::Declined => ApiError::from(ErrorCode::PaymentDeclined),
        PaymentError::Unavailable(msg) => ApiError::Unavailable(anyhow::anyhow!(msg)),
    })?;
    let paid = repo::mark_paid(&mut tx, id, &reference).await?;
    tx.commit().await?;
    tracing::info!(order = %id, "paid");
    Ok(Json(paid.to_api()))
}

#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders", params(("id" = String, Path, description = "order id (UUID)")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "cancelled, the units back at once (cancelling again answers the cancelled order)", body = Order), (status = 409, description = "`invalid_state`: paid, or still queued", body = ErrorBody), (status = 410, description = "`expired`", body = ErrorBody), (status = 404, description = "`not_found`: no such order, or someone else's", body = ErrorBody), crate::openapi::Signed, crate::openapi::Common))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    let mut tx = state.db.begin().await?;
    let Some(row) = owned(repo::lock(&mut tx, id).await?, user) else {
        drop(tx);
        return Err(not_awaiting(&state, id, None).await);
    };
    match row.status() {
        OrderStatus::Cancelled => return Ok(Json(row.to_api())),
        OrderStatus::AwaitingPayment => {}
        other => return Err(not_awaiting(&state, id, Some(other)).await),
    }
    let closed = repo::close_with_release(&mut tx, id, OrderStatus::Cancelled)
        .await?
        .ok_or_else(|| ApiError::invalid_state("the order cannot change now"))?;
    tx.commit().await?;
    // Give the units back right away; if this fails the sweeper's outbox drain
    // does it, and release.lua makes a second attempt a no-op.
    let Some(event) = state.events.get(closed.event_id).await? else {
        tracing::warn!(order = %id, "release deferred to the sweeper: event not readable");
        return Ok(Json(closed.to_api()));
    };
    let release = Release {
        order_id: closed.id,
        event_id: closed.event_id,
        tier_id: closed.tier_id,
        user_id: closed.user_id,
        bucket: closed.bucket,
        buckets: event.buckets as i32,
        quantity: closed.quantity,
    };
    match state.sweeper.release(&release).await {
        Ok(Returned::StockLost) => {
            tracing::warn!(order = %id, "release waits for the stock to be rebuilt");
        }
        Ok(Returned::Now | Returned::Already) => {
            sqlx::query("UPDATE release_outbox SET released_at = now() WHERE order_id = $1")
                .bind(id)
                .execute(&state.db)
                .await?;
        }
        Err(e) => tracing::warn!(order = %id, error = %e, "release deferred to the sweeper"),
    }
    tracing::info!(order = %id, "cancelled");
    Ok(Json(closed.to_api()))
}
