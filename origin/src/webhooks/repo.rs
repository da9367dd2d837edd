//! The outbox and its deliveries in PostgreSQL: the deployment's endpoints,
//! claiming due deliveries at an endpoint's pace (the leaky bucket's state
//! lives on the endpoint row, so every worker of every process shares it),
//! recording outcomes, and the console's reads and retries.

use std::time::Duration;

use rushgate_core::webhook::{
    DeadLetter, EndpointInput, EndpointView, EventType, OrderNotice, Pace, WebhookEvent,
};
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::orders::repo::OrderRow;

/// The order's columns, as `OrderRow` reads them.
const ORDER_COLUMNS: &str = "o.id, o.event_id, o.tier_id, o.user_id, o.bucket, o.quantity, \
     o.amount_cents, o.status, o.created_at, o.expires_at, o.paid_at";

/// One of the deployment's endpoints (`RUSHGATE_WEBHOOK_URLS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentEndpoint {
    pub url: String,
    pub types: Vec<EventType>,
    pub rate_per_s: u32,
    pub burst: u32,
}

fn type_names(types: &[EventType]) -> Vec<String> {
    types.iter().map(|t| t.as_str().to_owned()).collect()
}

/// Upserts the deployment's endpoints and disables those no longer listed.
pub async fn sync_deployment(db: &PgPool, endpoints: &[DeploymentEndpoint]) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    for e in endpoints {
        sqlx::query(
            "INSERT INTO webhook_endpoints (event_id, url, secret, types, rate_per_s, burst) \
             VALUES (NULL, $1, NULL, $2, $3, $4) \
             ON CONFLICT (url) WHERE event_id IS NULL DO UPDATE \
             SET types = $2, rate_per_s = $3, burst = $4, enabled = true",
        )
        .bind(&e.url)
        .bind(type_names(&e.types))
        .bind(e.rate_per_s as i32)
        .bind(e.burst as i32)
        .execute(&mut *tx)
        .await?;
    }
    let urls: Vec<&str> = endpoints.iter().map(|e| e.url.as_str()).collect();
    sqlx::query(
        "UPDATE webhook_endpoints SET enabled = false \
         WHERE event_id IS NULL AND enabled AND url <> ALL ($1)",
    )
    .bind(&urls)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Endpoints with a delivery due now.
pub async fn due_endpoints(db: &PgPool) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT w.id FROM webhook_endpoints w WHERE w.enabled AND EXISTS ( \
           SELECT 1 FROM webhook_deliveries d \
           WHERE d.endpoint_id = w.id AND d.state = 'pending' AND d.next_at <= now()) \
         ORDER BY w.id",
    )
    .fetch_all(db)
    .await
}

/// Where a claimed batch goes.
#[derive(Debug, Clone, FromRow)]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    /// `None`: the deployment's secret.
    pub secret: Option<String>,
    rate_per_s: i32,
    burst: i32,
    tat_us: i64,
    /// PostgreSQL's clock at the claim, µs since the epoch: the one clock
    /// all workers share.
    pub now_us: i64,
}

impl Endpoint {
    fn pace(&self) -> Pace {
        Pace {
            rate_per_s: self.rate_per_s.max(1) as u32,
            burst: self.burst.max(1) as u32,
        }
    }
}

/// A delivery taken by a worker: send it at `send_at_us` (the database's
/// clock). Carries the event and its order's row.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub event_seq: i64,
    /// Tries so far, this one included.
    pub attempts: i32,
    pub send_at_us: i64,
    /// The event's id (the idempotency key).
    #[sqlx(rename = "event_key")]
    pub id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    #[sqlx(rename = "event_at")]
    pub created_at: OffsetDateTime,
    #[sqlx(flatten)]
    pub order: OrderRow,
}

impl Claimed {
    /// The delivery's body: the order as it was right after the change — its
    /// row now, with the event's status (only the status and `paid_at` ever
    /// change, and paid is final).
    pub fn event(&self) -> Option<WebhookEvent> {
        let kind = EventType::parse(&self.kind)?;
        let mut data = self.order.to_api();
        data.status = kind.status();
        if kind != EventType::Paid {
            data.paid_at = None;
        }
        Some(WebhookEvent {
            id: self.id,
            kind,
            created_at: self.created_at,
            data,
        })
    }
}

