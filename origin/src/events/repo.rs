//! Events and tiers in PostgreSQL.

use std::collections::HashMap;

use rushgate_core::api::EventStatus;
use rushgate_core::challenge::ChallengeMode;
use rushgate_core::draw::Seed;
use rushgate_core::event::{Admission, EventSpec};
use rushgate_core::velocity::Limits;
use rushgate_core::{Phase, PresaleWindow, Schedule};
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, PgPool};
use time::OffsetDateTime;

/// An event as stored, with its tiers in order.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub venue: String,
    pub description: String,
    pub schedule: Schedule,
    pub per_user_limit: u32,
    pub per_order_limit: u32,
    pub payment_window_s: u32,
    pub dedup_window_s: u32,
    pub admission: Admission,
    pub buckets: u32,
    pub challenge: ChallengeMode,
    pub velocity: Limits,
    pub status: EventStatus,
    pub review_note: Option<String>,
    pub tiers: Vec<TierRecord>,
    /// A queue's secret draw seed, fixed at approval.
    pub draw_seed: Option<Seed>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TierRecord {
    pub id: i64,
    pub event_id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock: i32,
}

impl EventRecord {
    pub fn tier(&self, tier_id: i64) -> Option<&TierRecord> {
        self.tiers.iter().find(|t| t.id == tier_id)
    }

    pub fn stock_total(&self) -> i64 {
        self.tiers.iter().map(|t| i64::from(t.stock)).sum()
    }

    /// Whether the public may see the event at all.
    pub fn is_public(&self, now: OffsetDateTime) -> bool {
        self.status == EventStatus::Approved && now >= self.schedule.visible_at
    }

    /// The sale phase at `now` given the units remaining. Unapproved events are
    /// hidden whatever the clock says.
    pub fn phase(&self, now: OffsetDateTime, remaining: i64) -> Phase {
        match self.status {
            EventStatus::Approved => self.schedule.phase(now, remaining),
            EventStatus::Cancelled => Phase::Closed,
            _ => Phase::Hidden,
        }
    }
}

#[derive(FromRow)]
struct EventRow {
    id: i64,
    owner_id: i64,
    name: String,
    venue: String,
    description: String,
    visible_at: OffsetDateTime,
    opens_at: OffsetDateTime,
    closes_at: OffsetDateTime,
    per_user_limit: i32,
    per_order_limit: i32,
    payment_window_s: i32,
    dedup_window_s: i32,
    admission: Json<Admission>,
    buckets: i32,
    challenge: Json<ChallengeMode>,
    presale_opens_at: Option<OffsetDateTime>,
    presale_closes_at: Option<OffsetDateTime>,
    velocity: Json<Limits>,
    status: String,
    review_note: Option<String>,
    draw_seed: Option<Vec<u8>>,
}

impl EventRow {
    fn into_record(self, tiers: Vec<TierRecord>) -> EventRecord {
        EventRecord {
            id: self.id,
            owner_id: self.owner_id,
            name: self.name,
            venue: self.venue,
            description: self.description,
            schedule: Schedule {
                visible_at: self.visible_at,
                opens_at: self.opens_at,
                closes_at: self.closes_at,
                presale: match (self.presale_opens_at, self.presale_closes_at) {
                    (Some(opens_at), Some(closes_at)) => Some(PresaleWindow {
                        opens_at,
                        closes_at,
                    }),
                    _ => None,
                },
            },
            per_user_limit: self.per_user_limit as u32,
            per_order_limit: self.per_order_limit as u32,
            payment_window_s: self.payment_window_s as u32,
            dedup_window_s: self.dedup_window_s as u32,
            admission: self.admission.0,
            buckets: self.buckets as u32,
            challenge: self.challenge.0,
            velocity: self.velocity.0,
            status: EventStatus::parse(&self.status).unwrap_or(EventStatus::Draft),
            review_note: self.review_note,
            tiers,
            draw_seed: self
                .draw_seed
                .and_then(|s| Seed::try_from(s.as_slice()).ok()),
        }
    }
}

const EVENT_COLUMNS: &str = "id, owner_id, name, venue, description, visible_at, opens_at, \
     closes_at, per_user_limit, per_order_limit, payment_window_s, dedup_window_s, admission, \
     buckets, challenge, presale_opens_at, presale_closes_at, velocity, status, review_note, \
     draw_seed";

async fn with_tiers(pool: &PgPool, rows: Vec<EventRow>) -> sqlx::Result<Vec<EventRecord>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let tiers: Vec<TierRecord> = sqlx::query_as(
        "SELECT id, event_id, name, price_cents, stock FROM tiers \
         WHERE event_id = ANY($1) ORDER BY event_id, position",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut by_event: HashMap<i64, Vec<TierRecord>> = HashMap::new();
    for tier in tiers {
        by_event.entry(tier.event_id).or_default().push(tier);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let tiers = by_event.remove(&row.id).unwrap_or_default();
            row.into_record(tiers)
        })
        .collect())
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<EventRecord>> {
    let row: Option<EventRow> =
        sqlx::query_as(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    match row {
        Some(row) => Ok(with_tiers(pool, vec![row]).await?.pop()),
        None => Ok(None),
    }
}

/// Approved events that have not been closed for more than a week: the candidates
/// for the public list, filtered by the clock at read time.
pub async fn list_public(pool: &PgPool) -> sqlx::Result<Vec<EventRecord>> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE status = 'approved' \
         AND closes_at > now() - interval '7 days' ORDER BY opens_at, id"
    ))
    .fetch_all(pool)
    .await?;
    with_tiers(pool, rows).await
}

