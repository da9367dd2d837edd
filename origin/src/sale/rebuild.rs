//! Writing an approved event's stock and per-user counts back to Redis after
//! Redis lost them (`rebuild.lua`), from what PostgreSQL holds. The workers'
//! reconciliation (`sale::ledger`) does it by itself when it finds a bucket of
//! an approved event without any stock key; `rushgate-origin stock rebuild`
//! does it on demand.

use std::collections::HashMap;

use rushgate_core::api::EventStatus;
use rushgate_core::bucket;

use super::keys::Bucket;
use super::lua::Lua;
use super::replicas::Replicas;
use super::stock::Remaining;
use super::streams;
use crate::events::repo::EventRecord;
use crate::store::redis::Redis;

pub static REBUILD: Lua = Lua::new(
    include_str!("rebuild.lua"),
    &["users", "stock.."],
    &["units.."],
);

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Buckets written back now.
    pub rebuilt: u32,
    /// Buckets whose stock was still there, left as they were.
    pub present: u32,
    /// Units written back per tier id, over the rebuilt buckets.
    pub written: Remaining,
}

/// Writes back the buckets of an approved event that lost their stock. When
/// every bucket is gone, each tier gets its stock minus the units of its orders
/// that are awaiting payment, paid, or closed with their release still in the
/// outbox (releases wait while the stock is missing, so that figure cannot move
/// under the rebuild), split over the buckets as at approval; reservations that
/// were only in Redis are gone with it, and their units count as free.
///
/// When only some buckets are gone (one node lost its data while the others
/// sold on), how many units the lost ones held cannot be known from
/// PostgreSQL alone: they come back empty, with their users' counts, and the
/// ledger check (`sale::ledger`) reports the units still missing with the
/// `stock adjust` command that returns them. Buckets whose stock is still in
/// Redis are left alone, so running it twice, or on a healthy sale, changes
/// nothing. `only`, if given, limits it to those buckets.
pub async fn rebuild(
    db: &sqlx::PgPool,
    redis: &Redis,
    replicas: &Replicas,
    event: &EventRecord,
    only: Option<&[u32]>,
) -> anyhow::Result<Rebuilt> {
    anyhow::ensure!(
        event.status == EventStatus::Approved,
        "only an approved event has stock in Redis"
    );
    let present = present(redis, event).await?;
    let all_lost = !present.iter().any(|&p| p);
    let held = crate::orders::repo::held_units(db, event.id).await?;
    let mut out = Rebuilt {
        rebuilt: 0,
        present: 0,
        written: Remaining::new(),
    };
    let mut per_bucket: Vec<Vec<i64>> = vec![Vec::new(); event.buckets.max(1) as usize];
    for tier in &event.tiers {
        let sold: i64 = held
            .iter()
            .filter(|h| h.tier_id == tier.id)
            .map(|h| h.units)
            .sum();
        let left = if all_lost {
            (i64::from(tier.stock) - sold).max(0)
        } else {
            0
        };
        for (b, units) in bucket::split(left, event.buckets).into_iter().enumerate() {
            per_bucket[b].push(units);
        }
    }
    for (b, units) in Bucket::all(event.id, event.buckets).zip(&per_bucket) {
        if present[b.bucket as usize] {
            out.present += 1;
            streams::register(redis, b).await?;
            continue;
        }
        if only.is_some_and(|only| !only.contains(&b.bucket)) {
            continue;
        }
        let mut users: HashMap<i64, i64> = HashMap::new();
        for h in held.iter().filter(|h| h.bucket as u32 == b.bucket) {
            *users.entry(h.user_id).or_default() += h.units;
        }
        let keys = redis.keys.bucket(b);
        let mut names = vec![keys.users()];
        names.extend(event.tiers.iter().map(|t| keys.stock(t.id)));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut call = REBUILD.keys(&names);
        call.arg(units);
        for (user, count) in &users {
            call.arg(user).arg(count);
        }
        let done: i64 = call.invoke_async(&mut redis.conn.clone()).await?;
        if done == 1 {
            out.rebuilt += 1;
            for (tier, n) in event.tiers.iter().zip(units) {
                *out.written.entry(tier.id).or_default() += n;
            }
        } else {
            out.present += 1;
        }
        streams::register(redis, b).await?;
        replicas.confirm(&keys).await?;
    }
    Ok(out)
}

/// Per bucket: whether any of its stock keys exists (one command per bucket,
/// all at once: each bucket is one slot).
pub async fn present(redis: &Redis, event: &EventRecord) -> redis::RedisResult<Vec<bool>> {
    let reads = Bucket::all(event.id, event.buckets).map(|b| async move {
        let keys = redis.keys.bucket(b);
        let mut cmd = redis::cmd("EXISTS");
        for tier in &event.tiers {
            cmd.arg(keys.stock(tier.id));
        }
        cmd.query_async::<i64>(&mut redis.conn.clone()).await
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .map(|found| found.map(|n| n > 0))
        .collect()
}
