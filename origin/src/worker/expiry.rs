//! The payment window: orders left unpaid past `expires_at` expire, and the units
//! of expired and cancelled orders go back to Redis exactly once.
//!
//! Closing an order and queuing its release is one SQL statement (the release
//! outbox), so no crash can separate them. The outbox is drained with
//! `sale::release`, which marks each order it releases and confirms the release
//! on the replicas: a drainer that dies after the script but before marking the
//! outbox row done makes the next drain run the script again, which then does
//! nothing. Several sweepers can run at once: rows are claimed with
//! `FOR UPDATE SKIP LOCKED`, and a cancel racing an expiry is settled by the row
//! lock and the `status = 'awaiting_payment'` guard.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::sale::release::{self, Release, Returned};
use crate::sale::soldout::SoldOutFlags;
use crate::sale::{Replicas, streams, transfer};
use crate::store::redis::Redis;

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
    replicas: Replicas,
    flags: Option<SoldOutFlags>,
    batch: i64,
}

impl Sweeper {
    pub fn new(db: PgPool, redis: Redis, replicas: Replicas, flags: Option<SoldOutFlags>) -> Self {
        Self {
            db,
            redis,
            replicas,
            flags,
            batch: 500,
        }
    }

    /// Expires what is due at `now`, drains the outbox, and lands transfers
    /// between buckets that a crash left half-done.
    pub async fn run_once(&self, now: OffsetDateTime) -> anyhow::Result<SweepOutcome> {
        let expired = self.expire_due(now).await?;
        let (released, already_released) = self.drain().await?;
        let buckets = streams::registered(&self.redis).await?;
        transfer::finish_pending(&self.redis, &self.replicas, &buckets).await?;
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
            "SELECT r.order_id, r.event_id, r.tier_id, r.user_id, r.bucket, e.buckets, r.quantity \
             FROM release_outbox r JOIN events e ON e.id = r.event_id \
             WHERE r.released_at IS NULL ORDER BY r.created_at LIMIT $1 \
             FOR UPDATE OF r SKIP LOCKED",
        )
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        if pending.is_empty() {
            return Ok((0, 0));
        }
        let (mut released, mut already, mut lost, mut failed) = (0, 0, 0, 0);
        let mut done = Vec::with_capacity(pending.len());
        for release in &pending {
            // One bucket's node failing over must not hold up the others.
            match self.release(release).await {
                Ok(Returned::Now) => released += 1,
                Ok(Returned::Already) => already += 1,
                Ok(Returned::StockLost) => {
                    lost += 1;
                    continue;
                }
                Err(e) => {
                    failed += 1;
                    tracing::debug!(order = %release.order_id, error = %e, "release failed");
                    continue;
                }
            }
            done.push(release.order_id);
        }
        if lost > 0 {
            tracing::warn!(
                waiting = lost,
                "releases wait: Redis has lost the stock of their sale until it is rebuilt"
            );
        }
        if failed > 0 {
            tracing::warn!(
                waiting = failed,
                "releases wait: Redis did not answer or confirm"
            );
        }
        sqlx::query("UPDATE release_outbox SET released_at = now() WHERE order_id = ANY($1)")
            .bind(&done)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((released, already))
    }

    /// Gives one order's units back (confirmed on the replicas), and reopens
    /// its tier in this process's sold-out flags.
    pub async fn release(&self, release: &Release) -> Result<Returned, crate::sale::Error> {
        let returned = release::release(&self.redis, &self.replicas, release).await?;
        if returned == Returned::Now
            && let Some(flags) = &self.flags
        {
            flags.clear(release.tier_id);
        }
        Ok(returned)
    }
}
