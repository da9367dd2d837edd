//! The keys of one event bucket. They share the bucket's hash tag
//! (`core::bucket::tag`), so every script touches exactly one Redis Cluster
//! slot, and an event's buckets spread over the masters:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{tag}:stock:t<tier>` | string | units of the tier left in the bucket |
//! | `P:{tag}:users` | hash | user id → units held in the event |
//! | `P:{tag}:nonce:<hex>` | string | reservation id made with a purchase token |
//! | `P:{tag}:orders` | stream | reservations for the order worker |
//! | `P:{tag}:queued` | hash | reservation id → record until its row exists |
//! | `P:{tag}:funnel` | hash | counters kept by the scripts |
//! | `P:{tag}:released:<order>` | string | marker: this order's units went back |
//! | `P:{tag}:transfers` | hash | units moving out of this bucket, until landed |
//! | `P:{tag}:landed:<transfer>` | string | marker: a transfer landed here |
//! | `P:{tag}:dead` | stream | entries that could never become rows |
//! | `P:{tag}:barrier` | string | written before `WAIT` (`sale::replicas`) |

use uuid::Uuid;

/// One bucket of an event, and how many the event has (which decides its tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub event_id: i64,
    pub bucket: u32,
    pub buckets: u32,
}

impl Bucket {
    /// Every bucket of an event with `buckets` buckets.
    pub fn all(event_id: i64, buckets: u32) -> impl Iterator<Item = Bucket> {
        (0..buckets.max(1)).map(move |bucket| Bucket {
            event_id,
            bucket,
            buckets,
        })
    }

    /// Its member in the stream registry: `<event>:<bucket>:<buckets>`.
    pub fn member(self) -> String {
        format!("{}:{}:{}", self.event_id, self.bucket, self.buckets)
    }

    pub fn parse(member: &str) -> Option<Self> {
        let mut parts = member.split(':');
        let bucket = Self {
            event_id: parts.next()?.parse().ok()?,
            bucket: parts.next()?.parse().ok()?,
            buckets: parts.next()?.parse().ok()?,
        };
        (parts.next().is_none() && bucket.bucket < bucket.buckets).then_some(bucket)
    }
}

/// The keys of one bucket: `<prefix>:{<tag>}:…`.
#[derive(Debug, Clone)]
pub struct BucketKeys {
    base: String,
}

impl BucketKeys {
    pub fn new(prefix: &str, tag: &str) -> Self {
        Self {
            base: format!("{prefix}:{{{tag}}}"),
        }
    }

    /// The common start of the bucket's keys; routes to the bucket's node.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn stock(&self, tier_id: i64) -> String {
        format!("{}:stock:t{tier_id}", self.base)
    }

    pub fn users(&self) -> String {
        format!("{}:users", self.base)
    }

    pub fn nonce(&self, nonce_hex: &str) -> String {
        format!("{}:nonce:{nonce_hex}", self.base)
    }

    pub fn orders(&self) -> String {
        format!("{}:orders", self.base)
    }

    pub fn queued(&self) -> String {
        format!("{}:queued", self.base)
    }

    pub fn funnel(&self) -> String {
        format!("{}:funnel", self.base)
    }

    pub fn released(&self, order: &Uuid) -> String {
        format!("{}:released:{}", self.base, order.simple())
    }

    /// Transfers of units out of this bucket that have not landed yet.
    pub fn transfers(&self) -> String {
        format!("{}:transfers", self.base)
    }

    /// Marker: a transfer has landed in this bucket.
    pub fn landed(&self, transfer: &str) -> String {
        format!("{}:landed:{transfer}", self.base)
    }

    /// Entries that could never become order rows.
    pub fn dead(&self) -> String {
        format!("{}:dead", self.base)
    }

    /// Written right before `WAIT`, so the wait covers every earlier write.
    pub fn barrier(&self) -> String {
        format!("{}:barrier", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_and_refuse_junk() {
        let b = Bucket {
            event_id: 42,
            bucket: 3,
            buckets: 6,
        };
        assert_eq!(Bucket::parse(&b.member()), Some(b));
        for junk in ["x:1:2", "42:3", "42:6:6", "42:1:2:3"] {
            assert_eq!(Bucket::parse(junk), None, "{junk}");
        }
        assert_eq!(Bucket::all(42, 3).count(), 3);
    }
}
