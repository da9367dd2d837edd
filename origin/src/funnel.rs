//! Funnel counters the origin keeps per event (requests that reached `/buy`, rate
//! limited, sold-out short-circuits) in memory and flushes to Redis in batches;
//! the scripts count reservations and rejections themselves, and the edge
//! flushes its own counters to the same hash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures::future::join_all;

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

    /// Adds the counts gathered since the last flush to Redis, one pipeline
    /// per event (its counters are one slot). Counts whose write failed are
    /// put back, so nothing is lost.
    pub async fn flush(&self, redis: &Redis) -> redis::RedisResult<()> {
        let events: Vec<(i64, Arc<Counts>)> = match self.0.read() {
            Ok(m) => m.iter().map(|(k, v)| (*k, v.clone())).collect(),
            Err(_) => return Ok(()),
        };
        let writes = events.into_iter().filter_map(|(event_id, counts)| {
            let values = [
                counts.forwarded.swap(0, Ordering::Relaxed),
                counts.rate_limited.swap(0, Ordering::Relaxed),
                counts.sold_out_flagged.swap(0, Ordering::Relaxed),
            ];
            if values.iter().all(|v| *v == 0) {
                return None;
            }
            let mut pipe = redis::pipe();
            let key = redis.keys.funnel(event_id);
            for (field, value) in ["forwarded", "rate_limited", "sold_out_flagged"]
                .into_iter()
                .zip(values)
            {
                if value > 0 {
                    pipe.hincr(&key, field, value).ignore();
                }
            }
            Some(async move {
                let written = pipe.query_async::<()>(&mut redis.conn.clone()).await;
                if written.is_err() {
                    let [f, r, s] = values;
                    counts.forwarded.fetch_add(f, Ordering::Relaxed);
                    counts.rate_limited.fetch_add(r, Ordering::Relaxed);
                    counts.sold_out_flagged.fetch_add(s, Ordering::Relaxed);
                }
                written
            })
        });
        join_all(writes).await.into_iter().collect()
    }
}
