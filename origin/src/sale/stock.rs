//! Live stock in Redis: written once when an event is approved, and read for
//! the `remaining` figures. Each tier's stock is split over the event's buckets
//! (`core::bucket`), one key per tier and bucket.

use std::collections::HashMap;

use redis::AsyncCommands as _;
use rushgate_core::api::EventStatus;
use rushgate_core::bucket;

use super::keys::Bucket;
use super::lua::Lua;
use super::replicas::Replicas;
use super::streams;
use crate::events::repo::EventRecord;
use crate::sale;
use crate::store::redis::Redis;

/// Remaining units per tier id.
pub type Remaining = HashMap<i64, i64>;

pub static ADJUST: Lua = Lua::new(include_str!("adjust.lua"), &["stock"], &["units"]);

/// Writes each tier's stock to Redis unless it is already there, so approving
/// twice, or a restart, never resets a sale in progress; registers the event's
/// order streams with the workers; confirms it all on the replicas.
pub async fn init(
    redis: &Redis,
    replicas: &Replicas,
    event: &EventRecord,
) -> Result<(), sale::Error> {
    let splits: Vec<Vec<i64>> = event
        .tiers
        .iter()
        .map(|t| bucket::split(i64::from(t.stock), event.buckets))
        .collect();
    for b in Bucket::all(event.id, event.buckets) {
        let keys = redis.keys.bucket(b);
        // One bucket's keys are one slot: one pipeline each.
        let mut pipe = redis::pipe();
        for (tier, split) in event.tiers.iter().zip(&splits) {
            pipe.set_nx(keys.stock(tier.id), split[b.bucket as usize])
                .ignore();
        }
        pipe.query_async::<()>(&mut redis.conn.clone()).await?;
        streams::register(redis, b).await?;
        replicas.confirm(&keys).await?;
    }
    Ok(())
}

/// Remaining units of every tier of `events`. Events that are not approved
/// have sold nothing: their remaining is their stock. One MGET reads every
/// bucket (split per node by the cluster client); if it fails, each bucket is
/// read on its own, and a bucket whose node does not answer (a master failing
/// over) counts as one unit per tier, so a sale is never shown sold out while
/// part of its stock cannot be seen. Only when no bucket answers is it an error.
pub async fn remaining(redis: &Redis, events: &[&EventRecord]) -> redis::RedisResult<Remaining> {
    let mut out = Remaining::new();
    // Per bucket: its tiers and their stock keys.
    let mut buckets: Vec<(Vec<i64>, Vec<String>)> = Vec::new();
    for event in events {
        let approved = event.status == EventStatus::Approved;
        for tier in &event.tiers {
            out.insert(tier.id, if approved { 0 } else { i64::from(tier.stock) });
        }
        if !approved || event.tiers.is_empty() {
            continue;
        }
        for b in Bucket::all(event.id, event.buckets) {
            let keys = redis.keys.bucket(b);
            buckets.push((
                event.tiers.iter().map(|t| t.id).collect(),
                event.tiers.iter().map(|t| keys.stock(t.id)).collect(),
            ));
        }
    }
    if buckets.is_empty() {
        return Ok(out);
    }
    let all: Vec<&String> = buckets.iter().flat_map(|(_, keys)| keys).collect();
    if let Ok(values) = redis.conn.clone().mget::<_, Vec<Option<i64>>>(&all).await {
        let tiers = buckets.iter().flat_map(|(tiers, _)| tiers);
        for (tier_id, units) in tiers.zip(values) {
            *out.entry(*tier_id).or_default() += units.unwrap_or(0).max(0);
        }
        return Ok(out);
    }
    let reads = buckets.iter().map(|(tiers, keys)| async move {
        let values: redis::RedisResult<Vec<Option<i64>>> = redis.conn.clone().mget(keys).await;
        (tiers, values)
    });
    let mut failure = None;
    let mut answered = false;
    for (tiers, values) in futures::future::join_all(reads).await {
        match values {
            Ok(values) => {
                answered = true;
                for (tier_id, units) in tiers.iter().zip(values) {
                    *out.entry(*tier_id).or_default() += units.unwrap_or(0).max(0);
                }
            }
            Err(e) => {
                for tier_id in tiers {
                    *out.entry(*tier_id).or_default() += 1;
                }
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) if !answered => Err(e),
        _ => Ok(out),
    }
}

/// Total remaining over an event's tiers.
pub fn total(event: &EventRecord, remaining: &Remaining) -> i64 {
    event
        .tiers
        .iter()
        .map(|t| remaining.get(&t.id).copied().unwrap_or(0))
        .sum()
}

/// What `stock adjust` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjusted {
    /// Units added (negative: taken), over every bucket.
    pub units: i64,
    /// Buckets left alone because their stock key is gone (rebuild them first).
    pub missing: u32,
}

/// Adds `units` of a tier to an event's stock, split over its buckets as at
/// approval, or takes `-units` out, fullest bucket first; never below zero.
/// Each change is confirmed on the replicas.
pub async fn adjust(
    redis: &Redis,
    replicas: &Replicas,
    event: &EventRecord,
    tier_id: i64,
    units: i64,
) -> Result<Adjusted, sale::Error> {
    let buckets: Vec<Bucket> = Bucket::all(event.id, event.buckets).collect();
    let mut plan: Vec<(Bucket, i64)> = Vec::new();
    if units >= 0 {
        let split = bucket::split(units, event.buckets);
        plan.extend(buckets.iter().copied().zip(split));
    } else {
        let mut left: Vec<(Bucket, i64)> = Vec::new();
        for b in &buckets {
            let units: Option<i64> = redis
                .conn
                .clone()
                .get(redis.keys.bucket(*b).stock(tier_id))
                .await?;
            left.push((*b, units.unwrap_or(0)));
        }
        left.sort_by_key(|(_, units)| std::cmp::Reverse(*units));
        let mut to_take = -units;
        for (b, has) in left {
            let take = has.min(to_take);
            if take > 0 {
                plan.push((b, -take));
                to_take -= take;
            }
        }
    }
    let mut out = Adjusted {
        units: 0,
        missing: 0,
    };
    for (b, units) in plan.into_iter().filter(|(_, u)| *u != 0) {
        let keys = redis.keys.bucket(b);
        let (found, changed): (i64, i64) = ADJUST
            .keys(&[&keys.stock(tier_id)])
            .arg(units)
            .invoke_async(&mut redis.conn.clone())
            .await?;
        if found == 0 {
            out.missing += 1;
            continue;
        }
        out.units += changed;
        replicas.confirm(&keys).await?;
    }
    Ok(out)
}
