//! Finding reservations that are still on their way to PostgreSQL: `reserve.lua`
//! indexes each in its bucket's `queued` hash until the order worker commits the
//! row. Buckets live in different slots (and on different masters), so each is
//! asked on its own, all at once.

use futures::future::join_all;
use rushgate_core::api::Order;
use uuid::Uuid;

use super::record::Reservation;
use super::streams::registered;
use crate::store::redis::Redis;

/// Looks the reservation up in every registered bucket.
pub async fn find(redis: &Redis, id: Uuid) -> redis::RedisResult<Option<Order>> {
    let field = id.to_string();
    let lookups = registered(redis).await?.into_iter().map(|b| {
        let key = redis.keys.bucket(b).queued();
        let field = &field;
        async move {
            redis::cmd("HGET")
                .arg(key)
                .arg(field)
                .query_async::<Option<String>>(&mut redis.conn.clone())
                .await
        }
    });
    for found in join_all(lookups).await {
        if let Some(record) = found?.as_deref().and_then(Reservation::parse) {
            return Ok(Some(record.queued_order()));
        }
    }
    Ok(None)
}

/// The user's reservations still on their way to PostgreSQL, newest first. Each
/// registered bucket is asked whether the user holds units there and whether
/// anything is queued; only buckets where both are true are read (none while
/// the order worker keeps up).
pub async fn for_user(redis: &Redis, user_id: i64) -> redis::RedisResult<Vec<Order>> {
    let reads = registered(redis).await?.into_iter().map(|b| async move {
        let keys = redis.keys.bucket(b);
        let mut conn = redis.conn.clone();
        // Both keys share the bucket's slot: one pipeline.
        let (held, queued): (Option<i64>, i64) = redis::pipe()
            .hget(keys.users(), user_id)
            .hlen(keys.queued())
            .query_async(&mut conn)
            .await?;
        if held.unwrap_or(0) <= 0 || queued == 0 {
            return Ok(Vec::new());
        }
        redis::cmd("HVALS")
            .arg(keys.queued())
            .query_async::<Vec<String>>(&mut conn)
            .await
    });
    let mut orders = Vec::new();
    for records in join_all(reads).await {
        orders.extend(
            records?
                .iter()
                .filter_map(|value| Reservation::parse(value))
                .filter(|r| r.user_id == user_id)
                .map(|r| r.queued_order()),
        );
    }
    orders.sort_by_key(|o| std::cmp::Reverse(o.created_at));
    Ok(orders)
}
