//! The order worker: reads reservations from the per-bucket streams through a
//! consumer group and writes them to PostgreSQL exactly once.
//!
//! A step ([`OrderWorker::run_once`]) takes, for each stream: this consumer's own
//! unacknowledged entries first (a previous write failed), else entries another
//! consumer left pending for too long (it died; `XAUTOCLAIM`), else new ones. It
//! inserts them in one statement (`ON CONFLICT (id) DO NOTHING`) and acknowledges
//! only after the commit. So a crash before the insert re-delivers, a crash after
//! it re-inserts nothing, and a PostgreSQL outage leaves entries pending until it
//! is back. Entries that can never be written go to a dead-letter stream, so
//! nothing is dropped.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::Value;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use sqlx::PgPool;
use uuid::Uuid;

use crate::orders::record::Reservation;
use crate::orders::repo;
use crate::store::redis::{BucketRef, Redis};

static PRUNE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/prune.lua")));

/// The consumer group every order worker joins.
pub const GROUP: &str = "order-writers";

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
    consumer: String,
    batch: usize,
    claim_idle: Duration,
}

/// Creates a bucket's stream and consumer group if missing, and lists the bucket
/// in the registry the workers read.
pub async fn register(redis: &Redis, bucket: BucketRef) -> redis::RedisResult<()> {
    let mut conn = redis.conn.clone();
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(redis.keys.orders(bucket.event_id, bucket.bucket))
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => return Err(e),
        _ => {}
    }
    redis::cmd("SADD")
        .arg(redis.keys.streams())
        .arg(bucket.member())
        .query_async(&mut conn)
        .await
}

/// Every registered event bucket.
pub async fn registered(redis: &Redis) -> redis::RedisResult<Vec<BucketRef>> {
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(redis.keys.streams())
        .query_async(&mut redis.conn.clone())
        .await?;
    Ok(members.iter().filter_map(|m| BucketRef::parse(m)).collect())
}

impl OrderWorker {
    /// `consumer` must be unique per running worker; entries pending longer than
    /// `claim_idle` at another consumer are taken over.
    pub fn new(db: PgPool, redis: Redis, consumer: String, claim_idle: Duration) -> Self {
        Self {
            db,
            redis,
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
        for bucket in registered(&self.redis).await? {
            total += self.step(bucket).await?;
        }
        Ok(total)
    }

    /// One batch from one stream: take, write, acknowledge.
    pub async fn step(&self, bucket: BucketRef) -> anyhow::Result<Outcome> {
        let entries = self.take(bucket).await?;
        if entries.is_empty() {
            return Ok(Outcome::default());
        }
        let mut outcome = Outcome {
            read: entries.len(),
            ..Outcome::default()
        };
        let mut orders = Vec::with_capacity(entries.len());
        let mut dead: Vec<(&StreamId, &str)> = Vec::new();
        for entry in &entries {
            match parse(entry) {
                Some(order) => orders.push(order),
                None => dead.push((entry, "unparseable entry")),
            }
        }
        let (written, failed) = self.write(&orders).await?;
        outcome.written = written;
        for id in failed {
            if let Some(entry) = entries
                .iter()
                .find(|e| parse(e).is_some_and(|r| r.id == id))
            {
                dead.push((entry, "rejected by PostgreSQL"));
            }
        }
        outcome.dead = dead.len();
        self.bury(bucket, &dead).await?;
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let reservations: Vec<String> = orders.iter().map(|r| r.id.to_string()).collect();
        self.ack(bucket, &ids, &reservations).await?;
        Ok(outcome)
    }

    /// Removes from every group the consumers that hold no pending entries and
    /// have not read for `idle`: workers that stopped (each process joins under a
    /// new name). A live worker removed while idle is re-created by its next read;
    /// `prune.lua` checks and removes atomically, so no pending entry is dropped.
    /// Returns how many were removed.
    pub async fn prune_consumers(&self, idle: Duration) -> anyhow::Result<usize> {
        let mut removed = 0;
        for bucket in registered(&self.redis).await? {
            let key = self.redis.keys.orders(bucket.event_id, bucket.bucket);
            let names: Vec<String> = PRUNE
                .key(&key)
                .arg(GROUP)
                .arg(idle.as_millis() as u64)
                .arg(&self.consumer)
                .invoke_async(&mut self.redis.conn.clone())
                .await?;
            for name in &names {
                tracing::info!(stream = %key, consumer = %name, "removed a stopped consumer");
            }
            removed += names.len();
        }
        Ok(removed)
    }

    /// Entries to process: own pending, else stale ones of others, else new.
    pub async fn take(&self, bucket: BucketRef) -> anyhow::Result<Vec<StreamId>> {
        let own = self.read_group(bucket, "0").await?;
        if !own.is_empty() {
            return Ok(own);
        }
        let key = self.redis.keys.orders(bucket.event_id, bucket.bucket);
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&key)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.claim_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.redis.conn.clone())
            .await?;
        if !claimed.claimed.is_empty() {
            tracing::info!(stream = %key, entries = claimed.claimed.len(), "reclaimed entries of a stalled consumer");
            return Ok(claimed.claimed);
        }
        self.read_group(bucket, ">").await
    }

    async fn read_group(&self, bucket: BucketRef, from: &str) -> anyhow::Result<Vec<StreamId>> {
        let key = self.redis.keys.orders(bucket.event_id, bucket.bucket);
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.batch)
            .arg("STREAMS")
            .arg(&key)
            .arg(from)
            .query_async(&mut self.redis.conn.clone())
            .await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
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

    /// Acknowledges entries whose rows are committed, drops them from the stream
    /// and from the queued index.
    pub async fn ack(
        &self,
        bucket: BucketRef,
        entry_ids: &[&str],
        reservations: &[String],
    ) -> redis::RedisResult<()> {
        let keys = &self.redis.keys;
        let stream = keys.orders(bucket.event_id, bucket.bucket);
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(entry_ids)
            .ignore();
        pipe.cmd("XDEL").arg(&stream).arg(entry_ids).ignore();
        if !reservations.is_empty() {
            pipe.cmd("HDEL")
                .arg(keys.queued(bucket.event_id, bucket.bucket))
                .arg(reservations)
                .ignore();
        }
        pipe.query_async(&mut self.redis.conn.clone()).await
    }

    /// Keeps entries that can never become rows in `…:dead`, with the reason.
    async fn bury(&self, bucket: BucketRef, dead: &[(&StreamId, &str)]) -> redis::RedisResult<()> {
        if dead.is_empty() {
            return Ok(());
        }
        let key = format!(
            "{}:dead",
            self.redis.keys.bucket(bucket.event_id, bucket.bucket)
        );
        let mut pipe = redis::pipe();
        for (entry, reason) in dead {
            let cmd = pipe.cmd("XADD").arg(&key).arg("*");
            cmd.arg("entry").arg(&entry.id).arg("reason").arg(*reason);
            for (field, value) in &entry.map {
                if let Value::BulkString(bytes) = value {
                    cmd.arg(field).arg(bytes.as_slice());
                }
            }
            cmd.ignore();
        }
        tracing::error!(stream = %key, count = dead.len(), "entries moved to the dead-letter stream");
        pipe.query_async(&mut self.redis.conn.clone()).await
    }
}

/// Reads a reservation entry as written by `reserve.lua`.
pub fn parse(entry: &StreamId) -> Option<Reservation> {
    match entry.map.get("r")? {
        Value::BulkString(bytes) => Reservation::parse(std::str::from_utf8(bytes).ok()?),
        _ => None,
    }
}
