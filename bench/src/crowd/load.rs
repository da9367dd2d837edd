//! The edge's Durable Object load, watched through a run: an idle object may
//! be evicted and start counting again from nothing, so the load is read every
//! few seconds while the crowd runs and each object's highest figures are kept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rushgate_client::Client;
use rushgate_core::api::{DedupLoad, ShardLoad};
use tokio::task::JoinHandle;

/// How often the load is read during a run.
const EVERY: Duration = Duration::from_secs(2);

/// A background reader of one event's load.
pub struct LoadWatch {
    seen: Arc<Mutex<Option<DedupLoad>>>,
    task: JoinHandle<()>,
    edge: Client,
    event_id: i64,
}

impl LoadWatch {
    /// Starts reading `event_id`'s load through `edge` (an admin's client).
    pub fn start(edge: Client, event_id: i64) -> Self {
        let seen = Arc::new(Mutex::new(None));
        let (reader, into) = (edge.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(EVERY).await;
                if let Ok(load) = reader.dedup_load_with(Some(event_id)).await {
                    keep(&into, load);
                }
            }
        });
        Self {
            seen,
            task,
            edge,
            event_id,
        }
    }

    /// Reads once more, stops, and gives each object's highest figures.
    pub async fn finish(self) -> anyhow::Result<DedupLoad> {
        self.task.abort();
        let last = self.edge.dedup_load_with(Some(self.event_id)).await?;
        keep(&self.seen, last);
        let merged = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        merged.ok_or_else(|| anyhow::anyhow!("no load read"))
    }
}

fn keep(into: &Mutex<Option<DedupLoad>>, load: DedupLoad) {
    if let Ok(mut seen) = into.lock() {
        *seen = Some(match seen.take() {
            Some(before) => merge(before, load),
            None => load,
        });
    }
}

/// Per object, the higher of two readings' asks and busiest second.
fn merge(a: DedupLoad, b: DedupLoad) -> DedupLoad {
    DedupLoad {
        shards: merge_all(a.shards, b.shards),
        frontier: merge_one(a.frontier, b.frontier),
        desk: merge_one(a.desk, b.desk),
        tallies: merge_all(a.tallies, b.tallies),
    }
}

fn merge_one(a: Option<ShardLoad>, b: Option<ShardLoad>) -> Option<ShardLoad> {
    match (a, b) {
        (Some(a), Some(b)) => Some(ShardLoad {
            shard: a.shard,
            asks: a.asks.max(b.asks),
            peak_per_s: a.peak_per_s.max(b.peak_per_s),
        }),
        (a, b) => a.or(b),
    }
}

fn merge_all(mut a: Vec<ShardLoad>, b: Vec<ShardLoad>) -> Vec<ShardLoad> {
    for load in b {
        match a.iter_mut().find(|x| x.shard == load.shard) {
            Some(x) => *x = merge_one(Some(*x), Some(load)).unwrap_or(load),
            None => a.push(load),
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(shard: u32, asks: u64, peak_per_s: u32) -> ShardLoad {
        ShardLoad {
            shard,
            asks,
            peak_per_s,
        }
    }

    #[test]
    fn an_evicted_object_keeps_its_highest_figures() {
        let before = DedupLoad {
            shards: vec![at(0, 900, 40), at(1, 10, 2)],
            frontier: Some(at(0, 30, 3)),
            desk: None,
            tallies: vec![at(0, 5, 1)],
        };
        // Shard 0 was evicted and counts again from nothing; a tally is new.
        let after = DedupLoad {
            shards: vec![at(0, 3, 1), at(1, 12, 2)],
            frontier: Some(at(0, 31, 2)),
            desk: Some(at(0, 7, 4)),
            tallies: vec![at(0, 6, 1), at(1, 2, 1)],
        };
        let merged = merge(before, after);
        assert_eq!(merged.shards, vec![at(0, 900, 40), at(1, 12, 2)]);
        assert_eq!(merged.frontier, Some(at(0, 31, 3)));
        assert_eq!(merged.desk, Some(at(0, 7, 4)));
        assert_eq!(merged.tallies, vec![at(0, 6, 1), at(1, 2, 1)]);
    }
}
