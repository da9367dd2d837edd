//! Read cache for events in front of PostgreSQL (moka).
//!
//! - Refresh-ahead: a cached event is served as is; once it is older than the
//!   refresh interval, one background task reloads it while readers keep getting
//!   the cached copy. A failed reload keeps serving the old copy.
//! - Unknown ids are remembered briefly (negative entries), so a crowd probing a
//!   bad id costs one query per interval.
//! - Concurrent misses for one key share a single load.
//!
//! Phases are computed from the clock at read time; the cache only holds rows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use sqlx::PgPool;

use super::repo::{self, EventRecord};
use crate::error::ApiError;

/// How long an unused positive entry stays cached.
const IDLE: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct Slot<T> {
    value: T,
    loaded_at: Instant,
    refreshing: Arc<AtomicBool>,
}

impl<T> Slot<T> {
    fn new(value: T) -> Self {
        Self {
            value,
            loaded_at: Instant::now(),
            refreshing: Arc::new(AtomicBool::new(false)),
        }
    }
}

type Event = Option<Arc<EventRecord>>;
type EventList = Arc<Vec<Arc<EventRecord>>>;

/// Negative entries expire after `negative`; positive ones after `IDLE` unused.
struct Lifetimes {
    negative: Duration,
}

impl Expiry<i64, Slot<Event>> for Lifetimes {
    fn expire_after_create(&self, _: &i64, slot: &Slot<Event>, _: Instant) -> Option<Duration> {
        Some(if slot.value.is_some() {
            IDLE
        } else {
            self.negative
        })
    }
    fn expire_after_read(
        &self,
        _: &i64,
        slot: &Slot<Event>,
        _: Instant,
        remaining: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        if slot.value.is_some() {
            Some(IDLE)
        } else {
            remaining
        }
    }
    fn expire_after_update(
        &self,
        key: &i64,
        slot: &Slot<Event>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, slot, now)
    }
}

/// Cached events by id, and the public list.
#[derive(Clone)]
pub struct EventCache {
    db: PgPool,
    by_id: Cache<i64, Slot<Event>>,
    list: Cache<(), Slot<EventList>>,
    refresh_after: Duration,
    loads: Arc<AtomicU64>,
}

impl EventCache {
    pub fn new(db: PgPool, refresh_after: Duration, negative: Duration) -> Self {
        Self {
            db,
            by_id: Cache::builder()
                .max_capacity(100_000)
                .expire_after(Lifetimes { negative })
                .build(),
            list: Cache::builder().max_capacity(1).time_to_idle(IDLE).build(),
            refresh_after,
            loads: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Database loads so far (misses plus background refreshes).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The event with this id, any status; `None` if there is none.
    pub async fn get(&self, id: i64) -> Result<Event, ApiError> {
        let slot = match self.by_id.get(&id).await {
            Some(slot) => {
                record_lookup(false);
                slot
            }
            None => {
                let entry = self
                    .by_id
                    .entry(id)
                    .or_try_insert_with(self.load_one(id))
                    .await
                    .map_err(unavailable)?;
                record_lookup(entry.is_fresh());
                entry.into_value()
            }
        };
        if slot.value.is_some() && self.due(&slot) {
            let cache = self.clone();
            tokio::spawn(async move {
                match cache.load_one(id).await {
                    Ok(slot) => cache.by_id.insert(id, slot).await,
                    Err(e) => {
                        tracing::warn!(event_id = id, error = %e, "event refresh failed; serving cached copy");
                        if let Some(old) = cache.by_id.get(&id).await {
                            old.refreshing.store(false, Ordering::Release);
                        }
                    }
                }
            });
        }
        Ok(slot.value)
    }

    /// Approved events that may appear in the public list (filtered by the caller
    /// with the clock).
    pub async fn public(&self) -> Result<EventList, ApiError> {
        let entry = self
            .list
            .entry(())
            .or_try_insert_with(self.load_list())
            .await
            .map_err(unavailable)?;
        record_lookup(entry.is_fresh());
        let slot = entry.into_value();
        if self.due(&slot) {
            let cache = self.clone();
            tokio::spawn(async move {
                match cache.load_list().await {
                    Ok(slot) => cache.list.insert((), slot).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "event list refresh failed; serving cached copy");
                        if let Some(old) = cache.list.get(&()).await {
                            old.refreshing.store(false, Ordering::Release);
                        }
                    }
                }
            });
        }
        Ok(slot.value)
    }

    /// Drops an event and the list after a change made by this process; other
    /// replicas see it within one refresh interval.
    pub async fn invalidate(&self, id: i64) {
        self.by_id.invalidate(&id).await;
        self.list.invalidate(&()).await;
    }

    /// Whether a slot is stale and no refresh is running; claims the refresh.
    fn due<T>(&self, slot: &Slot<T>) -> bool {
        slot.loaded_at.elapsed() >= self.refresh_after
            && slot
                .refreshing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    async fn load_one(&self, id: i64) -> Result<Slot<Event>, sqlx::Error> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("rushgate_event_cache_loads_total").increment(1);
        let record = repo::get(&self.db, id).await?;
        Ok(Slot::new(record.map(Arc::new)))
    }

    async fn load_list(&self) -> Result<Slot<EventList>, sqlx::Error> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("rushgate_event_cache_loads_total").increment(1);
        let records = repo::list_public(&self.db).await?;
        Ok(Slot::new(Arc::new(
            records.into_iter().map(Arc::new).collect(),
        )))
    }
}

/// Counts a lookup. The handles are made once: every `/buy` looks its event up.
fn record_lookup(miss: bool) {
    static COUNTERS: OnceLock<[metrics::Counter; 2]> = OnceLock::new();
    let [hits, misses] = COUNTERS.get_or_init(|| {
        ["hit", "miss"].map(
            |result| metrics::counter!("rushgate_event_cache_lookups_total", "result" => result),
        )
    });
    if miss { misses } else { hits }.increment(1);
}

fn unavailable(e: Arc<sqlx::Error>) -> ApiError {
    ApiError::Unavailable(anyhow::anyhow!("loading events: {e}"))
}