/// Takes the deliveries `endpoint_id` may be sent from now to `horizon` ahead,
/// at most `want`: due ones at the head of their order's line, each with its
/// send time by the endpoint's pace and a lease that ends `lease` after it.
/// `None` while another worker is claiming for the endpoint.
pub async fn claim(
    db: &PgPool,
    endpoint_id: i64,
    want: usize,
    horizon: Duration,
    lease: Duration,
) -> sqlx::Result<Option<(Endpoint, Vec<Claimed>)>> {
    let mut tx = db.begin().await?;
    let endpoint: Option<Endpoint> = sqlx::query_as(
        "SELECT id, url, secret, rate_per_s, burst, tat_us, \
                (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us \
         FROM webhook_endpoints WHERE id = $1 AND enabled FOR UPDATE SKIP LOCKED",
    )
    .bind(endpoint_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    let horizon_us = horizon.as_micros() as i64;
    let pace = endpoint.pace();
    let (slots, _) = pace.schedule(endpoint.tat_us, endpoint.now_us, horizon_us, want);
    if slots.is_empty() {
        return Ok(Some((endpoint, Vec::new())));
    }
    let heads: Vec<i64> = sqlx::query_scalar(
        "SELECT d.event_seq FROM webhook_deliveries d \
         WHERE d.endpoint_id = $1 AND d.state = 'pending' \
           AND d.next_at <= to_timestamp($2::double precision / 1000000) \
           AND NOT EXISTS ( \
             SELECT 1 FROM webhook_deliveries p \
             WHERE p.endpoint_id = d.endpoint_id AND p.order_id = d.order_id \
               AND p.event_seq < d.event_seq AND p.state <> 'delivered') \
         ORDER BY d.next_at, d.event_seq LIMIT $3 FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(endpoint.id)
    .bind(endpoint.now_us)
    .bind(slots.len() as i64)
    .fetch_all(&mut *tx)
    .await?;
    let (times, tat_us) = pace.schedule(endpoint.tat_us, endpoint.now_us, horizon_us, heads.len());
    sqlx::query("UPDATE webhook_endpoints SET tat_us = $2 WHERE id = $1")
        .bind(endpoint.id)
        .bind(tat_us)
        .execute(&mut *tx)
        .await?;
    let mut claimed: Vec<Claimed> = sqlx::query_as(&format!(
        "WITH taken AS ( \
           UPDATE webhook_deliveries d \
           SET attempts = d.attempts + 1, \
               next_at = to_timestamp(t.send_us::double precision / 1000000) \
                         + make_interval(secs => $4) \
           FROM unnest($2::bigint[], $3::bigint[]) AS t (seq, send_us) \
           WHERE d.endpoint_id = $1 AND d.event_seq = t.seq \
           RETURNING d.event_seq, d.attempts, t.send_us \
         ) SELECT k.event_seq, k.attempts, k.send_us AS send_at_us, \
                  e.id AS event_key, e.type, e.created_at AS event_at, {ORDER_COLUMNS} \
           FROM taken k JOIN order_events e ON e.seq = k.event_seq \
           JOIN orders o ON o.id = e.order_id"
    ))
    .bind(endpoint.id)
    .bind(&heads)
    .bind(&times)
    .bind(lease.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    claimed.sort_by_key(|c| (c.send_at_us, c.event_seq));
    Ok(Some((endpoint, claimed)))
}

/// Records deliveries their endpoints acknowledged: (endpoint, event seq).
pub async fn delivered(db: &PgPool, done: &[(i64, i64)]) -> sqlx::Result<()> {
    let (endpoints, seqs): (Vec<i64>, Vec<i64>) = done.iter().copied().unzip();
    sqlx::query(
        "UPDATE webhook_deliveries d \
         SET state = 'delivered', delivered_at = now(), last_error = NULL \
         FROM unnest($1::bigint[], $2::bigint[]) AS t (endpoint_id, seq) \
         WHERE d.endpoint_id = t.endpoint_id AND d.event_seq = t.seq AND d.state <> 'delivered'",
    )
    .bind(&endpoints)
    .bind(&seqs)
    .execute(db)
    .await?;
    Ok(())
}

/// What became of a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    Retry,
    Dead,
    /// Another worker took the delivery meanwhile (this try outlived its lease).
    Gone,
}

/// Records a failed try `attempts`: dead after `max_attempts`, else due again
/// after `retry_in`. A dead delivery's later events of the same order wait
/// (`next_at` infinity) until it is retried, so nobody polls for them.
pub async fn failed(
    db: &PgPool,
    endpoint_id: i64,
    event_seq: i64,
    attempts: i32,
    max_attempts: u32,
    retry_in: Duration,
    error: &str,
) -> sqlx::Result<AfterFailure> {
    let state: Option<String> = sqlx::query_scalar(
        "WITH failed AS ( \
           UPDATE webhook_deliveries \
           SET state = CASE WHEN attempts >= $4 THEN 'dead' ELSE 'pending' END, \
               next_at = now() + make_interval(secs => $5), last_error = $6 \
           WHERE endpoint_id = $1 AND event_seq = $2 AND attempts = $3 AND state = 'pending' \
           RETURNING state, order_id \
         ), held AS ( \
           UPDATE webhook_deliveries d SET next_at = 'infinity' FROM failed f \
           WHERE f.state = 'dead' AND d.endpoint_id = $1 AND d.order_id = f.order_id \
             AND d.event_seq > $2 AND d.state = 'pending' \
         ) SELECT state FROM failed",
    )
    .bind(endpoint_id)
    .bind(event_seq)
    .bind(attempts)
    .bind(max_attempts as i32)
    .bind(retry_in.as_secs_f64())
    .bind(error)
    .fetch_optional(db)
    .await?;
    Ok(match state.as_deref() {
        Some("dead") => AfterFailure::Dead,
        Some(_) => AfterFailure::Retry,
        None => AfterFailure::Gone,
    })
}

/// Deletes up to `limit` rows of deliveries delivered more than `age` ago;
/// returns how many went.
pub async fn prune_delivered(db: &PgPool, age: Duration, limit: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM webhook_deliveries WHERE (endpoint_id, event_seq) IN ( \
           SELECT endpoint_id, event_seq FROM webhook_deliveries \
           WHERE state = 'delivered' AND delivered_at < now() - make_interval(secs => $1) \
           LIMIT $2)",
    )
    .bind(age.as_secs_f64())
    .bind(limit)
    .execute(db)
    .await?
    .rows_affected())
}

