//! Finding a reservation that is still on its way to PostgreSQL: `reserve.lua`
//! indexes it in its bucket's `queued` hash until the order worker commits the row.

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
