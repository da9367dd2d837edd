//! Orders in PostgreSQL: batch insert from the stream (exactly once by id), reads,
//! and the status changes that go through the release outbox.

use rushgate_core::api::{Order, OrderStatus};
use sqlx::{FromRow, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::sale::record::Reservation;

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub event_id: i64,
    pub tier_id: i64,
    pub user_id: i64,
    pub bucket: i32,
    pub quantity: i32,
    pub amount_cents: i64,
    pub status: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
}

impl OrderRow {
    pub fn status(&self) -> OrderStatus {
        OrderStatus::parse(&self.status).unwrap_or(OrderStatus::AwaitingPayment)
    }

    pub fn to_api(&self) -> Order {
        Order {
            id: self.id,
            event_id: self.event_id,
            tier_id: self.tier_id,
            user_id: self.user_id,
            quantity: i64::from(self.quantity),
            amount_cents: self.amount_cents,
            status: self.status(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            paid_at: self.paid_at,
        }
    }
}

const ORDER_COLUMNS: &str = "id, event_id, tier_id, user_id, bucket, quantity, amount_cents, \
     status, created_at, expires_at, paid_at";

/// Inserts a batch in one statement; rows that exist already are skipped, so a
/// batch written twice (a worker died before acknowledging) stays one row each.
/// The payment window starts when the order becomes payable, i.e. now.
pub async fn insert_batch(pool: &PgPool, orders: &[Reservation]) -> sqlx::Result<u64> {
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let events: Vec<i64> = orders.iter().map(|o| o.event_id).collect();
    let tiers: Vec<i64> = orders.iter().map(|o| o.tier_id).collect();
    let users: Vec<i64> = orders.iter().map(|o| o.user_id).collect();
    let buckets: Vec<i32> = orders.iter().map(|o| o.bucket as i32).collect();
    let quantities: Vec<i32> = orders.iter().map(|o| o.quantity).collect();
    let amounts: Vec<i64> = orders.iter().map(|o| o.amount_cents).collect();
    let created: Vec<OffsetDateTime> = orders.iter().map(Reservation::created_at).collect();
    let windows: Vec<i32> = orders.iter().map(|o| o.payment_window_s).collect();
    let inserted = sqlx::query(
        "INSERT INTO orders (id, event_id, tier_id, user_id, bucket, quantity, amount_cents, \
         created_at, expires_at) \
         SELECT id, event_id, tier_id, user_id, bucket, quantity, amount_cents, created_at, \
         now() + make_interval(secs => window_s) \
         FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::int[], \
         $7::bigint[], $8::timestamptz[], $9::int[]) \
         AS t(id, event_id, tier_id, user_id, bucket, quantity, amount_cents, created_at, window_s) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&events)
    .bind(&tiers)
    .bind(&users)
    .bind(&buckets)
    .bind(&quantities)
    .bind(&amounts)
    .bind(&created)
    .bind(&windows)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted)
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Locks an order row for a status change.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn for_user(pool: &PgPool, user_id: i64) -> sqlx::Result<Vec<OrderRow>> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT 200"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

pub async fn mark_paid(
    conn: &mut PgConnection,
    id: Uuid,
    payment_ref: &str,
) -> sqlx::Result<OrderRow> {
    sqlx::query_as(&format!(
        "UPDATE orders SET status = 'paid', paid_at = now(), payment_ref = $2 \
         WHERE id = $1 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(id)
    .bind(payment_ref)
    .fetch_one(conn)
    .await
}

/// Closes an awaiting order as `expired` or `cancelled` and queues its units for
/// release, in one statement: either both happen or neither.
pub async fn close_with_release(
    conn: &mut PgConnection,
    id: Uuid,
    status: OrderStatus,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(&format!(
        "WITH closed AS ( \
           UPDATE orders SET status = $2, closed_at = now() \
           WHERE id = $1 AND status = 'awaiting_payment' RETURNING * \
         ), queued AS ( \
           INSERT INTO release_outbox (order_id, event_id, tier_id, user_id, bucket, quantity, reason) \
           SELECT id, event_id, tier_id, user_id, bucket, quantity, $2 FROM closed \
         ) SELECT {ORDER_COLUMNS} FROM closed"
    ))
    .bind(id)
    .bind(status.as_str())
    .fetch_optional(conn)
    .await
}

/// Units an event's orders hold, per tier, bucket and user: awaiting payment,
/// paid, or closed with their release still waiting in the outbox (those units
/// are not back in Redis yet).
#[derive(Debug, Clone, FromRow)]
pub struct HeldUnits {
    pub tier_id: i64,
    pub bucket: i32,
    pub user_id: i64,
    pub units: i64,
}

pub async fn held_units(
    db: impl sqlx::PgExecutor<'_>,
    event_id: i64,
) -> sqlx::Result<Vec<HeldUnits>> {
    sqlx::query_as(
        "SELECT o.tier_id, o.bucket, o.user_id, SUM(o.quantity)::BIGINT AS units \
         FROM orders o LEFT JOIN release_outbox r ON r.order_id = o.id \
         WHERE o.event_id = $1 \
           AND (o.status IN ('awaiting_payment', 'paid') \
                OR (r.order_id IS NOT NULL AND r.released_at IS NULL)) \
         GROUP BY o.tier_id, o.bucket, o.user_id",
    )
    .bind(event_id)
    .fetch_all(db)
    .await
}

/// Which of `ids` already have an order row.
pub async fn existing(db: impl sqlx::PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT id FROM orders WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(db)
        .await
}

/// A closed order whose units are still to go back to Redis.
#[derive(Debug, Clone, FromRow)]
pub struct WaitingRelease {
    pub id: Uuid,
    pub tier_id: i64,
    pub bucket: i32,
    pub quantity: i32,
}

/// An event's closed orders whose release is still in the outbox.
pub async fn waiting_releases(
    db: impl sqlx::PgExecutor<'_>,
    event_id: i64,
) -> sqlx::Result<Vec<WaitingRelease>> {
    sqlx::query_as(
        "SELECT o.id, o.tier_id, o.bucket, o.quantity \
         FROM orders o JOIN release_outbox r ON r.order_id = o.id \
         WHERE o.event_id = $1 AND r.released_at IS NULL \
           AND o.status NOT IN ('awaiting_payment', 'paid')",
    )
    .bind(event_id)
    .fetch_all(db)
    .await
}
