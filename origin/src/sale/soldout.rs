//! In-memory sold-out flags per tier, so requests after a sell-out cost no Redis
//! round trip. A flag is set when a tier has nothing left in any bucket, cleared
//! when this process gives units back, and re-checked against Redis periodically
//! (units returned by another process clear it there).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::keys::Bucket;
use crate::store::redis::Redis;

#[derive(Debug, Clone, Copy)]
struct Flagged {
    event_id: i64,
    buckets: u32,
}

/// Tier id → where its stock lives.
#[derive(Clone, Default)]
pub struct SoldOutFlags(Arc<RwLock<HashMap<i64, Flagged>>>);

impl SoldOutFlags {
    pub fn is_set(&self, tier_id: i64) -> bool {
        self.0
            .read()
            .map(|m| m.contains_key(&tier_id))
            .unwrap_or(false)
    }

    pub fn set(&self, event_id: i64, tier_id: i64, buckets: u32) {
        if let Ok(mut m) = self.0.write() {
            m.insert(tier_id, Flagged { event_id, buckets });
        }
    }

    pub fn clear(&self, tier_id: i64) {
        if let Ok(mut m) = self.0.write() {
            m.remove(&tier_id);
        }
    }

    /// Clears the flags of tiers that have stock again in any bucket; returns how
    /// many.
    pub async fn recheck(&self, redis: &Redis) -> redis::RedisResult<usize> {
        let flagged: Vec<(i64, Flagged)> = match self.0.read() {
            Ok(m) => m.iter().map(|(k, v)| (*k, *v)).collect(),
            Err(_) => return Ok(0),
        };
        if flagged.is_empty() {
            return Ok(0);
        }
        let mut keys = Vec::new();
        for (tier, f) in &flagged {
            keys.extend(
                Bucket::all(f.event_id, f.buckets).map(|b| redis.keys.bucket(b).stock(*tier)),
            );
        }
        // MGET over several slots is split per node by the cluster client.
        let stock: Vec<Option<i64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut redis.conn.clone())
            .await?;
        let mut units = stock.into_iter();
        let mut cleared = 0;
        for (tier, f) in flagged {
            let total: i64 = units
                .by_ref()
                .take(f.buckets as usize)
                .map(|u| u.unwrap_or(0))
                .sum();
            if total > 0 {
                self.clear(tier);
                cleared += 1;
            }
        }
        Ok(cleared)
    }
}
