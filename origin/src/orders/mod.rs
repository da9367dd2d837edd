//! A buyer's orders: status (including `queued` while the reservation is still on
//! its way to PostgreSQL), the list, payment and cancellation.

pub mod payment;
pub mod queued;
pub mod record;
pub mod repo;

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use rushgate_core::api::{Order, OrderList, OrderStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthUser;
use crate::worker::expiry::{Release, Returned};
use payment::PaymentError;
use repo::OrderRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/orders/{id}", get(show))
        .route("/api/orders/{id}/pay", post(pay))
        .route("/api/orders/{id}/cancel", post(cancel))
        .route("/api/me/orders", get(mine))
}

fn order_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid("id", "must be a UUID"))
}

/// An order row that belongs to `user`; others' orders look like missing ones.
fn owned(row: Option<OrderRow>, user: AuthUser) -> Option<OrderRow> {
    row.filter(|r| r.user_id == user.user_id)
}

async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    if let Some(row) = owned(repo::get(&state.db, id).await?, user) {
        return Ok(Json(row.to_api()));
    }
    match queued::find(&state.redis, id).await? {
        Some(order) if order.user_id == user.user_id => Ok(Json(order)),
        _ => Err(ApiError::NotFound("order")),
    }
}

/// The user's orders, newest first: those still queued, then the written ones.
/// Redis is read before PostgreSQL, so an order written in between shows up in
/// both (and is listed once, as written) rather than in neither.
async fn mine(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<OrderList>> {
    let queued = queued::for_user(&state.redis, user.user_id).await?;
    let rows = repo::for_user(&state.db, user.user_id).await?;
    let written: HashSet<Uuid> = rows.iter().map(|r| r.id).collect();
    Ok(Json(OrderList {
        orders: queued
            .into_iter()
            .filter(|o| !written.contains(&o.id))
            .chain(rows.iter().map(OrderRow::to_api))
            .collect(),
    }))
}

/// Refusal for an order that is not awaiting payment (or not written yet).
async fn not_awaiting(state: &AppState, id: Uuid, status: Option<OrderStatus>) -> ApiError {
    match status {
        Some(OrderStatus::Expired) => ApiError::Expired,
        Some(OrderStatus::Cancelled) => ApiError::InvalidState("the order was cancelled".into()),
        Some(OrderStatus::Paid) => ApiError::InvalidState("the order is paid".into()),
        Some(_) => ApiError::InvalidState("the order cannot change now".into()),
        None => match queued::find(&state.redis, id).await {
            Ok(Some(_)) => ApiError::InvalidState(
                "the order is still being created; try again in a moment".into(),
            ),
            Ok(None) => ApiError::NotFound("order"),
            Err(e) => e.into(),
        },
    }
}

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
            return Err(ApiError::Expired);
        }
        OrderStatus::AwaitingPayment => {}
        other => return Err(not_awaiting(&state, id, Some(other)).await),
    }
    // The row stays locked while the provider is asked, so the sweeper cannot
    // expire it half-way through a payment.
    let reference = state.payments.charge(&row).await.map_err(|e| match e {
        PaymentError::Declined => ApiError::PaymentDeclined,
        PaymentError::Unavailable(msg) => ApiError::Unavailable(anyhow::anyhow!(msg)),
    })?;
    let paid = repo::mark_paid(&mut tx, id, &reference).await?;
    tx.commit().await?;
    tracing::info!(order = %id, "paid");
    Ok(Json(paid.to_api()))
}

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
        .ok_or_else(|| ApiError::InvalidState("the order cannot change now".into()))?;
    tx.commit().await?;
    // Give the units back right away; if this fails the sweeper's outbox drain
    // does it, and release.lua makes a second attempt a no-op.
    let release = Release {
        order_id: closed.id,
        event_id: closed.event_id,
        tier_id: closed.tier_id,
        user_id: closed.user_id,
        bucket: closed.bucket,
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
