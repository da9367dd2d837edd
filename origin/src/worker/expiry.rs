//! The payment window: orders left unpaid past `expires_at` expire, and the units
//! of expired and cancelled orders go back to Redis exactly once.
//!
//! Closing an order and queuing its release is one SQL statement (the release
//! outbox), so no crash can separate them. The outbox is drained by
//! `lua/release.lua`, which marks each order it releases: a drainer that dies
//! after the script but before marking the outbox row done makes the next drain
//! call the script again, which then does nothing. Several sweepers can run at
//! once: rows are claimed with `FOR UPDATE SKIP LOCKED`, and a cancel racing an
//! expiry is settled by the row lock and the `status = 'awaiting_payment'` guard.

use std::sync::LazyLock;

use redis::Script;
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::soldout::SoldOutFlags;
use crate::store::redis::Redis;

static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/release.lua")));

/// How long a release marker is kept: far longer than any outbox row waits.
const MARKER_TTL_S: u64 = 7 * 24 * 3600;

/// A queued release of units.
#[derive(Debug, Clone, FromRow)]
pub struct Release {
    pub order_id: Uuid,
    pub event_id: i64,
    pub tier_id: i64,
    pub user_id: i64,
    pub bucket: i32,
    pub quantity: i32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Orders moved to `expired` in this step.
    pub expired: u64,
    /// Releases that returned units now.
    pub released: u64,
    /// Releases found already done (a previous drain died half-way).
    pub already_released: u64,
}

#[derive(Clone)]
pub struct Sweeper {
    db: PgPool,
    redis: Redis,
    flags: Option<SoldOutFlags>,
    batch: i64,
}

impl Sweeper {
    pub fn new(db: PgPool, redis: Redis, flags: Option<SoldOutFlags>) -> Self {
        Self {
            db,
            redis,
            flags,
            batch: 500,
        }
    }

    /// Expires what is due at `now`, drains the outbox, and lands transfers
    /// between buckets that a crash left half-done.
    pub async fn run_once(&self, now: OffsetDateTime) -> anyhow::Result<SweepOutcome> {
        let expired = self.expire_due(now).await?;
        let (released, already_released) = self.drain().await?;
        let buckets = crate::worker::orders::registered(&self.redis).await?;
        crate::rebalance::finish_pending(&self.redis, &buckets).await?;
        Ok(SweepOutcome {
            expired,
            released,
            already_released,
        })
    }

    /// Closes awaiting orders whose window ended by `now` and queues their units.
    pub async fn expire_due(&self, now: OffsetDateTime) -> sqlx::Result<u64> {
        let done = sqlx::query(
            "WITH due AS ( \
               SELECT id FROM orders WHERE status = 'awaiting_payment' AND expires_at <= $1 \
               ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED \
             ), closed AS ( \
               UPDATE orders o SET status = 'expired', closed_at = now() FROM due \
               WHERE o.id = due.id AND o.status = 'awaiting_payment' RETURNING o.* \
             ) INSERT INTO release_outbox (order_id, event_id, tier_id, user_id, bucket, quantity, reason) \
             SELECT id, event_id, tier_id, user_id, bucket, quantity, 'expired' FROM closed",
        )
        .bind(now)
        .bind(self.batch)
        .execute(&self.db)
        .await?
        .rows_affected();
        if done > 0 {
            tracing::info!(orders = done, "expired unpaid orders");
        }
        Ok(done)
    }

    /// Returns the units of pending outbox rows and marks them done. Returns
    /// (released now, found already released); rows whose stock Redis lost stay
    /// pending until the stock is rebuilt.
    pub async fn drain(&self) -> anyhow::Result<(u64, u64)> {
        let mut tx = self.db.begin().await?;
        let pending: Vec<Release> = sqlx::query_as(
            "SELECT order_id, event_id, tier_id, user_id, bucket, quantity FROM release_outbox \
             WHERE released_at IS NULL ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        if pending.is_empty() {
            return Ok((0, 0));
        }
        let (mut released, mut already) = (0, 0);
        let mut done = Vec::with_capacity(pending.len());
        for release in &pending {
            match self.release(release).await? {
                Returned::Now => released += 1,
                Returned::Already => already += 1,
                Returned::StockLost => continue,
            }
            done.push(release.order_id);
        }
        if done.len() < pending.len() {
            tracing::warn!(
                waiting = pending.len() - done.len(),
                "releases wait: Redis has lost the stock of their sale; run `rushgate-origin stock rebuild`"
            );
        }
        sqlx::query("UPDATE release_outbox SET released_at = now() WHERE order_id = ANY($1)")
            .bind(&done)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((released, already))
    }

    /// Runs `release.lua` for one order.
    pub async fn release(&self, release: &Release) -> redis::RedisResult<Returned> {
        let keys = &self.redis.keys;
        let bucket = release.bucket as u32;
        let returned: i64 = RELEASE
            .key(keys.stock(release.event_id, bucket, release.tier_id))
            .key(keys.users(release.event_id, bucket))
            .key(keys.released(release.event_id, bucket, &release.order_id))
            .arg(release.user_id)
            .arg(release.quantity)
            .arg(MARKER_TTL_S)
            .invoke_async(&mut self.redis.conn.clone())
            .await?;
        let returned = match returned {
            1 => Returned::Now,
            0 => Returned::Already,
            _ => Returned::StockLost,
        };
        if returned == Returned::Now
            && let Some(flags) = &self.flags
        {
            flags.clear(release.tier_id);
        }
        Ok(returned)
    }
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// The units went back now.
    Now,
    /// They had already gone back (an earlier attempt).
    Already,
    /// Redis no longer has the sale's stock: nothing changed; the release must
    /// wait for the stock to be rebuilt.
    StockLost,
}
