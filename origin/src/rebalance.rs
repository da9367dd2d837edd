//! Moving stock between the buckets of a tier, so splitting a tier over several
//! Cluster slots never leaves units unsold: when a buyer's bucket is empty but
//! another still holds units, part of them moves over and the buyer tries again.
//!
//! A move is two scripts in two slots: `take.lua` debits the donor and records
//! the transfer in the donor's slot, `give.lua` credits the target once per
//! transfer id, then the record is deleted. A crash in between leaves the record,
//! and [`finish_pending`] (run by the sweeper) lands it. Units in flight are in
//! neither bucket, so they can be undersold for a moment but never oversold.

use std::sync::LazyLock;

use redis::Script;
use uuid::Uuid;

use crate::store::redis::{BucketRef, Redis};

static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/take.lua")));
static GIVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/give.lua")));

/// How long a landed-transfer marker is kept.
const MARKER_TTL_S: u64 = 24 * 3600;

/// Moves units of `tier_id` into bucket `target` from the fullest other bucket:
/// at least `wanted`, and half the donor's stock if that is more. Returns the
/// units moved (0: every other bucket is empty too).
pub async fn borrow(
    redis: &Redis,
    event_id: i64,
    tier_id: i64,
    buckets: u32,
    target: u32,
    wanted: i64,
) -> redis::RedisResult<i64> {
    let keys: Vec<String> = (0..buckets)
        .map(|b| redis.keys.stock(event_id, b, tier_id))
        .collect();
    let stock: Vec<Option<i64>> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut redis.conn.clone())
        .await?;
    let donor = stock
        .iter()
        .enumerate()
        .filter(|(b, units)| *b as u32 != target && units.unwrap_or(0) > 0)
        .max_by_key(|(_, units)| units.unwrap_or(0))
        .map(|(b, units)| (b as u32, units.unwrap_or(0)));
    let Some((donor, available)) = donor else {
        return Ok(0);
    };
    let transfer = Uuid::now_v7();
    let want = wanted.max(available / 2).max(1);
    let taken: i64 = TAKE
        .key(&keys[donor as usize])
        .key(redis.keys.transfers(event_id, donor))
        .arg(transfer.simple().to_string())
        .arg(want)
        .arg(target)
        .arg(tier_id)
        .invoke_async(&mut redis.conn.clone())
        .await?;
    if taken > 0 {
        land(
            redis,
            BucketRef {
                event_id,
                bucket: donor,
            },
            transfer,
            target,
            tier_id,
            taken,
        )
        .await?;
    }
    Ok(taken)
}

/// Credits the target bucket (once) and deletes the donor's record.
async fn land(
    redis: &Redis,
    donor: BucketRef,
    transfer: Uuid,
    target: u32,
    tier_id: i64,
    units: i64,
) -> redis::RedisResult<()> {
    let id = transfer.simple().to_string();
    let _: i64 = GIVE
        .key(redis.keys.stock(donor.event_id, target, tier_id))
        .key(redis.keys.landed(donor.event_id, target, &id))
        .arg(units)
        .arg(MARKER_TTL_S)
        .invoke_async(&mut redis.conn.clone())
        .await?;
    redis::cmd("HDEL")
        .arg(redis.keys.transfers(donor.event_id, donor.bucket))
        .arg(&id)
        .query_async(&mut redis.conn.clone())
        .await
}

/// Lands every transfer a crash left half-done; returns how many.
pub async fn finish_pending(redis: &Redis, buckets: &[BucketRef]) -> redis::RedisResult<usize> {
    let mut finished = 0;
    for donor in buckets {
        let pending: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(redis.keys.transfers(donor.event_id, donor.bucket))
            .query_async(&mut redis.conn.clone())
            .await?;
        for (id, value) in pending {
            let mut parts = value.split(':').map(str::parse::<i64>);
            let (Some(Ok(target)), Some(Ok(tier)), Some(Ok(units))) =
                (parts.next(), parts.next(), parts.next())
            else {
                tracing::error!(transfer = %id, %value, "unreadable transfer record left in place");
                continue;
            };
            let Ok(transfer) = Uuid::try_parse(&id) else {
                continue;
            };
            land(redis, *donor, transfer, target as u32, tier, units).await?;
            finished += 1;
        }
    }
    Ok(finished)
}
