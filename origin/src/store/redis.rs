//! Redis: one multiplexed, self-reconnecting connection with bounded timeouts, and
//! the key namespace every key goes through.

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A handle on Redis: cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Redis {
    pub conn: ConnectionManager,
    pub keys: KeySpace,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("keys", &self.keys).finish()
    }
}

impl Redis {
    /// Connects with `timeout` bounding every command and connection attempt, so a
    /// dead or slow Redis turns into an error instead of a hang.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parsing RUSHGATE_REDIS_URL")?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            conn,
            keys: KeySpace::new(prefix),
        })
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await
    }
}

/// Builds every Redis key under the deployment's prefix.
///
/// Keys of one event bucket share the hash tag `{e<event>:b<bucket>}`, so each
/// script touches exactly one Redis Cluster slot:
///
/// | key | type | holds |
/// |---|---|---|
/// | `P:{e:b}:stock:t<tier>` | string | units of the tier left in the bucket |
/// | `P:{e:b}:users` | hash | user id → units held in the event |
/// | `P:{e:b}:nonce:<hex>` | string | reservation id made with a purchase token |
/// | `P:{e:b}:orders` | stream | reservations for the order worker |
/// | `P:{e:b}:queued` | hash | reservation id → user id until its row exists |
/// | `P:{e:b}:funnel` | hash | counters kept by the scripts |
/// | `P:{e:b}:released:<order>` | string | marker: this order's units went back |
/// | `P:{e:b}:transfers` | hash | units moving out of this bucket, until landed |
/// | `P:{e:b}:landed:<transfer>` | string | marker: a transfer landed here |
/// | `P:streams` | set | `<event>:<bucket>` of every bucket with a stream |
/// | `P:funnel:e<event>` | hash | funnel counters flushed by origins and edges |
/// | `P:visitors:e<event>` | HyperLogLog | visitor ids seen on the event's page |
#[derive(Debug, Clone)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The common start of all keys of one event bucket.
    pub fn bucket(&self, event_id: i64, bucket: u32) -> String {
        format!("{}:{{e{event_id}:b{bucket}}}", self.prefix)
    }

    pub fn stock(&self, event_id: i64, bucket: u32, tier_id: i64) -> String {
        format!("{}:stock:t{tier_id}", self.bucket(event_id, bucket))
    }

    pub fn users(&self, event_id: i64, bucket: u32) -> String {
        format!("{}:users", self.bucket(event_id, bucket))
    }

    pub fn nonce(&self, event_id: i64, bucket: u32, nonce_hex: &str) -> String {
        format!("{}:nonce:{nonce_hex}", self.bucket(event_id, bucket))
    }

    pub fn orders(&self, event_id: i64, bucket: u32) -> String {
        format!("{}:orders", self.bucket(event_id, bucket))
    }

    pub fn queued(&self, event_id: i64, bucket: u32) -> String {
        format!("{}:queued", self.bucket(event_id, bucket))
    }

    pub fn bucket_funnel(&self, event_id: i64, bucket: u32) -> String {
        format!("{}:funnel", self.bucket(event_id, bucket))
    }

    pub fn released(&self, event_id: i64, bucket: u32, order: &uuid::Uuid) -> String {
        format!(
            "{}:released:{}",
            self.bucket(event_id, bucket),
            order.simple()
        )
    }

    /// Transfers of units out of this bucket that have not landed yet.
    pub fn transfers(&self, event_id: i64, bucket: u32) -> String {
        format!("{}:transfers", self.bucket(event_id, bucket))
    }

    /// Marker: a transfer has landed in this bucket.
    pub fn landed(&self, event_id: i64, bucket: u32, transfer: &str) -> String {
        format!("{}:landed:{transfer}", self.bucket(event_id, bucket))
    }

    /// The registry of event buckets that have an order stream.
    pub fn streams(&self) -> String {
        format!("{}:streams", self.prefix)
    }

    /// Funnel counters of an event, flushed in batches.
    pub fn funnel(&self, event_id: i64) -> String {
        format!("{}:funnel:e{event_id}", self.prefix)
    }

    /// HyperLogLog of an event's visitors.
    pub fn visitors(&self, event_id: i64) -> String {
        format!("{}:visitors:e{event_id}", self.prefix)
    }

    /// A key outside any bucket.
    pub fn global(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}

/// One event bucket, as listed in the stream registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BucketRef {
    pub event_id: i64,
    pub bucket: u32,
}

impl BucketRef {
    pub fn member(self) -> String {
        format!("{}:{}", self.event_id, self.bucket)
    }

    pub fn parse(member: &str) -> Option<Self> {
        let (event, bucket) = member.split_once(':')?;
        Some(Self {
            event_id: event.parse().ok()?,
            bucket: bucket.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_carry_one_hash_tag() {
        let keys = KeySpace::new("rg");
        assert_eq!(keys.bucket(42, 3), "rg:{e42:b3}");
        assert_eq!(keys.stock(42, 3, 7), "rg:{e42:b3}:stock:t7");
        assert_eq!(keys.orders(42, 0), "rg:{e42:b0}:orders");
        assert_eq!(keys.global("x"), "rg:x");
        let b = BucketRef {
            event_id: 42,
            bucket: 3,
        };
        assert_eq!(BucketRef::parse(&b.member()), Some(b));
        assert_eq!(BucketRef::parse("x:1"), None);
    }
}
