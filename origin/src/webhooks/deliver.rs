//! The delivery worker: claims due deliveries at each endpoint's pace
//! (`repo::claim`), sends each at its time as a signed POST, and records the
//! outcome — delivered on any 2xx; otherwise due again after an exponential
//! backoff with jitter, or dead after the configured tries.
//!
//! Acknowledged deliveries are recorded in batches by one recorder task (one
//! `UPDATE` for up to [`RECORD_BATCH`]), which holds each delivery's in-flight
//! permit until its row says delivered.
//!
//! Deliveries reach public addresses only, unless the deployment allows
//! private ones (`destination`): the URL is checked before each send and the
//! client resolves names to their public addresses only, follows no redirect
//! and uses no proxy. A failure is recorded as a class (`unreachable`, `timed
//! out`, `HTTP 503`), never as the network's own words.
//!
//! At least once: a claim is a lease, so a worker that dies mid-delivery
//! leaves its deliveries due again once their lease ends, and they go out
//! again with the same `id`. Several workers in several processes share the
//! pace, which is kept on the endpoint's row.

use std::sync::Arc;
use std::time::Duration;

use rushgate_core::webhook::{self, SIGNATURE_HEADER};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use super::WebhookConfig;
use super::destination::{self, PublicOnly};
use super::repo::{self, AfterFailure, Claimed, Endpoint};

/// How far ahead one claim schedules sends.
const HORIZON: Duration = Duration::from_millis(250);

/// What a delivery's lease adds to its request's timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// The longest error text kept with a delivery.
const MAX_ERROR_LEN: usize = 300;

/// The most acknowledged deliveries recorded in one statement.
const RECORD_BATCH: usize = 1000;

/// A delivery the endpoint acknowledged, waiting to be recorded, with its
/// in-flight permit.
type Acknowledged = ((i64, i64), OwnedSemaphorePermit);

/// The most rows one pruning step deletes.
const PRUNE_BATCH: i64 = 10_000;

#[derive(Debug, Clone)]
struct Settings {
    secret: Vec<u8>,
    /// How long delivered rows are kept; `None`: for ever.
    keep: Option<Duration>,
    lease: Duration,
    max_attempts: u32,
    backoff_ms: u64,
    backoff_max_ms: u64,
    in_flight: usize,
    allow_private: bool,
}

#[derive(Clone)]
pub struct Deliverer {
    db: PgPool,
    http: reqwest::Client,
    settings: Arc<Settings>,
    in_flight: Arc<Semaphore>,
    acknowledged: mpsc::UnboundedSender<Acknowledged>,
}

impl Deliverer {
    pub fn new(db: PgPool, config: &WebhookConfig) -> anyhow::Result<Self> {
        let mut http = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(config.timeout().min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("rushgate-webhooks/", env!("CARGO_PKG_VERSION")));
        if !config.webhook_allow_private {
            http = http.dns_resolver(PublicOnly);
        }
        let http = http.build()?;
        let in_flight = config.webhook_in_flight.max(1);
        let (acknowledged, queue) = mpsc::unbounded_channel();
        tokio::spawn(record(db.clone(), queue));
        Ok(Self {
            db,
            http,
            acknowledged,
            settings: Arc::new(Settings {
                secret: config.webhook_secret.0.as_bytes().to_vec(),
                keep: (config.webhook_keep_days > 0)
                    .then(|| Duration::from_secs(u64::from(config.webhook_keep_days) * 86_400)),
                lease: config.timeout() + LEASE_MARGIN,
                max_attempts: config.webhook_max_attempts.max(1),
                backoff_ms: config.webhook_backoff_ms,
                backoff_max_ms: config.webhook_backoff_max_ms.max(config.webhook_backoff_ms),
                in_flight,
                allow_private: config.webhook_allow_private,
            }),
            in_flight: Arc::new(Semaphore::new(in_flight)),
        })
    }

