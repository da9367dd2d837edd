//! Funnel counters the origin keeps per event (requests that reached `/buy`, rate
//! limited, sold-out short-circuits) in memory and flushes to Redis in batches;
//! the scripts count reservations and rejections themselves, and the edge
//! flushes its own counters to the same hash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::store::redis::Redis;

#[derive(Default)]
struct Counts {
    forwarded: AtomicU64,
    rate_limited: AtomicU64,
    sold_out_flagged: AtomicU64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// A `/buy` request reached the origin.
    Forwarded,
    /// Refused by the token bucket.
    RateLimited,
    /// Answered from the in-memory sold-out flag.
    SoldOutFlagged,
}

#[derive(Clone, Default)]
pub struct FunnelCounters(Arc<RwLock<HashMap<i64, Arc<Counts>>>>);

impl FunnelCounters {
    pub fn bump(&self, event_id: i64, step: Step) {
        let counts = self.0.read().ok().and_then(|m| m.get(&event_id).cloned());
        let counts = match counts {
            Some(c) => c,
            None => match self.0.write() {
                Ok(mut m) => m.entry(event_id).or_default().clone(),
                Err(_) => return,
            },
        };
        let counter = match step {
            Step::Forwarded => &counts.forwarded,
            Step::RateLimited => &counts.rate_limited,
            Step::SoldOutFlagged => &counts.sold_out_flagged,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the counts gathered since the last flush to Redis. On failure the
    /// counts are put back, so nothing is lost.
    pub async fn flush(&self, redis: &Redis) -> redis::RedisResult<()> {
        let events: Vec<(i64, Arc<Counts>)> = match self.0.read() {
            Ok(m) => m.iter().map(|(k, v)| (*k, v.clone())).collect(),
            Err(_) => return Ok(()),
        };
        let mut taken = Vec::new();
        let mut pipe = redis::pipe();
        let mut any = false;
        for (event_id, counts) in events {
            let values = [
                ("forwarded", counts.forwarded.swap(0, Ordering::Relaxed)),
                (
                    "rate_limited",
                    counts.rate_limited.swap(0, Ordering::Relaxed),
                ),
                (
                    "sold_out_flagged",
                    counts.sold_out_flagged.swap(0, Ordering::Relaxed),
                ),
            ];
            for (field, value) in values {
                if value > 0 {
                    pipe.hincr(redis.keys.funnel(event_id), field, value)
                        .ignore();
                    any = true;
                }
            }
            taken.push((counts, values));
        }
        if !any {
            return Ok(());
        }
        if let Err(e) = pipe.query_async::<()>(&mut redis.conn.clone()).await {
            for (counts, [(_, f), (_, r), (_, s)]) in taken {
                counts.forwarded.fetch_add(f, Ordering::Relaxed);
                counts.rate_limited.fetch_add(r, Ordering::Relaxed);
                counts.sold_out_flagged.fetch_add(s, Ordering::Relaxed);
            }
            return Err(e);
        }
        Ok(())
    }
}