/// Deliveries waiting and dead for enabled endpoints, and the age of the
/// oldest waiting one (s). (A disabled endpoint's waiting deliveries stay in
/// its console row, not in the backlog.)
pub async fn backlog(db: &PgPool) -> sqlx::Result<(i64, i64, Option<f64>)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE d.state = 'pending'), count(*) FILTER (WHERE d.state = 'dead'), \
                extract(epoch FROM now() - min(d.created_at) FILTER (WHERE d.state = 'pending'))::float8 \
         FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
         WHERE d.state <> 'delivered' AND w.enabled",
    )
    .fetch_one(db)
    .await
}

#[derive(Debug, FromRow)]
struct EndpointRow {
    id: i64,
    event_id: Option<i64>,
    url: String,
    types: Vec<String>,
    rate_per_s: i32,
    burst: i32,
    enabled: bool,
    pending: i64,
    retrying: i64,
    delivered: i64,
    dead: i64,
    oldest_pending_s: Option<f64>,
}

impl EndpointRow {
    fn view(self) -> EndpointView {
        EndpointView {
            id: self.id,
            event_id: self.event_id,
            url: self.url,
            types: self
                .types
                .iter()
                .filter_map(|t| EventType::parse(t))
                .collect(),
            rate_per_s: self.rate_per_s as u32,
            burst: self.burst as u32,
            enabled: self.enabled,
            pending: self.pending,
            retrying: self.retrying,
            delivered: self.delivered,
            dead: self.dead,
            oldest_pending_s: self.oldest_pending_s,
            secret: None,
        }
    }
}

