//! Sale statistics per tier and the admission funnel, and the winners export.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rushgate_core::api::{EventStats, Funnel, TierStats};
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::events::repo::EventRecord;
use crate::extract::{AuthUser, Id};
use crate::orders::record::Reservation;
use crate::stock;
use crate::store::redis::Redis;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/events/{id}/stats", get(stats))
        .route("/api/admin/events/{id}/orders.csv", get(orders_csv))
}

async fn stats(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Json<EventStats>> {
    let event = super::events::managed(&state, user, id).await?;
    Ok(Json(event_stats(&state, &event).await?))
}

/// Units by tier and status from PostgreSQL, remaining and queued from Redis.
pub async fn event_stats(state: &AppState, event: &EventRecord) -> ApiResult<EventStats> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT tier_id, status, COALESCE(SUM(quantity), 0)::bigint FROM orders \
         WHERE event_id = $1 GROUP BY tier_id, status",
    )
    .bind(event.id)
    .fetch_all(&state.db)
    .await?;
    let mut by_status: HashMap<(i64, &str), i64> = HashMap::new();
    for (tier, status, units) in &rows {
        by_status.insert((*tier, status.as_str()), *units);
    }
    let remaining = stock::remaining(&state.redis, &[event]).await?;
    let queued = queued_units(&state.redis, event).await?;
    let tiers = event
        .tiers
        .iter()
        .map(|t| {
            let units = |status| by_status.get(&(t.id, status)).copied().unwrap_or(0);
            TierStats {
                tier_id: t.id,
                name: t.name.clone(),
                stock_total: i64::from(t.stock),
                remaining: remaining.get(&t.id).copied().unwrap_or(0),
                reserved: units("awaiting_payment") + queued.get(&t.id).copied().unwrap_or(0),
                paid: units("paid"),
                expired: units("expired"),
                cancelled: units("cancelled"),
            }
        })
        .collect();
    let (funnel, page_views) = funnel(&state.redis, event).await?;
    let unique_visitors: i64 = redis::cmd("PFCOUNT")
        .arg(state.redis.keys.visitors(event.id))
        .query_async(&mut state.redis.conn.clone())
        .await?;
    Ok(EventStats {
        event_id: event.id,
        tiers,
        funnel,
        page_views,
        unique_visitors,
    })
}

/// Units held by reservations not yet written to PostgreSQL, by tier.
async fn queued_units(redis: &Redis, event: &EventRecord) -> redis::RedisResult<HashMap<i64, i64>> {
    let mut pipe = redis::pipe();
    for b in 0..event.buckets {
        pipe.hvals(redis.keys.queued(event.id, b));
    }
    let values: Vec<Vec<String>> = pipe.query_async(&mut redis.conn.clone()).await?;
    let mut units = HashMap::new();
    for record in values
        .iter()
        .flatten()
        .filter_map(|v| Reservation::parse(v))
    {
        *units.entry(record.tier_id).or_insert(0) += i64::from(record.quantity);
    }
    Ok(units)
}

/// The funnel: the event-wide counters (edge and origin flushes) plus what the
/// scripts counted in each bucket; and the page views the edge counted.
async fn funnel(redis: &Redis, event: &EventRecord) -> redis::RedisResult<(Funnel, i64)> {
    let mut pipe = redis::pipe();
    pipe.hgetall(redis.keys.funnel(event.id));
    for b in 0..event.buckets {
        pipe.hgetall(redis.keys.bucket_funnel(event.id, b));
    }
    let maps: Vec<HashMap<String, i64>> = pipe.query_async(&mut redis.conn.clone()).await?;
    let mut total: HashMap<String, i64> = HashMap::new();
    for map in maps {
        for (field, value) in map {
            *total.entry(field).or_insert(0) += value;
        }
    }
    let get = |f: &str| total.get(f).copied().unwrap_or(0);
    let funnel = Funnel {
        edge_arrivals: get("edge_arrivals"),
        deduped: get("deduped"),
        not_admitted: get("not_admitted"),
        forwarded: get("forwarded"),
        rate_limited: get("rate_limited"),
        reserved: get("reserved"),
        sold_out_rejections: get("sold_out_rejections")
            + get("sold_out_flagged")
            + get("sold_out_edge"),
    };
    Ok((funnel, get("page_views")))
}

#[derive(sqlx::FromRow)]
struct Winner {
    id: uuid::Uuid,
    user_id: i64,
    username: Option<String>,
    tier: String,
    quantity: i32,
    amount_cents: i64,
    status: String,
    created_at: time::OffsetDateTime,
    paid_at: Option<time::OffsetDateTime>,
}

/// Paid and awaiting orders as CSV (the stock is small, so the export is too).
async fn orders_csv(
    State(state): State<AppState>,
    user: AuthUser,
    Id(id): Id,
) -> ApiResult<Response> {
    super::events::managed(&state, user, id).await?;
    let winners: Vec<Winner> = sqlx::query_as(
        "SELECT o.id, o.user_id, u.username, t.name AS tier, o.quantity, o.amount_cents, \
         o.status, o.created_at, o.paid_at FROM orders o \
         LEFT JOIN users u ON u.id = o.user_id JOIN tiers t ON t.id = o.tier_id \
         WHERE o.event_id = $1 AND o.status IN ('paid', 'awaiting_payment') \
         ORDER BY o.created_at, o.id",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    let time = |t: &time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut write = |fields: &[&str]| {
        csv.write_record(fields)
            .map_err(|e| ApiError::Internal(e.into()))
    };
    write(&[
        "order_id",
        "user_id",
        "username",
        "tier",
        "quantity",
        "amount_cents",
        "status",
        "created_at",
        "paid_at",
    ])?;
    for w in &winners {
        write(&[
            &w.id.to_string(),
            &w.user_id.to_string(),
            w.username.as_deref().unwrap_or(""),
            &w.tier,
            &w.quantity.to_string(),
            &w.amount_cents.to_string(),
            &w.status,
            &time(&w.created_at),
            &w.paid_at.as_ref().map(time).unwrap_or_default(),
        ])?;
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"event-{id}-orders.csv\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
