//! Waiting for replicas. Redis replicates asynchronously: a reservation a
//! master answered and then lost in a crash, before its replica had it,
//! vanishes on failover — its stock reappears (an oversell) and its stream entry
//! with it (a 202 without an order). So whatever a promise rests on is confirmed
//! on `RUSHGATE_REDIS_REPLICAS` replicas first: a reservation before its 202, a
//! stream entry before its order row, a release before its outbox row is done,
//! each half of a transfer before the next.
//!
//! `WAIT` holds the connection it runs on, so it runs on a connection of its
//! own, and once for many writes (group commit): a bucket's barrier task takes
//! every confirmation asked for since its last round, writes the bucket's
//! barrier key and `WAIT`s on that node. Replication is one ordered stream per
//! master, so a replica that acknowledged the barrier write holds every write
//! that master did before it — including the scripts that other connections ran.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::sale::keys::BucketKeys;
use crate::store::redis::RedisConn;

/// Confirms writes on replicas; with none required, confirms at once.
#[derive(Clone)]
pub struct Replicas(Option<Arc<Barriers>>);

struct Barriers {
    conn: RedisConn,
    required: u32,
    timeout: Duration,
    /// Bucket (its keys' base) → its barrier task.
    tasks: Mutex<HashMap<String, mpsc::UnboundedSender<oneshot::Sender<bool>>>>,
}

/// The replicas did not confirm in time: the write is on the master only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the write was not confirmed by enough Redis replicas in time")]
pub struct Unconfirmed;

impl Replicas {
    /// No confirmation: a single Redis without replicas, or tests.
    pub fn none() -> Self {
        Self(None)
    }

    /// Confirms on `required` replicas over `conn` (a connection of its own),
    /// waiting at most `timeout` each round.
    pub fn new(conn: RedisConn, required: u32, timeout: Duration) -> Self {
        if required == 0 {
            return Self::none();
        }
        Self(Some(Arc::new(Barriers {
            conn,
            required,
            timeout,
            tasks: Mutex::default(),
        })))
    }

    /// Returns once every write to `bucket`'s node made before this call is on
    /// the required replicas.
    pub async fn confirm(&self, bucket: &BucketKeys) -> Result<(), Unconfirmed> {
        let Some(barriers) = &self.0 else {
            return Ok(());
        };
        let (done, confirmed) = oneshot::channel();
        barriers.task(bucket).send(done).map_err(|_| Unconfirmed)?;
        match confirmed.await {
            Ok(true) => Ok(()),
            _ => Err(Unconfirmed),
        }
    }
}

impl Barriers {
    fn task(self: &Arc<Self>, bucket: &BucketKeys) -> mpsc::UnboundedSender<oneshot::Sender<bool>> {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = tasks.get(bucket.base())
            && !task.is_closed()
        {
            return task.clone();
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(self.clone().rounds(bucket.barrier(), receiver));
        tasks.insert(bucket.base().to_owned(), sender.clone());
        sender
    }

    /// Each round answers everyone who asked before it began.
    async fn rounds(
        self: Arc<Self>,
        barrier: String,
        mut asked: mpsc::UnboundedReceiver<oneshot::Sender<bool>>,
    ) {
        while let Some(first) = asked.recv().await {
            let mut waiting = vec![first];
            while let Ok(next) = asked.try_recv() {
                waiting.push(next);
            }
            let confirmed = self.round(&barrier).await;
            if !confirmed {
                tracing::warn!(key = %barrier, required = self.required, "Redis replicas did not confirm");
            }
            for done in waiting {
                let _ = done.send(confirmed);
            }
        }
    }

    /// Writes the barrier key, then `WAIT`s on its node.
    async fn round(&self, barrier: &str) -> bool {
        let mut conn = self.conn.clone();
        let written: redis::RedisResult<()> = redis::cmd("SET")
            .arg(barrier)
            .arg(1)
            .query_async(&mut conn)
            .await;
        if written.is_err() {
            return false;
        }
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.required).arg(self.timeout.as_millis() as u64);
        let acknowledged: redis::RedisResult<u32> = conn.on_node_of(barrier, wait).await;
        acknowledged.is_ok_and(|n| n >= self.required)
    }
}
