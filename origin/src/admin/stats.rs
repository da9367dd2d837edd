//! Sale statistics per tier and the admission funnel, and the winners export.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use futures::future::join_all;
use rushgate_core::api::{EventStats, Funnel, TierStats};
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::csv_file::CsvFile;
use crate::error::ApiResult;
use crate::events::repo::EventRecord;
use crate::extract::{Id, Staff};
use crate::sale::Bucket;
use crate::sale::record::Reservation;
use crate::store::redis::Redis;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(orders_csv))
}

#[utoipa::path(get, path = "/api/admin/events/{id}/stats", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "units per tier and status, the admission funnel, page views", body = EventStats), crate::openapi::Managed, crate::openapi::Common))]
async fn stats(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
) -> ApiResult<Json<EventStats>> {
    let event = super::events::managed(&state, user, id).await?;
    Ok(Json(event_stats(&state, &event).await?))
}

/// Units by tier and status from PostgreSQL, remaining and queued from Redis.
/// Redis is read first, and queued reservations that are rows by the time
/// PostgreSQL is read count once, as rows.
pub async fn event_stats(state: &AppState, event: &EventRecord) -> ApiResult<EventStats> {
    let mut buckets = per_bucket(&state.redis, event).await?;
    // One snapshot for the rows and for which queued records are rows: a row
    // written between two reads would otherwise count in neither.
    let mut tx = crate::store::db::snapshot(&state.db).await?;
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT tier_id, status, COALESCE(SUM(quantity), 0)::bigint FROM orders \
         WHERE event_id = $1 GROUP BY tier_id, status",
    )
    .bind(event.id)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_status: HashMap<(i64, &str), i64> = HashMap::new();
    for (tier, status, units) in &rows {
        by_status.insert((*tier, status.as_str()), *units);
    }
    let ids: Vec<uuid::Uuid> = buckets.queued_records.iter().map(|r| r.id).collect();
    let written = crate::orders::repo::existing(&mut *tx, &ids).await?;
    tx.commit().await?;
    for r in &buckets.queued_records {
        if !written.contains(&r.id) {
            *buckets.queued.entry(r.tier_id).or_insert(0) += i64::from(r.quantity);
        }
    }
    let remaining = &buckets.remaining;
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
                reserved: units("awaiting_payment")
                    + buckets.queued.get(&t.id).copied().unwrap_or(0),
                paid: units("paid"),
                expired: units("expired"),
                cancelled: units("cancelled"),
            }
        })
        .collect();
    // The event-wide counters, its visitors and its ledger share the event's slot.
    let (event_counters, unique_visitors, ledger): (HashMap<String, i64>, i64, Option<String>) =
        redis::pipe()
            .hgetall(state.redis.keys.funnel(event.id))
            .pfcount(state.redis.keys.visitors(event.id))
            .get(state.redis.keys.ledger(event.id))
            .query_async(&mut state.redis.conn.clone())
            .await?;
    let (funnel, page_views) = funnel([event_counters].into_iter().chain(buckets.funnels));
    Ok(EventStats {
        event_id: event.id,
        tiers,
        funnel,
        page_views,
        unique_visitors,
        ledger: ledger.and_then(|json| serde_json::from_str(&json).ok()),
        queue: match event.admission.queue_window_s() {
            Some(_) => Some(crate::queue::stats(state, event).await?),
            None => None,
        },
    })
}

/// What an event's buckets hold.
struct PerBucket {
    /// Units left, by tier (the sum over the buckets).
    remaining: HashMap<i64, i64>,
    /// Reservations on their way to PostgreSQL.
    queued_records: Vec<Reservation>,
    /// Units held by reservations not yet written to PostgreSQL, by tier.
    queued: HashMap<i64, i64>,
    /// The counters the scripts keep in each bucket.
    funnels: Vec<HashMap<String, i64>>,
}

/// Stock per tier, queued records, the scripts' counters.
type BucketReply = (Vec<Option<i64>>, Vec<String>, HashMap<String, i64>);

/// Reads every bucket at once, one round trip each (a bucket is one slot).
async fn per_bucket(redis: &Redis, event: &EventRecord) -> redis::RedisResult<PerBucket> {
    let reads = Bucket::all(event.id, event.buckets).map(|b| async move {
        let keys = redis.keys.bucket(b);
        let stock: Vec<String> = event.tiers.iter().map(|t| keys.stock(t.id)).collect();
        redis::pipe()
            .cmd("MGET")
            .arg(&stock)
            .hvals(keys.queued())
            .hgetall(keys.funnel())
            .query_async::<BucketReply>(&mut redis.conn.clone())
            .await
    });
    let mut out = PerBucket {
        remaining: event.tiers.iter().map(|t| (t.id, 0)).collect(),
        queued_records: Vec::new(),
        queued: HashMap::new(),
        funnels: Vec::new(),
    };
    for read in join_all(reads).await {
        let (stock, records, funnel) = read?;
        for (tier, units) in event.tiers.iter().zip(stock) {
            *out.remaining.entry(tier.id).or_insert(0) += units.unwrap_or(0).max(0);
        }
        out.queued_records
            .extend(records.iter().filter_map(|v| Reservation::parse(v)));
        out.funnels.push(funnel);
    }
    Ok(out)
}

/// The funnel, summed over the event-wide counters (edge and origin flushes)
/// and what the scripts counted in each bucket; and the page views the edge
/// counted.
fn funnel(maps: impl Iterator<Item = HashMap<String, i64>>) -> (Funnel, i64) {
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
    (funnel, get("page_views"))
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
#[utoipa::path(get, path = "/api/admin/events/{id}/orders.csv", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "paid and awaiting orders: order_id,user_id,username,tier,quantity,amount_cents,status,created_at,paid_at", content_type = "text/csv", body = String), crate::openapi::Managed, crate::openapi::Common))]
async fn orders_csv(State(state): State<AppState>, user: Staff, Id(id): Id) -> ApiResult<Response> {
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
    let mut file = CsvFile::new(&[
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
        file.row(&[
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
    file.attachment(&format!("event-{id}-orders.csv"))
}
