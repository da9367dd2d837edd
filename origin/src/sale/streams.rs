//! The order streams: one per event bucket (in the bucket's slot), a registry
//! of them that the workers read, and what the order worker does to a stream —
//! take entries through the consumer group, acknowledge them once their rows
//! are committed, set aside what can never become a row, and remove consumers
//! that stopped (`prune.lua`). The worker's loop is `worker::orders`.

use std::time::Duration;

use redis::Value;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::keys::Bucket;
use super::lua::Lua;
use super::record::Reservation;
use crate::store::redis::Redis;

/// The consumer group every order worker joins.
pub const GROUP: &str = "order-writers";

pub static PRUNE: Lua = Lua::new(
    include_str!("prune.lua"),
    &["orders"],
    &["group", "idle", "caller"],
);

/// Creates a bucket's stream and consumer group if missing, and lists the bucket
/// in the registry the workers read.
pub async fn register(redis: &Redis, bucket: Bucket) -> redis::RedisResult<()> {
    let mut conn = redis.conn.clone();
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(redis.keys.bucket(bucket).orders())
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
pub async fn registered(redis: &Redis) -> redis::RedisResult<Vec<Bucket>> {
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(redis.keys.streams())
        .query_async(&mut redis.conn.clone())
        .await?;
    Ok(members.iter().filter_map(|m| Bucket::parse(m)).collect())
}

/// Entries for `consumer` to process: its own unacknowledged ones first (an
/// earlier write failed), else ones another consumer left pending longer than
/// `claim_idle` (it died), else new ones; at most `batch`.
pub async fn take(
    redis: &Redis,
    bucket: Bucket,
    consumer: &str,
    batch: usize,
    claim_idle: Duration,
) -> redis::RedisResult<Vec<StreamId>> {
    let own = read_group(redis, bucket, consumer, batch, "0").await?;
    if !own.is_empty() {
        return Ok(own);
    }
    let key = redis.keys.bucket(bucket).orders();
    let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(&key)
        .arg(GROUP)
        .arg(consumer)
        .arg(claim_idle.as_millis() as u64)
        .arg("0-0")
        .arg("COUNT")
        .arg(batch)
        .query_async(&mut redis.conn.clone())
        .await?;
    if !claimed.claimed.is_empty() {
        tracing::info!(stream = %key, entries = claimed.claimed.len(), "reclaimed entries of a stalled consumer");
        return Ok(claimed.claimed);
    }
    read_group(redis, bucket, consumer, batch, ">").await
}

async fn read_group(
    redis: &Redis,
    bucket: Bucket,
    consumer: &str,
    batch: usize,
    from: &str,
) -> redis::RedisResult<Vec<StreamId>> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(batch)
        .arg("STREAMS")
        .arg(redis.keys.bucket(bucket).orders())
        .arg(from)
        .query_async(&mut redis.conn.clone())
        .await?;
    Ok(reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default())
}

/// Acknowledges entries whose rows are committed, drops them from the stream
/// and from the queued index (all in the bucket's slot: one pipeline).
pub async fn ack(
    redis: &Redis,
    bucket: Bucket,
    entry_ids: &[&str],
    reservations: &[String],
) -> redis::RedisResult<()> {
    let keys = redis.keys.bucket(bucket);
    let stream = keys.orders();
    let mut pipe = redis::pipe();
    pipe.cmd("XACK")
        .arg(&stream)
        .arg(GROUP)
        .arg(entry_ids)
        .ignore();
    pipe.cmd("XDEL").arg(&stream).arg(entry_ids).ignore();
    if !reservations.is_empty() {
        pipe.cmd("HDEL")
            .arg(keys.queued())
            .arg(reservations)
            .ignore();
    }
    pipe.query_async(&mut redis.conn.clone()).await
}

/// Keeps entries that can never become rows in the bucket's `dead` stream, with
/// the reason.
pub async fn bury(
    redis: &Redis,
    bucket: Bucket,
    dead: &[(&StreamId, &str)],
) -> redis::RedisResult<()> {
    if dead.is_empty() {
        return Ok(());
    }
    let key = redis.keys.bucket(bucket).dead();
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
    pipe.query_async(&mut redis.conn.clone()).await
}

/// Removes from the bucket's group the consumers that hold no pending entries
/// and have not read for `idle`, never `caller`; returns their names.
pub async fn prune(
    redis: &Redis,
    bucket: Bucket,
    caller: &str,
    idle: Duration,
) -> redis::RedisResult<Vec<String>> {
    PRUNE
        .keys(&[&redis.keys.bucket(bucket).orders()])
        .arg(GROUP)
        .arg(idle.as_millis() as u64)
        .arg(caller)
        .invoke_async(&mut redis.conn.clone())
        .await
}

/// Reads a reservation entry as written by `reserve.lua`.
pub fn parse(entry: &StreamId) -> Option<Reservation> {
    match entry.map.get("r")? {
        Value::BulkString(bytes) => Reservation::parse(std::str::from_utf8(bytes).ok()?),
        _ => None,
    }
}
