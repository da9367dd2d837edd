//! Redis: one handle over a single node or a Redis Cluster — the same
//! commands, scripts and pipelines either way — with bounded timeouts, and the
//! key namespace every key goes through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::sale::keys::{Bucket, BucketKeys};

/// A handle on Redis: cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Redis {
    pub conn: RedisConn,
    pub keys: KeySpace,
}

/// A connection to a single node (self-reconnecting) or to a cluster (routing
/// each command to the master of its keys' slot, following failovers).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConn),
}

/// Consecutive failed commands (timeouts, lost connections, with no success
/// in between) after which the cluster connection counts as stuck.
const STUCK_AFTER: u32 = 50;
/// Least time between two replacements of the cluster connection.
const REPLACE_EVERY: Duration = Duration::from_secs(1);

/// A Redis Cluster connection that replaces itself when it stops answering.
/// After a master is killed, the cluster client's connection has been seen to
/// time out every command for minutes once the cluster had recovered; a node
/// failing over makes only the commands for its slots fail, and any success
/// elsewhere resets the count, so only a connection that fails everything is
/// replaced (by a fresh one from the same client, which reads the slot map
/// anew).
#[derive(Clone)]
pub struct ClusterConn(Arc<ClusterInner>);

struct ClusterInner {
    client: ClusterClient,
    conn: RwLock<ClusterConnection>,
    failures: AtomicU32,
    replaced_at: Mutex<Option<Instant>>,
}

impl ClusterConn {
    async fn connect(client: ClusterClient) -> redis::RedisResult<Self> {
        let conn = client.get_async_connection().await?;
        Ok(Self(Arc::new(ClusterInner {
            client,
            conn: RwLock::new(conn),
            failures: AtomicU32::new(0),
            replaced_at: Mutex::new(None),
        })))
    }

    fn current(&self) -> ClusterConnection {
        self.0
            .conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn observe<T>(&self, result: &redis::RedisResult<T>) {
        let failed = match result {
            Ok(_) => false,
            Err(e) => e.is_timeout() || e.is_connection_dropped() || e.is_io_error(),
        };
        if !failed {
            self.0.failures.store(0, Ordering::Relaxed);
            return;
        }
        if self.0.failures.fetch_add(1, Ordering::Relaxed) + 1 < STUCK_AFTER {
            return;
        }
        {
            let mut at = self
                .0
                .replaced_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if at.is_some_and(|at| at.elapsed() < REPLACE_EVERY) {
                return;
            }
            *at = Some(Instant::now());
        }
        self.0.failures.store(0, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            tracing::warn!("the Redis Cluster connection fails every command: opening a new one");
            match this.0.client.get_async_connection().await {
                Ok(conn) => {
                    *this.0.conn.write().unwrap_or_else(PoisonError::into_inner) = conn;
                }
                Err(e) => tracing::warn!(error = %e, "reconnecting to the Redis Cluster failed"),
            }
        });
    }

    async fn route_command(&self, cmd: Cmd, routing: RoutingInfo) -> redis::RedisResult<Value> {
        let result = self.current().route_command(cmd, routing).await;
        self.observe(&result);
        result
    }
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.current().req_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.current().req_packed_commands(cmd, offset, count).await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisConn {
    /// Runs `cmd` on the master that owns `key`'s slot, whatever keys `cmd`
    /// names (or none, as `WAIT`); on a single node, just runs it.
    pub async fn on_node_of<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        cmd: Cmd,
    ) -> redis::RedisResult<T> {
        match self {
            Self::Single(conn) => cmd.query_async(conn).await,
            Self::Cluster(conn) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                Ok(redis::from_redis_value(
                    conn.route_command(cmd, routing).await?,
                )?)
            }
        }
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("keys", &self.keys).finish()
    }
}