    /// One pass: for each endpoint with deliveries due, claims what its pace
    /// allows in the next moment and starts sending them, each at its time.
    /// Returns how many sends it started.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let mut started = 0;
        for endpoint_id in repo::due_endpoints(&self.db).await? {
            let free = self.in_flight.available_permits();
            if free == 0 {
                break;
            }
            let asked_at = Instant::now();
            let Some((endpoint, claimed)) =
                repo::claim(&self.db, endpoint_id, free, HORIZON, self.settings.lease).await?
            else {
                continue;
            };
            let endpoint = Arc::new(endpoint);
            for delivery in claimed {
                let permit = self.in_flight.clone().acquire_owned().await?;
                let wait =
                    Duration::from_micros((delivery.send_at_us - endpoint.now_us).max(0) as u64);
                let this = self.clone();
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(asked_at + wait).await;
                    this.deliver(&endpoint, delivery, permit).await;
                });
                started += 1;
            }
        }
        Ok(started)
    }

    /// Deletes a batch of delivered rows past the retention; true when it
    /// was a full batch (more may be waiting).
    pub async fn prune(&self) -> sqlx::Result<bool> {
        let Some(age) = self.settings.keep else {
            return Ok(false);
        };
        let deleted = repo::prune_delivered(&self.db, age, PRUNE_BATCH).await?;
        if deleted > 0 {
            tracing::info!(deleted, "pruned delivered webhook deliveries");
        }
        Ok(deleted as i64 >= PRUNE_BATCH)
    }

    /// Waits until none of this worker's deliveries is in flight or waiting
    /// to be recorded.
    pub async fn settle(&self) {
        let all = u32::try_from(self.settings.in_flight).unwrap_or(u32::MAX);
        if let Ok(permits) = self.in_flight.acquire_many(all).await {
            drop(permits);
        }
    }

    /// Sends one delivery and records what came of it.
    async fn deliver(&self, endpoint: &Endpoint, delivery: Claimed, permit: OwnedSemaphorePermit) {
        match self.send(endpoint, &delivery).await {
            Ok(()) => {
                metrics::counter!("rushgate_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                // Recorded with others; if the recorder is gone, the lease
                // runs out and the delivery goes again, with the same id.
                let _ = self
                    .acknowledged
                    .send(((endpoint.id, delivery.event_seq), permit));
            }
            Err(error) => {
                if let Err(e) = self.failed(endpoint, &delivery, &error).await {
                    tracing::warn!(endpoint = endpoint.id, seq = delivery.event_seq, error = %e, "outcome not recorded");
                }
            }
        }
    }

    async fn failed(
        &self,
        endpoint: &Endpoint,
        delivery: &Claimed,
        error: &str,
    ) -> sqlx::Result<()> {
        let s = &self.settings;
        let retry_in = Duration::from_millis(webhook::backoff_ms(
            delivery.attempts.max(1) as u32,
            s.backoff_ms,
            s.backoff_max_ms,
            rand::random::<f64>(),
        ));
        let error: String = error.chars().take(MAX_ERROR_LEN).collect();
        let after = repo::failed(
            &self.db,
            endpoint.id,
            delivery.event_seq,
            delivery.attempts,
            s.max_attempts,
            retry_in,
            &error,
        )
        .await?;
        let outcome = match after {
            AfterFailure::Dead => {
                let url = destination::redacted(&endpoint.url);
                tracing::warn!(endpoint = endpoint.id, %url, seq = delivery.event_seq, attempts = delivery.attempts, %error, "delivery dead-lettered");
                "dead"
            }
            AfterFailure::Retry => {
                tracing::debug!(endpoint = endpoint.id, seq = delivery.event_seq, attempts = delivery.attempts, retry_in = ?retry_in, %error, "delivery failed");
                "failed"
            }
            AfterFailure::Gone => "failed",
        };
        metrics::counter!("rushgate_webhook_deliveries_total", "outcome" => outcome).increment(1);
        Ok(())
    }

    /// One signed POST; `Err` says why it did not count as delivered.
    async fn send(&self, endpoint: &Endpoint, delivery: &Claimed) -> Result<(), String> {
        // An address written into the URL is not resolved: checked here, as
        // is an endpoint stored before the rules.
        destination::check_url(&endpoint.url, self.settings.allow_private)
            .map_err(|_| UNREACHABLE.to_owned())?;
        let body = body(delivery).map_err(|e| format!("unreadable event: {e}"))?;
        let secret = endpoint
            .secret
            .as_deref()
            .map_or(self.settings.secret.as_slice(), str::as_bytes);
        let t = OffsetDateTime::now_utc().unix_timestamp();
        let response = self
            .http
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, webhook::sign(secret, t, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| failure_class(&e).to_owned())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// Records acknowledged deliveries as they come, up to [`RECORD_BATCH`] a
/// statement, until every sender is gone. A batch that cannot be written is
/// dropped: its leases run out and the deliveries go again.
async fn record(db: PgPool, mut queue: mpsc::UnboundedReceiver<Acknowledged>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while queue.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let (done, permits): (Vec<(i64, i64)>, Vec<OwnedSemaphorePermit>) = batch.drain(..).unzip();
        if let Err(e) = repo::delivered(&db, &done).await {
            tracing::warn!(deliveries = done.len(), error = %e, "acknowledged deliveries not recorded; they go again");
        }
        drop(permits);
    }
}

/// What a failed send is recorded as: one of a few classes, so that dead
/// letters say nothing of the network behind the endpoint.
const UNREACHABLE: &str = "unreachable";

fn failure_class(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() || error.is_request() {
        UNREACHABLE
    } else {
        "no answer"
    }
}

/// The delivery's JSON body (SPEC §4 "Webhooks").
fn body(delivery: &Claimed) -> anyhow::Result<Vec<u8>> {
    let event = delivery
        .event()
        .ok_or_else(|| anyhow::anyhow!("unknown type {}", delivery.kind))?;
    Ok(serde_json::to_vec(&event)?)
}
