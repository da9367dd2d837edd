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
        // One read per bucket (each its own slot), all at once; a bucket whose
        // node does not answer is asked again at the next re-check.
        let reads = flagged.iter().flat_map(|(tier, f)| {
            Bucket::all(f.event_id, f.buckets).map(move |b| async move {
                let units: redis::RedisResult<Option<i64>> = redis::cmd("GET")
                    .arg(redis.keys.bucket(b).stock(*tier))
                    .query_async(&mut redis.conn.clone())
                    .await;
                (*tier, units)
            })
        });
        let mut with_stock = std::collections::HashSet::new();
        let mut failure = None;
        for (tier, units) in futures::future::join_all(reads).await {
            match units {
                Ok(units) if units.unwrap_or(0) > 0 => {
                    with_stock.insert(tier);
                }
                Ok(_) => {}
                Err(e) => failure = Some(e),
            }
        }
        let cleared = with_stock.len();
        for tier in with_stock {
            self.clear(tier);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(cleared)
    }
}