impl Redis {
    /// Connects with `timeout` bounding every command and connection attempt, so a
    /// dead or slow Redis turns into an error instead of a hang. With `cluster`,
    /// `url` may list several seed nodes separated by commas.
    pub async fn connect(
        url: &str,
        cluster: bool,
        prefix: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let conn = if cluster {
            let seeds: Vec<&str> = url.split(',').map(str::trim).collect();
            let client = ClusterClient::builder(seeds)
                .response_timeout(timeout)
                .connection_timeout(timeout)
                .retries(2)
                .min_retry_wait(20)
                .max_retry_wait(200)
                .build()
                .context("parsing RUSHGATE_REDIS_URL (cluster seed nodes)")?;
            RedisConn::Cluster(
                ClusterConn::connect(client)
                    .await
                    .context("connecting to the Redis Cluster")?,
            )
        } else {
            let client = redis::Client::open(url).context("parsing RUSHGATE_REDIS_URL")?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(timeout))
                .set_connection_timeout(Some(timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(200));
            RedisConn::Single(
                ConnectionManager::new_with_config(client, config)
                    .await
                    .context("connecting to Redis")?,
            )
        };
        Ok(Self {
            conn,
            keys: KeySpace::new(prefix),
        })
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await
    }
}

/// Builds every Redis key under the deployment's prefix. The keys of one event
/// bucket are built by [`KeySpace::bucket`] (`sale::keys`); the rest are here:
///
/// | key | type | holds |
/// |---|---|---|
/// | `P:streams` | set | `<event>:<bucket>:<buckets>` of every bucket with a stream |
/// | `P:{e<event>}:funnel` | hash | funnel counters flushed by origins and edges |
/// | `P:{e<event>}:visitors` | HyperLogLog | visitor ids seen on the event's page |
/// | `P:{e<event>}:ledger` | string | the last ledger check of the event's stock (JSON) |
/// | `P:sessions:revoked` | stream | session ids revoked by logging out, until they expire |
#[derive(Debug, Clone)]
pub struct KeySpace {
    prefix: String,
    tags: Arc<RwLock<HashMap<Bucket, Arc<str>>>>,
}

impl KeySpace {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            tags: Arc::default(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of one event bucket, under its hash tag (found once per process).
    pub fn bucket(&self, bucket: Bucket) -> BucketKeys {
        let known = self
            .tags
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&bucket)
            .cloned();
        let tag = known.unwrap_or_else(|| {
            let tag: Arc<str> =
                rushgate_core::bucket::tag(bucket.event_id, bucket.bucket, bucket.buckets).into();
            self.tags
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(bucket, tag.clone());
            tag
        });
        BucketKeys::new(&self.prefix, &tag)
    }

    /// The registry of event buckets that have an order stream.
    pub fn streams(&self) -> String {
        format!("{}:streams", self.prefix)
    }

    /// Funnel counters of an event, flushed in batches.
    pub fn funnel(&self, event_id: i64) -> String {
        format!("{}:{{e{event_id}}}:funnel", self.prefix)
    }

    /// HyperLogLog of an event's visitors (the same slot as its funnel).
    pub fn visitors(&self, event_id: i64) -> String {
        format!("{}:{{e{event_id}}}:visitors", self.prefix)
    }

    /// The last reconciliation of an event's stock (`sale::ledger`).
    pub fn ledger(&self, event_id: i64) -> String {
        format!("{}:{{e{event_id}}}:ledger", self.prefix)
    }

    /// Stream of revoked session ids (logouts), followed by every origin.
    pub fn revoked_sessions(&self) -> String {
        format!("{}:sessions:revoked", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_share_a_tag_and_bucket_keys_theirs() {
        let keys = KeySpace::new("rg");
        assert_eq!(keys.funnel(42), "rg:{e42}:funnel");
        assert_eq!(keys.visitors(42), "rg:{e42}:visitors");
        let one = Bucket {
            event_id: 42,
            bucket: 0,
            buckets: 1,
        };
        assert_eq!(keys.bucket(one).stock(7), "rg:{e42:b0}:stock:t7");
        let spread = Bucket {
            event_id: 42,
            bucket: 3,
            buckets: 6,
        };
        let tag = rushgate_core::bucket::tag(42, 3, 6);
        assert_eq!(keys.bucket(spread).orders(), format!("rg:{{{tag}}}:orders"));
    }
}
