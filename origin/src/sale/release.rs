//! Giving an expired or cancelled order's units back: `release.lua`, exactly
//! once per order however often it runs (a marker remembers), confirmed on the
//! replicas before the caller marks its outbox row done.

use sqlx::FromRow;
use uuid::Uuid;

use super::keys::Bucket;
use super::lua::Lua;
use super::replicas::Replicas;
use crate::sale;
use crate::store::redis::Redis;

pub static RELEASE: Lua = Lua::new(
    include_str!("release.lua"),
    &["stock", "users", "marker"],
    &["user", "quantity", "ttl"],
);

/// How long a release marker is kept: far longer than any outbox row waits.
const MARKER_TTL_S: u64 = 7 * 24 * 3600;

/// A queued release of units (a row of the release outbox, with its event's
/// bucket count).
#[derive(Debug, Clone, FromRow)]
pub struct Release {
    pub order_id: Uuid,
    pub event_id: i64,
    pub tier_id: i64,
    pub user_id: i64,
    pub bucket: i32,
    pub buckets: i32,
    pub quantity: i32,
}

impl Release {
    pub fn bucket(&self) -> Bucket {
        Bucket {
            event_id: self.event_id,
            bucket: self.bucket as u32,
            buckets: self.buckets as u32,
        }
    }
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// The units went back now.
    Now,
    /// They had already gone back (an earlier attempt).
    Already,
    /// Redis no longer has the sale's stock: nothing changed; the release must
    /// wait for the stock to be rebuilt.
    StockLost,
}

/// Runs `release.lua` for one order; a release that happened is confirmed on
/// the replicas before this returns.
pub async fn release(
    redis: &Redis,
    replicas: &Replicas,
    release: &Release,
) -> Result<Returned, sale::Error> {
    let keys = redis.keys.bucket(release.bucket());
    let returned: i64 = RELEASE
        .keys(&[
            &keys.stock(release.tier_id),
            &keys.users(),
            &keys.released(&release.order_id),
        ])
        .arg(release.user_id)
        .arg(release.quantity)
        .arg(MARKER_TTL_S)
        .invoke_async(&mut redis.conn.clone())
        .await?;
    let returned = match returned {
        1 => Returned::Now,
        0 => Returned::Already,
        _ => return Ok(Returned::StockLost),
    };
    replicas.confirm(&keys).await?;
    Ok(returned)
}
