//! Relays ended sessions to the edge, so that a session logged out at the
//! origin directly, or whose account changed, is refused by the edge's user
//! shards too (purchase URLs, queue passes, challenges). With
//! `RUSHGATE_EDGE_URL` set, one origin process at a time (a lease in Redis)
//! follows the revocations stream from a cursor kept in Redis and POSTs what
//! is new to the edge, signed (`X-Rushgate-Forward`, bound to the body); the
//! cursor moves only once the edge took a batch, so nothing is skipped, and a
//! batch sent twice is harmless.

use std::time::Duration;

use rushgate_core::api::{EDGE_REVOCATIONS_PATH, EdgeRevocations, header};
use time::OffsetDateTime;

use super::revoked::{self, Revoked};
use crate::app::AppState;

/// Entries sent in one request.
const BATCH: usize = 500;

/// How long the lease lasts without being renewed.
const LEASE: Duration = Duration::from_secs(10);

/// The relay of one process.
#[derive(Clone)]
pub struct Relay {
    http: reqwest::Client,
    edge_url: String,
    holder: String,
}

impl Relay {
    /// A relay to `edge_url` (the edge's public base URL).
    pub fn new(edge_url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            edge_url: edge_url.trim_end_matches('/').to_owned(),
            holder: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// One step: if this process holds the lease, sends the next batch; true
    /// when it sent a full one (more may be waiting).
    pub async fn run_once(&self, state: &AppState) -> anyhow::Result<bool> {
        if !self.hold_lease(state).await? {
            return Ok(false);
        }
        let cursor_key = format!("{}:relayed", state.redis.keys.revoked_sessions());
        let cursor: Option<String> = redis::cmd("GET")
            .arg(&cursor_key)
            .query_async(&mut state.redis.conn.clone())
            .await?;
        let from = cursor.unwrap_or_else(|| "0".into());
        let (entries, last) = revoked::read(&state.redis, &from, BATCH).await?;
        let Some(last) = last else {
            return Ok(false);
        };
        let full = entries.len() >= BATCH;
        let mut batch = EdgeRevocations::default();
        for entry in entries {
            match entry {
                Revoked::Session { user_id, sid, exp } if user_id > 0 => {
                    batch.sessions.push((user_id, hex::encode(sid), exp));
                }
                Revoked::Session { .. } => {}
                Revoked::Account {
                    user_id,
                    generation,
                    until,
                } => batch.accounts.push((user_id, generation, until)),
            }
        }
        self.send(state, &batch).await?;
        redis::cmd("SET")
            .arg(&cursor_key)
            .arg(&last)
            .query_async::<()>(&mut state.redis.conn.clone())
            .await?;
        Ok(full)
    }

    async fn send(&self, state: &AppState, batch: &EdgeRevocations) -> anyhow::Result<()> {
        let body = serde_json::to_vec(batch)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let forward = rushgate_core::attest::forward(
            &state.keys,
            "POST",
            EDGE_REVOCATIONS_PATH,
            &body,
            None,
            now,
            rand::random(),
        );
        let response = self
            .http
            .post(format!("{}{EDGE_REVOCATIONS_PATH}", self.edge_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(header::FORWARD, forward)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the edge answered {} to revocations",
            response.status()
        );
        Ok(())
    }

    /// Takes or renews the lease; whether this process holds it.
    async fn hold_lease(&self, state: &AppState) -> redis::RedisResult<bool> {
        let key = format!("{}:relay", state.redis.keys.revoked_sessions());
        let ms = LEASE.as_millis() as u64;
        let mut conn = state.redis.conn.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&self.holder)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await?;
        if taken.is_some() {
            return Ok(true);
        }
        let holder: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        if holder.as_deref() != Some(self.holder.as_str()) {
            return Ok(false);
        }
        redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(ms)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(true)
    }
}
