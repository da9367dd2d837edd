//! The workers' reconciliation of each selling event: counts where every unit
//! of a tier is — left in the buckets, held by reservations on their way to
//! PostgreSQL, held by orders, moving between buckets — and hands the counts to
//! `core::ledger`, which says how many units are unaccounted for. The verdict is
//! kept in Redis for the admin stats (`P:{e<event>}:ledger`), exported as the
//! gauge `rushgate_ledger_unaccounted_units`, and logged as a warning once it
//! persists. A bucket found without its stock at two checks in a row is written
//! back from PostgreSQL (`sale::rebuild`), with no operator involved.
//!
//! Redis is read before PostgreSQL, and PostgreSQL is asked which of the queued
//! reservations already have rows and which waiting releases already went
//! back, so a unit moving between the stores while they are read is counted
//! once; what is still in flight differs from one check to the next and is
//! not reported (`core::ledger::STREAK_TO_WARN`).

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use rushgate_core::api::LedgerCheck;
use rushgate_core::ledger::{self, TierCount};
use time::OffsetDateTime;
use uuid::Uuid;

use super::keys::Bucket;
use super::rebuild::{self, Rebuilt};
use super::record::Reservation;
use super::replicas::Replicas;
use super::streams;
use super::transfer::Pending;
use crate::events::repo::EventRecord;
use crate::orders::repo as orders;
use crate::store::redis::Redis;

/// How long a check is kept: long after its event stopped being checked.
const CHECK_TTL_S: u64 = 30 * 24 * 3600;

/// The result of reconciling one event.
#[derive(Debug, Clone)]
pub struct Reconciled {
    pub event_id: i64,
    /// Lost buckets written back before counting, if any.
    pub rebuilt: Option<Rebuilt>,
    pub check: LedgerCheck,
}

/// Reconciles the events that can still sell or take payments.
#[derive(Clone)]
pub struct Ledger {
    db: sqlx::PgPool,
    redis: Redis,
    replicas: Replicas,
}

impl Ledger {
    pub fn new(db: sqlx::PgPool, redis: Redis, replicas: Replicas) -> Self {
        Self {
            db,
            redis,
            replicas,
        }
    }

