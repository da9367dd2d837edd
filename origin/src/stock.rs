//! Live stock in Redis: written once when an event is approved, read for the
//! `remaining` figures, and rebuilt from PostgreSQL if Redis loses it. Each
//! tier's stock is split over the event's buckets (`core::bucket`), one key per
//! tier and bucket.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::AsyncCommands as _;
use redis::Script;
use rushgate_core::api::EventStatus;
use rushgate_core::bucket;

use crate::events::repo::EventRecord;
use crate::store::redis::{BucketRef, Redis};

/// Remaining units per tier id.
pub type Remaining = HashMap<i64, i64>;

/// Writes each tier's stock to Redis unless it is already there, so approving
/// twice, or a restart, never resets a sale in progress; registers the event's
/// order streams with the workers.
pub async fn init(redis: &Redis, event: &EventRecord) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for tier in &event.tiers {
        for (b, units) in bucket::split(i64::from(tier.stock), event.buckets)
            .into_iter()
            .enumerate()
        {
            pipe.set_nx(redis.keys.stock(event.id, b as u32, tier.id), units)
                .ignore();
        }
    }
    pipe.query_async::<()>(&mut redis.conn.clone()).await?;
    register_buckets(redis, event).await
}

/// Registers the event's order streams with the workers.
async fn register_buckets(redis: &Redis, event: &EventRecord) -> redis::RedisResult<()> {
    for b in 0..event.buckets {
        crate::worker::orders::register(
            redis,
            BucketRef {
                event_id: event.id,
                bucket: b,
            },
        )
        .await?;
    }
    Ok(())
}

static REBUILD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/rebuild.lua")));

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Buckets written back now.
    pub rebuilt: u32,
    /// Buckets whose stock was still there, left as they were.
    pub present: u32,
    /// Units left per tier id, computed from PostgreSQL (what rebuilt buckets got).
    pub remaining: Remaining,
}

/// Writes an approved event's stock and per-user counts back to Redis after
/// Redis lost them, from what PostgreSQL holds: each tier's stock minus the
/// units of its orders that are awaiting payment, paid, or closed with their
/// release still in the outbox (releases wait while the stock is missing, so
/// that figure cannot move under the rebuild). Buckets whose stock is still in
/// Redis are left alone, so running it twice, or on a healthy sale, changes
/// nothing. Reservations that were only in Redis (not yet written) are gone with
/// it; their units count as free.
pub async fn rebuild(
    db: &sqlx::PgPool,
    redis: &Redis,
    event: &EventRecord,
) -> anyhow::Result<Rebuilt> {
    anyhow::ensure!(
        event.status == EventStatus::Approved,
        "only an approved event has stock in Redis"
    );
    let held = crate::orders::repo::held_units(db, event.id).await?;
    let mut out = Rebuilt {
        rebuilt: 0,
        present: 0,
        remaining: Remaining::new(),
    };
    let mut per_bucket: Vec<Vec<i64>> = vec![Vec::new(); event.buckets as usize];
    for tier in &event.tiers {
        let sold: i64 = held
            .iter()
            .filter(|h| h.tier_id == tier.id)
            .map(|h| h.units)
            .sum();
        let left = (i64::from(tier.stock) - sold).max(0);
        out.remaining.insert(tier.id, left);
        for (b, units) in bucket::split(left, event.buckets).into_iter().enumerate() {
            per_bucket[b].push(units);
        }
    }
    for (b, units) in per_bucket.iter().enumerate() {
        let b = b as u32;
        let mut users: HashMap<i64, i64> = HashMap::new();
        for h in held.iter().filter(|h| h.bucket as u32 == b) {
            *users.entry(h.user_id).or_default() += h.units;
        }
        let mut call = REBUILD.key(redis.keys.users(event.id, b));
        for tier in &event.tiers {
            call.key(redis.keys.stock(event.id, b, tier.id));
        }
        call.arg(units);
        for (user, count) in &users {
            call.arg(user).arg(count);
        }
        let done: i64 = call.invoke_async(&mut redis.conn.clone()).await?;
        if done == 1 {
            out.rebuilt += 1;
        } else {
            out.present += 1;
        }
    }
    register_buckets(redis, event).await?;
    Ok(out)
}

/// Remaining units of every tier of `events`, in one round trip. Events that are
/// not approved have sold nothing: their remaining is their stock.
pub async fn remaining(redis: &Redis, events: &[&EventRecord]) -> redis::RedisResult<Remaining> {
    let mut out = Remaining::new();
    let mut keys = Vec::new();
    let mut owners = Vec::new();
    for event in events {
        for tier in &event.tiers {
            if event.status == EventStatus::Approved {
                for b in 0..event.buckets {
                    keys.push(redis.keys.stock(event.id, b, tier.id));
                    owners.push(tier.id);
                }
                out.insert(tier.id, 0);
            } else {
                out.insert(tier.id, i64::from(tier.stock));
            }
        }
    }
    if keys.is_empty() {
        return Ok(out);
    }
    let values: Vec<Option<i64>> = redis.conn.clone().mget(&keys).await?;
    for (tier_id, value) in owners.into_iter().zip(values) {
        *out.entry(tier_id).or_default() += value.unwrap_or(0).max(0);
    }
    Ok(out)
}

/// Total remaining over an event's tiers.
pub fn total(event: &EventRecord, remaining: &Remaining) -> i64 {
    event
        .tiers
        .iter()
        .map(|t| remaining.get(&t.id).copied().unwrap_or(0))
        .sum()
}
