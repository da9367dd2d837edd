//! The atomic reservation: `lua/reserve.lua`, loaded once and called by SHA
//! (redis-rs `Script` reloads it on NOSCRIPT, e.g. after a Redis restart).

use std::sync::LazyLock;

use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::orders::record::Reservation;
use crate::store::redis::Redis;

static RESERVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/reserve.lua")));

/// How long a nonce record outlives its purchase token, in seconds (clock skew).
const NONCE_MARGIN_S: i64 = 300;

/// One attempt to hold stock.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub reservation_id: Uuid,
    pub event_id: i64,
    pub tier_id: i64,
    pub bucket: u32,
    pub user_id: i64,
    pub quantity: i64,
    pub per_user_limit: u32,
    pub amount_cents: i64,
    pub payment_window_s: u32,
    pub nonce_hex: String,
    pub token_exp: i64,
    pub now: OffsetDateTime,
}

/// What the script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stock is held; `left` units remain in the bucket.
    Reserved { id: Uuid, left: i64 },
    /// This purchase token already reserved `id`.
    Replay { id: Uuid },
    /// Fewer than the asked quantity remain (`left`).
    SoldOut { left: i64 },
    /// The user already holds `held` units; more would pass the limit.
    LimitExceeded { held: i64 },
}

/// The script's source, for `redis-benchmark` and the like.
pub fn script_source() -> &'static str {
    include_str!("../lua/reserve.lua")
}

/// The script's SHA-1, as EVALSHA wants it.
pub fn script_hash() -> &'static str {
    RESERVE.get_hash()
}

pub async fn reserve(redis: &Redis, attempt: &Attempt) -> redis::RedisResult<Outcome> {
    let keys = &redis.keys;
    let (e, b) = (attempt.event_id, attempt.bucket);
    let record = Reservation {
        id: attempt.reservation_id,
        user_id: attempt.user_id,
        event_id: e,
        tier_id: attempt.tier_id,
        bucket: b,
        quantity: attempt.quantity as i32,
        amount_cents: attempt.amount_cents,
        created_ms: (attempt.now.unix_timestamp_nanos() / 1_000_000) as i64,
        payment_window_s: attempt.payment_window_s as i32,
    };
    let (status, value, number): (String, String, i64) = RESERVE
        .key(keys.stock(e, b, attempt.tier_id))
        .key(keys.users(e, b))
        .key(keys.nonce(e, b, &attempt.nonce_hex))
        .key(keys.orders(e, b))
        .key(keys.queued(e, b))
        .key(keys.bucket_funnel(e, b))
        .arg(attempt.reservation_id.to_string())
        .arg(attempt.user_id)
        .arg(attempt.quantity)
        .arg(attempt.per_user_limit)
        .arg(attempt.token_exp + NONCE_MARGIN_S)
        .arg(record.encode())
        .invoke_async(&mut redis.conn.clone())
        .await?;
    let id = || {
        Uuid::parse_str(&value).map_err(|_| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "reserve.lua returned a bad reservation id",
            ))
        })
    };
    Ok(match status.as_str() {
        "reserved" => Outcome::Reserved {
            id: id()?,
            left: number,
        },
        "replay" => Outcome::Replay { id: id()? },
        "sold_out" => Outcome::SoldOut { left: number },
        "limit" => Outcome::LimitExceeded { held: number },
        _ => {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "reserve.lua returned an unknown status",
            )));
        }
    })
}
