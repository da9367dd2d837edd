//! The order worker: reads reservations from the per-bucket streams through a
//! consumer group (`sale::streams`) and writes them to PostgreSQL exactly once.
//!
//! A step ([`OrderWorker::run_once`]) takes, for each stream: this consumer's own
//! unacknowledged entries first (a previous write failed), else entries another
//! consumer left pending for too long (it died; `XAUTOCLAIM`), else new ones. It
//! waits until the entries are on the Redis replicas (`sale::replicas`: a row
//! must never stand for a reservation a failover could undo), inserts them in
//! one statement (`ON CONFLICT (id) DO NOTHING`) and acknowledges only after the
//! commit. So a crash before the insert re-delivers, a crash after it re-inserts
//! nothing, and a PostgreSQL outage leaves entries pending until it is back.
//! Entries that can never be written go to a dead-letter stream, so nothing is
//! dropped.

use std::time::Duration;

use redis::streams::StreamId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::orders::repo;
use crate::sale::record::Reservation;
use crate::sale::{Bucket, Replicas, streams};
use crate::store::redis::Redis;

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Entries taken from streams.
    pub read: usize,
    /// Rows inserted (entries already written before count as read, not written).
    pub written: u64,
    /// Entries that could not be parsed or written and went to a dead-letter stream.
    pub dead: usize,
}

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, other: Self) {
        self.read += other.read;
        self.written += other.written;
        self.dead += other.dead;
    }
}

#[derive(Clone)]
pub struct OrderWorker {
    db: PgPool,
    redis: Redis,
    replicas: Replicas,
    consumer: String,
    batch: usize,
    claim_idle: Duration,
}

impl OrderWorker {
    /// `consumer` must be unique per running worker; entries pending longer than
    /// `claim_idle` at another consumer are taken over.
    pub fn new(
        db: PgPool,
        redis: Redis,
        replicas: Replicas,
        consumer: String,
        claim_idle: Duration,
    ) -> Self {
        Self {
            db,
            redis,
            replicas,
            consumer,
            batch: 2000,
            claim_idle,
        }
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// One pass over every stream.
    pub async fn run_once(&self) -> anyhow::Result<Outcome> {
        let mut total = Outcome::default();
        for bucket in streams::registered(&self.redis).await? {
            total += self.step(bucket).await?;
        }
        Ok(total)
    }

    /// One batch from one stream: take, confirm, write, acknowledge.
    pub async fn step(&self, bucket: Bucket) -> anyhow::Result<Outcome> {
        let entries = self.take(bucket).await?;
        if entries.is_empty() {
            return Ok(Outcome::default());
        }
        self.replicas
            .confirm(&self.redis.keys.bucket(bucket))
            .await?;
        let mut outcome = Outcome {
            read: entries.len(),
            ..Outcome::default()
        };
        let mut orders = Vec::with_capacity(entries.len());
        let mut dead: Vec<(&StreamId, &str)> = Vec::new();
        for entry in &entries {
            match streams::parse(entry) {
                Some(order) => orders.push(order),
                None => dead.push((entry, "unparseable entry")),
            }
        }
        let (written, failed) = self.write(&orders).await?;
        outcome.written = written;
        for id in failed {
            if let Some(entry) = entries
                .iter()
                .find(|e| streams::parse(e).is_some_and(|r| r.id == id))
            {
                dead.push((entry, "rejected by PostgreSQL"));
            }
        }
        outcome.dead = dead.len();
        streams::bury(&self.redis, bucket, &dead).await?;
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let reservations: Vec<String> = orders.iter().map(|r| r.id.to_string()).collect();
        streams::ack(&self.redis, bucket, &ids, &reservations).await?;
        Ok(outcome)
    }

    /// Entries to process: own pending, else stale ones of others, else new.
    pub async fn take(&self, bucket: Bucket) -> anyhow::Result<Vec<StreamId>> {
        Ok(streams::take(
            &self.redis,
            bucket,
            &self.consumer,
            self.batch,
            self.claim_idle,
        )
        .await?)
    }

    /// Acknowledges entries whose rows are committed (see `sale::streams::ack`).
    pub async fn ack(
        &self,
        bucket: Bucket,
        entry_ids: &[&str],
        reservations: &[String],
    ) -> redis::RedisResult<()> {
        streams::ack(&self.redis, bucket, entry_ids, reservations).await
    }

    /// Removes from every group the consumers that hold no pending entries and
    /// have not read for `idle`: workers that stopped (each process joins under a
    /// new name). A live worker removed while idle is re-created by its next read;
    /// `prune.lua` checks and removes atomically, so no pending entry is dropped.
    /// Returns how many were removed.
    pub async fn prune_consumers(&self, idle: Duration) -> anyhow::Result<usize> {
        let mut removed = 0;
        for bucket in streams::registered(&self.redis).await? {
            let names = streams::prune(&self.redis, bucket, &self.consumer, idle).await?;
            for name in &names {
                tracing::info!(event_id = bucket.event_id, bucket = bucket.bucket, consumer = %name, "removed a stopped consumer");
            }
            removed += names.len();
        }
        Ok(removed)
    }

    /// Writes the batch. A batch PostgreSQL refuses for its content (not for being
    /// unreachable) is retried row by row; the ids it still refuses are returned.
    pub async fn write(&self, orders: &[Reservation]) -> anyhow::Result<(u64, Vec<Uuid>)> {
        if orders.is_empty() {
            return Ok((0, Vec::new()));
        }
        match repo::insert_batch(&self.db, orders).await {
            Ok(n) => Ok((n, Vec::new())),
            Err(sqlx::Error::Database(e)) => {
                tracing::warn!(error = %e, "batch refused; writing row by row");
                let mut written = 0;
                let mut failed = Vec::new();
                for order in orders {
                    match repo::insert_batch(&self.db, std::slice::from_ref(order)).await {
                        Ok(n) => written += n,
                        Err(sqlx::Error::Database(e)) => {
                            tracing::error!(order = %order.id, error = %e, "order refused by PostgreSQL");
                            failed.push(order.id);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok((written, failed))
            }
            Err(e) => Err(e.into()),
        }
    }
}