/// All events (admins) or one owner's events (operators), newest first.
pub async fn list_managed(pool: &PgPool, owner: Option<i64>) -> sqlx::Result<Vec<EventRecord>> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE $1::bigint IS NULL OR owner_id = $1 \
         ORDER BY id DESC"
    ))
    .bind(owner)
    .fetch_all(pool)
    .await?;
    with_tiers(pool, rows).await
}

/// Stores a new draft and its tiers; returns the event id.
pub async fn insert(pool: &PgPool, owner_id: i64, spec: &EventSpec) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (owner_id, name, venue, description, visible_at, opens_at, \
         closes_at, per_user_limit, per_order_limit, payment_window_s, dedup_window_s, \
         admission, buckets, challenge, presale_opens_at, presale_closes_at, velocity) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) \
         RETURNING id",
    )
    .bind(owner_id)
    .bind(&spec.name)
    .bind(&spec.venue)
    .bind(&spec.description)
    .bind(spec.schedule.visible_at)
    .bind(spec.schedule.opens_at)
    .bind(spec.schedule.closes_at)
    .bind(spec.per_user_limit as i32)
    .bind(spec.per_order_limit as i32)
    .bind(spec.payment_window_s as i32)
    .bind(spec.dedup_window_s as i32)
    .bind(Json(&spec.admission))
    .bind(spec.buckets as i32)
    .bind(Json(spec.challenge))
    .bind(spec.schedule.presale.map(|p| p.opens_at))
    .bind(spec.schedule.presale.map(|p| p.closes_at))
    .bind(Json(spec.velocity))
    .fetch_one(&mut *tx)
    .await?;
    insert_tiers(&mut *tx, id, spec).await?;
    tx.commit().await?;
    Ok(id)
}

async fn insert_tiers(
    conn: impl PgExecutor<'_>,
    event_id: i64,
    spec: &EventSpec,
) -> sqlx::Result<()> {
    let names: Vec<&str> = spec.tiers.iter().map(|t| t.name.as_str()).collect();
    let prices: Vec<i64> = spec.tiers.iter().map(|t| t.price_cents).collect();
    let stocks: Vec<i32> = spec.tiers.iter().map(|t| t.stock as i32).collect();
    sqlx::query(
        "INSERT INTO tiers (event_id, position, name, price_cents, stock) \
         SELECT $1, t.ord, t.name, t.price, t.stock \
         FROM unnest($2::text[], $3::bigint[], $4::int[]) WITH ORDINALITY AS t(name, price, stock, ord)",
    )
    .bind(event_id)
    .bind(&names)
    .bind(&prices)
    .bind(&stocks)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces an editable event's definition. Returns false if the event is not in
/// an editable status (draft, or rejected, which returns to draft).
pub async fn update(pool: &PgPool, id: i64, spec: &EventSpec) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE events SET name=$2, venue=$3, description=$4, visible_at=$5, opens_at=$6, \
         closes_at=$7, per_user_limit=$8, per_order_limit=$9, payment_window_s=$10, \
         dedup_window_s=$11, admission=$12, buckets=$13, challenge=$14, \
         presale_opens_at=$15, presale_closes_at=$16, velocity=$17, status='draft', \
         review_note=NULL, \
         updated_at=now() WHERE id=$1 AND status IN ('draft', 'rejected')",
    )
    .bind(id)
    .bind(&spec.name)
    .bind(&spec.venue)
    .bind(&spec.description)
    .bind(spec.schedule.visible_at)
    .bind(spec.schedule.opens_at)
    .bind(spec.schedule.closes_at)
    .bind(spec.per_user_limit as i32)
    .bind(spec.per_order_limit as i32)
    .bind(spec.payment_window_s as i32)
    .bind(spec.dedup_window_s as i32)
    .bind(Json(&spec.admission))
    .bind(spec.buckets as i32)
    .bind(Json(spec.challenge))
    .bind(spec.schedule.presale.map(|p| p.opens_at))
    .bind(spec.schedule.presale.map(|p| p.closes_at))
    .bind(Json(spec.velocity))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM tiers WHERE event_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    insert_tiers(&mut *tx, id, spec).await?;
    tx.commit().await?;
    Ok(true)
}

/// Moves an event from one of `from` to `to`. Returns false if it was in none of them.
pub async fn transition(
    conn: impl PgExecutor<'_>,
    id: i64,
    from: &[EventStatus],
    to: EventStatus,
    note: Option<&str>,
) -> sqlx::Result<bool> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "UPDATE events SET status = $3, review_note = COALESCE($4, review_note), \
         updated_at = now() WHERE id = $1 AND status = ANY($2)",
    )
    .bind(id)
    .bind(&from)
    .bind(to.as_str())
    .bind(note)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Fixes the draw seed of a queue event, once (inside the approval).
pub async fn fix_draw_seed(db: impl PgExecutor<'_>, id: i64, seed: &Seed) -> sqlx::Result<()> {
    sqlx::query("UPDATE events SET draw_seed = $2 WHERE id = $1 AND draw_seed IS NULL")
        .bind(id)
        .bind(seed.as_slice())
        .execute(db)
        .await?;
    Ok(())
}
