//! Test harness: an origin on a free port over a fresh PostgreSQL database (from
//! `#[sqlx::test]`) and a private Redis key prefix, plus helpers to make users,
//! events and requests, and to snapshot stored state.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser as _;
use reqwest::{Method, StatusCode};
use rushgate_core::Role;
use rushgate_core::token::SessionClaims;
use rushgate_origin::app::{self, AppState};
use rushgate_origin::config::AppConfig;
use rushgate_origin::sale::ledger::Ledger;
use rushgate_origin::sale::{Bucket, BucketKeys, Replicas};
use rushgate_origin::store::redis::Redis;
use rushgate_origin::worker::expiry::Sweeper;
use rushgate_origin::worker::orders::OrderWorker;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub const TEST_KEY: &str = "7d9c1f0e3a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d";

/// Redis for tests: `RUSHGATE_TEST_REDIS_URL` or the local default; a Redis
/// Cluster (seed nodes, comma-separated) with `RUSHGATE_TEST_REDIS_CLUSTER=true`.
pub fn redis_url() -> String {
    std::env::var("RUSHGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn redis_cluster() -> bool {
    std::env::var("RUSHGATE_TEST_REDIS_CLUSTER").is_ok_and(|v| v == "true")
}

#[derive(clap::Parser)]
struct ConfigProbe {
    #[command(flatten)]
    app: AppConfig,
}

/// The application config tests start from: defaults plus a fixed key and a short
/// cache refresh interval.
pub fn test_config() -> AppConfig {
    let mut config = ConfigProbe::parse_from(["test"]).app;
    config.signing_key = rushgate_origin::config::Secret(TEST_KEY.into());
    config.event_cache_refresh_ms = 100;
    config.event_cache_negative_ms = 60_000;
    // Tests reach the origin directly; admission tests turn this back on.
    config.require_edge_admission = false;
    // The test client shares the origin's runtime, which so always looks
    // saturated: keep the in-flight limit fixed (`overload` has its own tests).
    config.buy_target_ms = 0;
    // Webhook receivers of tests listen on loopback.
    config.webhook_allow_private = true;
    config
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub redis: Redis,
    pub state: AppState,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app(db: PgPool) -> TestApp {
    spawn_app_configured(db, test_config()).await
}

/// An origin over the shared test Redis (a single node or the cluster), under
/// a key prefix of its own.
pub async fn spawn_app_configured(db: PgPool, config: AppConfig) -> TestApp {
    let redis = Redis::connect(
        &redis_url(),
        redis_cluster(),
        &test_prefix(),
        Duration::from_millis(500),
    )
    .await
    .expect("connecting to test Redis");
    // On the cluster every promise waits for a replica, as in production.
    let replicas = if redis_cluster() {
        // WAIT holds its connection: the barrier gets one of its own.
        let own = Redis::connect(&redis_url(), true, "unused", Duration::from_secs(2))
            .await
            .expect("connecting to test Redis");
        Replicas::new(own.conn, 1, Duration::from_millis(1000))
    } else {
        Replicas::none()
    };
    start_replicated(db, config, redis, replicas).await
}

/// An origin over a Redis server of the test's own (a single node).
pub async fn spawn_app_with(db: PgPool, config: AppConfig, redis_url: &str) -> TestApp {
    let redis = Redis::connect(redis_url, false, &test_prefix(), Duration::from_millis(500))
        .await
        .expect("connecting to test Redis");
    start(db, config, redis).await
}

fn test_prefix() -> String {
    format!("test:{}", uuid::Uuid::new_v4().simple())
}

/// A second origin process over the same database and Redis keys, as another
/// replica of the same deployment.
pub async fn spawn_app_sharing(app: &TestApp) -> TestApp {
    start_replicated(
        app.db.clone(),
        app.state.config.clone(),
        app.redis.clone(),
        app.state.replicas.clone(),
    )
    .await
}

/// An origin over a Redis handle of the test's own making (e.g. other timeouts).
pub async fn start(db: PgPool, config: AppConfig, redis: Redis) -> TestApp {
    start_replicated(db, config, redis, Replicas::none()).await
}

/// An origin that confirms its writes with `replicas`.
pub async fn start_replicated(
    db: PgPool,
    config: AppConfig,
    redis: Redis,
    replicas: Replicas,
) -> TestApp {
    rushgate_origin::store::db::migrate(&db).await.unwrap();
    let (keys, _) = config.keyring().unwrap();
    let state = AppState::new(config, keys, db.clone(), redis.clone(), replicas);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(app::serve(listener, state.clone(), shutdown.clone()));
    TestApp {
        addr,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        db,
        redis,
        state,
        shutdown,
    }
}

/// What a request answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Asserts a SPEC error: this status, this code, and a message for people.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(self.code(), code, "{:?}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{:?}",
            self.body
        );
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        answer(req.send().await.expect("request failed")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    /// Sends raw bytes with a content type of choice.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        answer(req.send().await.expect("request failed")).await
    }

    /// A user with this role, inserted directly (no argon2 cost), and a session
    /// token for them.
    pub async fn user(&self, role: Role) -> (i64, String) {
        let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, role) VALUES ($1, 'x', $2) RETURNING id",
        )
        .bind(&name)
        .bind(role.as_str())
        .fetch_one(&self.db)
        .await
        .unwrap();
        (id, self.token_for(id, role))
    }

    pub fn token_for(&self, user_id: i64, role: Role) -> String {
        self.state.keys.sign(&SessionClaims {
            user_id,
            role,
            exp: OffsetDateTime::now_utc().unix_timestamp() + 3600,
            sid: rand::random(),
            generation: 0,
        })
    }

    /// Creates an event as `operator` and takes it through review to approved.
    pub async fn approved_event(&self, operator: &str, admin: &str, body: Value) -> Value {
        let created = self.post("/api/admin/events", Some(operator), body).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["id"].as_i64().unwrap();
        let submitted = self
            .post(
                &format!("/api/admin/events/{id}/submit"),
                Some(operator),
                json!({}),
            )
            .await;
        assert_eq!(submitted.status, 200, "{:?}", submitted.body);
        let approved = self
            .post(
                &format!("/api/admin/events/{id}/approve"),
                Some(admin),
                json!({}),
            )
            .await;
        assert_eq!(approved.status, 200, "{:?}", approved.body);
        approved.body
    }

    /// A purchase URL for `event_id`, asked as the holder of `token`.
    pub async fn purchase_url(&self, event_id: i64, token: &str) -> String {
        let answer = self
            .post(
                &format!("/api/events/{event_id}/purchase-url"),
                Some(token),
                json!({}),
            )
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body["url"].as_str().unwrap().to_owned()
    }

    pub async fn buy(&self, url: &str, token: &str, tier_id: i64, quantity: i64) -> Answer {
        self.post(
            url,
            Some(token),
            json!({"tier_id": tier_id, "quantity": quantity}),
        )
        .await
    }

    /// Bucket `bucket` of an event, as its bucket count places it.
    pub async fn bucket(&self, event_id: i64, bucket: u32) -> Bucket {
        let buckets: i32 = sqlx::query_scalar("SELECT buckets FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_one(&self.db)
            .await
            .unwrap();
        Bucket {
            event_id,
            bucket,
            buckets: buckets as u32,
        }
    }

    /// The Redis keys of bucket `bucket` of an event.
    pub async fn keys(&self, event_id: i64, bucket: u32) -> BucketKeys {
        self.redis.keys.bucket(self.bucket(event_id, bucket).await)
    }

    pub fn order_worker(&self, claim_idle: Duration) -> OrderWorker {
        OrderWorker::new(
            self.db.clone(),
            self.redis.clone(),
            self.state.replicas.clone(),
            rushgate_origin::worker::consumer_name(),
            claim_idle,
        )
    }

    /// Runs an order worker until the streams are empty.
    pub async fn drain_orders(&self) -> u64 {
        let worker = self.order_worker(Duration::from_secs(60));
        let mut written = 0;
        loop {
            let outcome = worker.run_once().await.unwrap();
            written += outcome.written;
            if outcome.read == 0 {
                return written;
            }
        }
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::new(
            self.db.clone(),
            self.redis.clone(),
            self.state.replicas.clone(),
        )
    }

    pub fn sweeper(&self) -> Sweeper {
        Sweeper::new(
            self.db.clone(),
            self.redis.clone(),
            self.state.replicas.clone(),
            Some(self.state.flags.clone()),
        )
    }

    /// Rows of the tables bad input must never change, as text.
    pub async fn db_snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        for table in [
            "users",
            "events",
            "tiers",
            "orders",
            "release_outbox",
            "order_events",
            "webhook_endpoints",
            "webhook_deliveries",
        ] {
            let text: Option<String> = sqlx::query_scalar(&format!(
                "SELECT string_agg(t::text, '\n' ORDER BY t::text) FROM {table} t"
            ))
            .fetch_one(&self.db)
            .await
            .unwrap();
            out.push(format!("{table}: {}", text.unwrap_or_default()));
        }
        out
    }

    /// Every key under this app's prefix with its value, sorted.
    pub async fn redis_snapshot(&self) -> Vec<String> {
        let mut conn = self.redis.conn.clone();
        let pattern = format!("{}:*", self.redis.keys.prefix());
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let value = match kind.as_str() {
                "string" => {
                    let v: Vec<u8> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    format!("{v:?}")
                }
                "hash" => {
                    let mut v: Vec<(String, String)> = redis::cmd("HGETALL")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "set" => {
                    let mut v: Vec<String> = redis::cmd("SMEMBERS")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "stream" => {
                    let v: redis::Value = redis::cmd("XRANGE")
                        .arg(&key)
                        .arg("-")
                        .arg("+")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    format!("{v:?}")
                }
                other => {
                    let v: Option<Vec<u8>> = redis::cmd("DUMP")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    format!("{other} {v:?}")
                }
            };
            out.push(format!("{key} = {value}"));
        }
        out
    }

    /// Both stores, for "nothing changed" assertions.
    pub async fn snapshot(&self) -> (Vec<String>, Vec<String>) {
        (self.db_snapshot().await, self.redis_snapshot().await)
    }

    /// Both stores without the counts of login tries (failed logins per
    /// account and address, `auth::limits`), which a wrong password adds to.
    pub async fn snapshot_but_tries(&self) -> (Vec<String>, Vec<String>) {
        let (db, mut redis) = self.snapshot().await;
        let prefix = self.redis.keys.prefix();
        redis.retain(|k| {
            !k.starts_with(&format!("{prefix}:{{la")) && !k.starts_with(&format!("{prefix}:{{lx"))
        });
        (db, redis)
    }
}

