//! The atomic reservation: `reserve.lua` — idempotency, the per-user limit,
//! the stock check and deduction, the nonce, the queued index and the stream
//! entry in one script in the buyer's bucket.

use time::OffsetDateTime;
use uuid::Uuid;

use super::keys::Bucket;
use super::lua::Lua;
use super::record::Reservation;
use crate::store::redis::Redis;

pub static RESERVE: Lua = Lua::new(
    include_str!("reserve.lua"),
    &["stock", "users", "nonce", "orders", "queued", "funnel"],
    &[
        "reservation",
        "user",
        "quantity",
        "limit",
        "expiry",
        "record",
    ],
);

/// How long a nonce record outlives its purchase token, in seconds (clock skew).
const NONCE_MARGIN_S: i64 = 300;

/// One attempt to hold stock.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub reservation_id: Uuid,
    pub bucket: Bucket,
    pub tier_id: i64,
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

/// The script's SHA-1, as EVALSHA wants it (for `redis-benchmark`).
pub fn script_hash() -> &'static str {
    RESERVE.script().get_hash()
}

pub async fn reserve(redis: &Redis, attempt: &Attempt) -> redis::RedisResult<Outcome> {
    let keys = redis.keys.bucket(attempt.bucket);
    let record = Reservation {
        id: attempt.reservation_id,
        user_id: attempt.user_id,
        event_id: attempt.bucket.event_id,
        tier_id: attempt.tier_id,
        bucket: attempt.bucket.bucket,
        quantity: attempt.quantity as i32,
        amount_cents: attempt.amount_cents,
        created_ms: (attempt.now.unix_timestamp_nanos() / 1_000_000) as i64,
        payment_window_s: attempt.payment_window_s as i32,
    };
    let (status, value, number): (String, String, i64) = RESERVE
        .keys(&[
            &keys.stock(attempt.tier_id),
            &keys.users(),
            &keys.nonce(&attempt.nonce_hex),
            &keys.orders(),
            &keys.queued(),
            &keys.funnel(),
        ])
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
