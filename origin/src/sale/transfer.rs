//! Moving stock between the buckets of a tier, so splitting a tier over several
//! slots (and masters) never leaves units unsold: when a buyer's bucket is empty
//! but another still holds units, part of them moves over and the buyer tries
//! again. The other buckets are read one by one, and a bucket whose node does
//! not answer (a master failing over) is skipped: the sale goes on from the
//! buckets on the other masters.
//!
//! A move is two scripts in two slots: `take.lua` debits the donor and records
//! the transfer in the donor's slot, `give.lua` credits the target once per
//! transfer id, then the record is deleted; each step is confirmed on the
//! replicas before the next. A crash in between leaves the record, and
//! [`finish_pending`] (run by the sweeper) lands it. Units in flight are in
//! neither bucket, so they can be undersold for a moment but never oversold.

use uuid::Uuid;

use super::keys::Bucket;
use super::lua::Lua;
use super::replicas::Replicas;
use crate::sale;
use crate::store::redis::Redis;

pub static TAKE: Lua = Lua::new(
    include_str!("take.lua"),
    &["stock", "transfers"],
    &["transfer", "wanted", "target", "tier"],
);

pub static GIVE: Lua = Lua::new(
    include_str!("give.lua"),
    &["stock", "marker"],
    &["units", "ttl"],
);

/// A transfer recorded in its donor's `transfers` hash (`take.lua`):
/// `"<target bucket>:<tier>:<units>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The bucket the units go to (same event as the donor).
    pub target: Bucket,
    pub tier_id: i64,
    pub units: i64,
}

impl Pending {
    /// The record of a transfer out of `donor`, if `value` is one.
    pub fn parse(donor: Bucket, value: &str) -> Option<Self> {
        let mut parts = value.split(':').map(str::parse::<i64>);
        let (Some(Ok(target)), Some(Ok(tier_id)), Some(Ok(units)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let target = u32::try_from(target).ok()?;
        Some(Self {
            target: Bucket {
                bucket: target,
                ..donor
            },
            tier_id,
            units,
        })
    }
}

/// How long a landed-transfer marker is kept.
const MARKER_TTL_S: u64 = 24 * 3600;

/// What a borrowing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Borrowed {
    /// Units moved into the buyer's bucket.
    pub moved: i64,
    /// Buckets whose node did not answer: their stock is unknown.
    pub unreachable: usize,
}

/// Moves units of `tier_id` into `target` from the fullest other bucket that
/// answers: at least `wanted`, and half the donor's stock if that is more.
pub async fn borrow(
    redis: &Redis,
    replicas: &Replicas,
    target: Bucket,
    tier_id: i64,
    wanted: i64,
) -> Result<Borrowed, sale::Error> {
    let reads = Bucket::all(target.event_id, target.buckets)
        .filter(|b| b.bucket != target.bucket)
        .map(|b| async move {
            let units: redis::RedisResult<Option<i64>> = redis::cmd("GET")
                .arg(redis.keys.bucket(b).stock(tier_id))
                .query_async(&mut redis.conn.clone())
                .await;
            (b, units)
        });
    let mut unreachable = 0;
    let mut donor: Option<(Bucket, i64)> = None;
    for (b, units) in futures::future::join_all(reads).await {
        match units {
            Ok(units) => {
                let units = units.unwrap_or(0);
                if units > 0 && donor.is_none_or(|(_, best)| units > best) {
                    donor = Some((b, units));
                }
            }
            Err(_) => unreachable += 1,
        }
    }
    let Some((donor, available)) = donor else {
        return Ok(Borrowed {
            moved: 0,
            unreachable,
        });
    };
    let transfer = Uuid::now_v7().simple().to_string();
    let donor_keys = redis.keys.bucket(donor);
    let taken: i64 = TAKE
        .keys(&[&donor_keys.stock(tier_id), &donor_keys.transfers()])
        .arg(&transfer)
        .arg(wanted.max(available / 2).max(1))
        .arg(target.bucket)
        .arg(tier_id)
        .invoke_async(&mut redis.conn.clone())
        .await?;
    let mut moved = 0;
    if taken > 0 {
        replicas.confirm(&donor_keys).await?;
        if land(redis, replicas, donor, &transfer, target, tier_id, taken).await? {
            moved = taken;
        }
    }
    Ok(Borrowed { moved, unreachable })
}

/// Credits the target bucket (once), confirms it, deletes the donor's record.
/// Returns false, leaving the record, if the target bucket's stock is gone.
async fn land(
    redis: &Redis,
    replicas: &Replicas,
    donor: Bucket,
    transfer: &str,
    target: Bucket,
    tier_id: i64,
    units: i64,
) -> Result<bool, sale::Error> {
    let target_keys = redis.keys.bucket(target);
    let landed: i64 = GIVE
        .keys(&[&target_keys.stock(tier_id), &target_keys.landed(transfer)])
        .arg(units)
        .arg(MARKER_TTL_S)
        .invoke_async(&mut redis.conn.clone())
        .await?;
    if landed < 0 {
        tracing::warn!(%transfer, bucket = target.bucket, "transfer waits: the target bucket lost its stock");
        return Ok(false);
    }
    replicas.confirm(&target_keys).await?;
    redis::cmd("HDEL")
        .arg(redis.keys.bucket(donor).transfers())
        .arg(transfer)
        .query_async::<()>(&mut redis.conn.clone())
        .await?;
    Ok(true)
}

/// Lands every transfer a crash left half-done; returns how many.
pub async fn finish_pending(
    redis: &Redis,
    replicas: &Replicas,
    buckets: &[Bucket],
) -> Result<usize, sale::Error> {
    let mut finished = 0;
    for donor in buckets {
        let donor_keys = redis.keys.bucket(*donor);
        let pending: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(donor_keys.transfers())
            .query_async(&mut redis.conn.clone())
            .await?;
        if pending.is_empty() {
            continue;
        }
        // The record may not have reached a replica yet.
        replicas.confirm(&donor_keys).await?;
        for (id, value) in pending {
            let Some(p) = Pending::parse(*donor, &value) else {
                tracing::error!(transfer = %id, %value, "unreadable transfer record left in place");
                continue;
            };
            if land(redis, replicas, *donor, &id, p.target, p.tier_id, p.units).await? {
                finished += 1;
            }
        }
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_record_round_trips_and_junk_is_refused() {
        let donor = Bucket {
            event_id: 7,
            bucket: 1,
            buckets: 6,
        };
        let p = Pending::parse(donor, "4:12:30").unwrap();
        assert_eq!(
            (p.target.bucket, p.target.event_id, p.tier_id, p.units),
            (4, 7, 12, 30)
        );
        for junk in ["4:12", "4:12:30:1", "-1:12:30", "x:12:30", ""] {
            assert_eq!(Pending::parse(donor, junk), None, "{junk}");
        }
    }
}