    /// One check of every approved event not closed for more than a week.
    /// An event whose check fails (a node failing over) is skipped until the
    /// next pass; the first error is returned after the others were checked.
    pub async fn run_once(&self, now: OffsetDateTime) -> anyhow::Result<Vec<Reconciled>> {
        let events = crate::events::repo::list_public(&self.db).await?;
        let mut done = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in &events {
            match self.reconcile(event, now).await {
                Ok(r) => done.push(r),
                Err(e) => {
                    failure.get_or_insert(e.context(format!("event {}", event.id)));
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// Writes back buckets lost twice in a row, counts, and stores the check.
    pub async fn reconcile(
        &self,
        event: &EventRecord,
        now: OffsetDateTime,
    ) -> anyhow::Result<Reconciled> {
        let key = self.redis.keys.ledger(event.id);
        let previous: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.redis.conn.clone())
            .await?;
        let previous: Option<LedgerCheck> =
            previous.and_then(|json| serde_json::from_str(&json).ok());

        let present = rebuild::present(&self.redis, event).await?;
        let lost: Vec<u32> = (0..event.buckets.max(1))
            .filter(|&b| !present[b as usize])
            .collect();
        let again = ledger::to_rebuild(previous.as_ref(), &lost);
        let mut rebuilt = None;
        let mut lost_now = lost;
        if !again.is_empty() {
            let done = rebuild::rebuild(&self.db, &self.redis, &self.replicas, event, Some(&again))
                .await?;
            tracing::warn!(
                event_id = event.id,
                buckets = ?again,
                rebuilt = done.rebuilt,
                "stock written back from PostgreSQL after Redis lost it"
            );
            lost_now.retain(|b| !again.contains(b));
            rebuilt = Some(done);
        }
        // Heals a registry that lost members: every bucket's stream is read.
        for b in Bucket::all(event.id, event.buckets) {
            streams::register(&self.redis, b).await?;
        }

        let counts = self.count(event).await?;
        let check = ledger::check(event.id, previous.as_ref(), &counts, lost_now, now);
        for t in &check.tiers {
            metrics::gauge!(
                "rushgate_ledger_unaccounted_units",
                "event_id" => event.id.to_string(),
                "tier_id" => t.tier_id.to_string()
            )
            .set(t.unaccounted as f64);
        }
        if let Some(warning) = &check.warning {
            tracing::warn!(event_id = event.id, %warning, "ledger");
        }
        redis::cmd("SET")
            .arg(&key)
            .arg(serde_json::to_string(&check)?)
            .arg("EX")
            .arg(CHECK_TTL_S)
            .query_async::<()>(&mut self.redis.conn.clone())
            .await?;
        Ok(Reconciled {
            event_id: event.id,
            rebuilt,
            check,
        })
    }

    /// Where each tier's units are now.
    pub async fn count(&self, event: &EventRecord) -> anyhow::Result<Vec<TierCount>> {
        let mut counts: HashMap<i64, TierCount> = event
            .tiers
            .iter()
            .map(|t| {
                let count = TierCount {
                    tier_id: t.id,
                    stock_total: i64::from(t.stock),
                    ..TierCount::default()
                };
                (t.id, count)
            })
            .collect();

        // Redis first: stock, queued reservations and transfers, per bucket.
        let reads = Bucket::all(event.id, event.buckets).map(|b| self.read_bucket(event, b));
        let mut queued = Vec::new();
        for bucket in join_all(reads).await {
            let bucket = bucket?;
            for (tier_id, units) in bucket.stock {
                counts.entry(tier_id).or_default().remaining += units;
            }
            for (tier_id, units) in bucket.moving {
                counts.entry(tier_id).or_default().moving += units;
            }
            queued.extend(bucket.queued);
        }

        // Then PostgreSQL, in one snapshot: orders that hold units, which queued
        // ones are rows by now, and the releases still waiting.
        let mut tx = crate::store::db::snapshot(&self.db).await?;
        for held in orders::held_units(&mut *tx, event.id).await? {
            counts.entry(held.tier_id).or_default().ordered += held.units;
        }
        let ids: Vec<Uuid> = queued.iter().map(|r| r.id).collect();
        let rows: HashSet<Uuid> = orders::existing(&mut *tx, &ids)
            .await?
            .into_iter()
            .collect();
        for r in queued.iter().filter(|r| !rows.contains(&r.id)) {
            counts.entry(r.tier_id).or_default().queued += i64::from(r.quantity);
        }
        // Releases that went back to Redis since their row was read as waiting.
        let waiting_releases = orders::waiting_releases(&mut *tx, event.id).await?;
        tx.commit().await?;
        for waiting in waiting_releases {
            let b = Bucket {
                event_id: event.id,
                bucket: waiting.bucket.max(0) as u32,
                buckets: event.buckets,
            };
            let back: bool = redis::cmd("EXISTS")
                .arg(self.redis.keys.bucket(b).released(&waiting.id))
                .query_async(&mut self.redis.conn.clone())
                .await?;
            if back {
                counts.entry(waiting.tier_id).or_default().ordered -= i64::from(waiting.quantity);
            }
        }
        let mut out: Vec<TierCount> = event
            .tiers
            .iter()
            .filter_map(|t| counts.remove(&t.id))
            .collect();
        out.sort_by_key(|c| c.tier_id);
        Ok(out)
    }

    /// One bucket's stock, queued reservations and unlanded transfers.
    async fn read_bucket(&self, event: &EventRecord, b: Bucket) -> anyhow::Result<BucketRead> {
        let keys = self.redis.keys.bucket(b);
        let stock_keys: Vec<String> = event.tiers.iter().map(|t| keys.stock(t.id)).collect();
        let mut conn = self.redis.conn.clone();
        // One slot: one pipeline.
        let (stock, queued, transfers): BucketReply = redis::pipe()
            .cmd("MGET")
            .arg(&stock_keys)
            .cmd("HVALS")
            .arg(keys.queued())
            .cmd("HGETALL")
            .arg(keys.transfers())
            .query_async(&mut conn)
            .await?;
        let mut out = BucketRead {
            stock: event
                .tiers
                .iter()
                .zip(stock)
                .map(|(t, units)| (t.id, units.unwrap_or(0)))
                .collect(),
            queued: queued
                .iter()
                .filter_map(|r| Reservation::parse(r))
                .collect(),
            moving: Vec::new(),
        };
        for (id, value) in transfers {
            let Some(p) = Pending::parse(b, &value) else {
                continue;
            };
            // Landed already (its record is deleted right after): in the target's stock.
            let landed: bool = redis::cmd("EXISTS")
                .arg(self.redis.keys.bucket(p.target).landed(&id))
                .query_async(&mut conn)
                .await?;
            if !landed {
                out.moving.push((p.tier_id, p.units));
            }
        }
        Ok(out)
    }
}

/// Stock per tier, queued records, transfer records.
type BucketReply = (Vec<Option<i64>>, Vec<String>, Vec<(String, String)>);

struct BucketRead {
    stock: Vec<(i64, i64)>,
    queued: Vec<Reservation>,
    moving: Vec<(i64, i64)>,
}