/// Polls `GET path` as `token` until `done` holds for its 200 body (30 s at most).
pub async fn until_answer(
    app: &TestApp,
    path: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    rushgate_client::until_some(Duration::from_secs(30), || async {
        let answer = app.get(path, Some(token)).await;
        (answer.status == 200 && done(&answer.body)).then_some(answer.body)
    })
    .await
}

/// A response read into an [`Answer`].
pub async fn answer_of(response: reqwest::Response) -> Answer {
    answer(response).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        headers,
        body,
    }
}

/// A valid event body with times relative to now (seconds).
pub fn event_body(opens_in: i64, closes_in: i64) -> Value {
    let now = OffsetDateTime::now_utc();
    let at = |s: i64| {
        (now + time::Duration::seconds(s))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    json!({
        "name": "Spring Tour",
        "venue": "Main Hall",
        "description": "A test sale",
        "visible_at": at(opens_in.min(0) - 60),
        "opens_at": at(opens_in),
        "closes_at": at(closes_in),
        "per_user_limit": 2,
        "tiers": [
            {"name": "Floor", "price_cents": 5000, "stock": 10},
            {"name": "Balcony", "price_cents": 3000, "stock": 5}
        ]
    })
}

pub use rushgate_client::eventually;
pub use rushgate_dev::redis::RedisServer;
