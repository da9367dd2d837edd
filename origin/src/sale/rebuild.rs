//! Writing an approved event's stock and per-user counts back to Redis after
//! Redis lost them (`rebuild.lua`), from what PostgreSQL holds. The workers'
//! reconciliation (`sale::ledger`) does it by itself when it finds an approved
//! event without any stock key; `rushgate-origin stock rebuild` does it on
//! demand.

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
    /// Units left per tier id, computed from PostgreSQL (what rebuilt buckets got).
    pub remaining: Remaining,
}

/// Each tier's stock minus the units of its orders that are awaiting payment,
/// paid, or closed with their release still in the outbox (releases wait while
/// the stock is missing, so that figure cannot move under the rebuild). Buckets
/// whose stock is still in Redis are left alone, so running it twice, or on a
/// healthy sale, changes nothing. Reservations that were only in Redis (not yet
/// written) are gone with it; their units count as free.
pub async fn rebuild(
    db: &sqlx::PgPool,
    redis: &Redis,
    replicas: &Replicas,
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
    for (b, units) in Bucket::all(event.id, event.buckets).zip(&per_bucket) {
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
        } else {
            out.present += 1;
        }
        streams::register(redis, b).await?;
        replicas.confirm(&keys).await?;
    }
    Ok(out)
}