/// The endpoints that get an event's deliveries (its own and the
/// deployment's), with how that event's deliveries to each stand.
pub async fn endpoints_of_event(db: &PgPool, event_id: i64) -> sqlx::Result<Vec<EndpointView>> {
    let rows: Vec<EndpointRow> = sqlx::query_as(
        "SELECT w.id, w.event_id, w.url, w.types, w.rate_per_s, w.burst, w.enabled, \
                c.pending, c.retrying, c.delivered, c.dead, c.oldest_pending_s \
         FROM webhook_endpoints w \
         CROSS JOIN LATERAL ( \
           SELECT count(*) FILTER (WHERE d.state = 'pending') AS pending, \
                  count(*) FILTER (WHERE d.state = 'pending' AND d.last_error IS NOT NULL) AS retrying, \
                  count(*) FILTER (WHERE d.state = 'delivered') AS delivered, \
                  count(*) FILTER (WHERE d.state = 'dead') AS dead, \
                  extract(epoch FROM now() - min(d.created_at) FILTER (WHERE d.state = 'pending'))::float8 \
                    AS oldest_pending_s \
           FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.event_id = $1) c \
         WHERE w.event_id = $1 OR (w.event_id IS NULL AND (w.enabled OR c.pending + c.dead > 0)) \
         ORDER BY w.event_id NULLS FIRST, w.id",
    )
    .bind(event_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(EndpointRow::view).collect())
}

/// Adds an event's own endpoint; it gets the events recorded from now on.
pub async fn insert_endpoint(
    db: &PgPool,
    event_id: i64,
    input: &EndpointInput,
    secret: &str,
    types: &[EventType],
    rate_per_s: u32,
    burst: u32,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO webhook_endpoints (event_id, url, secret, types, rate_per_s, burst) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(event_id)
    .bind(&input.url)
    .bind(secret)
    .bind(type_names(types))
    .bind(rate_per_s as i32)
    .bind(burst as i32)
    .fetch_one(db)
    .await
}

/// Stops an event's own endpoint: nothing more is queued or sent to it; what
/// it had waiting stays, counted, should it be enabled again.
pub async fn disable_endpoint(db: &PgPool, event_id: i64, endpoint_id: i64) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("UPDATE webhook_endpoints SET enabled = false WHERE id = $1 AND event_id = $2")
            .bind(endpoint_id)
            .bind(event_id)
            .execute(db)
            .await?
            .rows_affected()
            == 1,
    )
}

#[derive(Debug, FromRow)]
struct DeadRow {
    endpoint_id: i64,
    id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    order_id: Uuid,
    attempts: i32,
    last_error: Option<String>,
    created_at: OffsetDateTime,
}

/// An event's dead deliveries, oldest first (at most `limit`).
pub async fn dead_letters(db: &PgPool, event_id: i64, limit: i64) -> sqlx::Result<Vec<DeadLetter>> {
    let rows: Vec<DeadRow> = sqlx::query_as(
        "SELECT d.endpoint_id, e.id, e.type, d.order_id, d.attempts, d.last_error, e.created_at \
         FROM webhook_deliveries d JOIN order_events e ON e.seq = d.event_seq \
         WHERE d.event_id = $1 AND d.state = 'dead' ORDER BY d.event_seq LIMIT $2",
    )
    .bind(event_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(DeadLetter {
                endpoint_id: r.endpoint_id,
                id: r.id,
                kind: EventType::parse(&r.kind)?,
                order_id: r.order_id,
                attempts: r.attempts,
                last_error: r.last_error,
                created_at: r.created_at,
            })
        })
        .collect())
}

/// Puts an event's dead deliveries to `endpoint_id` back in line with fresh
/// tries, and the events they held back with them.
pub async fn requeue_dead(db: &PgPool, event_id: i64, endpoint_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "WITH dead AS ( \
           UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = now() \
           WHERE event_id = $1 AND endpoint_id = $2 AND state = 'dead' RETURNING 1 \
         ), held AS ( \
           UPDATE webhook_deliveries SET next_at = now() \
           WHERE event_id = $1 AND endpoint_id = $2 AND state = 'pending' AND next_at = 'infinity' \
         ) SELECT count(*) FROM dead",
    )
    .bind(event_id)
    .bind(endpoint_id)
    .fetch_one(db)
    .await
}

#[derive(Debug, FromRow)]
struct NoticeRow {
    order_id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    created_at: OffsetDateTime,
}

/// The latest changes of a buyer's orders, newest first.
pub async fn notices(db: &PgPool, user_id: i64) -> sqlx::Result<Vec<OrderNotice>> {
    let rows: Vec<NoticeRow> = sqlx::query_as(
        "SELECT order_id, type, created_at FROM order_events \
         WHERE user_id = $1 ORDER BY seq DESC LIMIT 200",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(OrderNotice {
                order_id: r.order_id,
                kind: EventType::parse(&r.kind)?,
                created_at: r.created_at,
            })
        })
        .collect())
}
