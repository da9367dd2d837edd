//! Finding reservations that are still on their way to PostgreSQL: `reserve.lua`
//! indexes each in its bucket's `queued` hash until the order worker commits the row.

use rushgate_core::api::Order;
use uuid::Uuid;

use super::record::Reservation;
use crate::store::redis::Redis;
use crate::worker::orders::registered;

/// Looks the reservation up in every registered bucket, in one round trip.
pub async fn find(redis: &Redis, id: Uuid) -> redis::RedisResult<Option<Order>> {
    let buckets = registered(redis).await?;
    if buckets.is_empty() {
        return Ok(None);
    }
    let field = id.to_string();
    let mut pipe = redis::pipe();
    for b in &buckets {
        pipe.hget(redis.keys.queued(b.event_id, b.bucket), &field);
    }
    let found: Vec<Option<String>> = pipe.query_async(&mut redis.conn.clone()).await?;
    Ok(found
        .iter()
        .flatten()
        .find_map(|value| Reservation::parse(value))
        .map(|r| r.queued_order()))
}

/// The user's reservations still on their way to PostgreSQL, newest first. One
/// round trip asks every registered bucket whether the user holds units there and
/// whether anything is queued; only buckets where both are true are read (none
/// while the order worker keeps up).
pub async fn for_user(redis: &Redis, user_id: i64) -> redis::RedisResult<Vec<Order>> {
    let buckets = registered(redis).await?;
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for b in &buckets {
        pipe.hget(redis.keys.users(b.event_id, b.bucket), user_id)
            .hlen(redis.keys.queued(b.event_id, b.bucket));
    }
    let counts: Vec<Option<i64>> = pipe.query_async(&mut redis.conn.clone()).await?;
    let mut pipe = redis::pipe();
    let mut reads = 0;
    for (b, pair) in buckets.iter().zip(counts.chunks(2)) {
        if let [Some(held), Some(queued)] = pair
            && *held > 0
            && *queued > 0
        {
            pipe.hvals(redis.keys.queued(b.event_id, b.bucket));
            reads += 1;
        }
    }
    if reads == 0 {
        return Ok(Vec::new());
    }
    let records: Vec<Vec<String>> = pipe.query_async(&mut redis.conn.clone()).await?;
    let mut orders: Vec<Order> = records
        .iter()
        .flatten()
        .filter_map(|value| Reservation::parse(value))
        .filter(|r| r.user_id == user_id)
        .map(|r| r.queued_order())
        .collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.created_at));
    Ok(orders)
}
