//! Typed configuration, read once at startup from `RUSHGATE_*` environment
//! variables (or the matching command-line flags), with defaults that work on one
//! machine. Nothing else in the origin reads the environment.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};
use rushgate_core::Keyring;

use crate::worker::WorkerConfig;

/// Where the origin runs: production refuses to start without a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Connections to Redis and PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// Redis connection URL; with `RUSHGATE_REDIS_CLUSTER`, seed nodes of the
    /// cluster separated by commas.
    #[arg(
        long,
        env = "RUSHGATE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Redis is a Redis Cluster: use the cluster client.
    #[arg(long, env = "RUSHGATE_REDIS_CLUSTER", default_value_t = false, action = clap::ArgAction::Set)]
    pub redis_cluster: bool,
    /// Key namespace, so several deployments or test runs can share one Redis.
    #[arg(long, env = "RUSHGATE_REDIS_PREFIX", default_value = "rg")]
    pub redis_prefix: String,
    /// Replicas that must confirm a write before it counts (a reservation before
    /// its 202, a stream entry before its order row, a release before its
    /// outbox row is done): 0 without replicas, 1 on a Redis Cluster with a
    /// replica per master.
    #[arg(long, env = "RUSHGATE_REDIS_REPLICAS", default_value_t = 0)]
    pub redis_replicas: u32,
    /// How long to wait for those replicas, ms; past it the request answers
    /// 503 and the write stays on the master (retrying finds it).
    #[arg(long, env = "RUSHGATE_REDIS_REPLICA_WAIT_MS", default_value_t = 250)]
    pub redis_replica_wait_ms: u64,
    /// Upper bound on one Redis command, in milliseconds; past it the request
    /// answers 503 instead of hanging.
    #[arg(long, env = "RUSHGATE_REDIS_TIMEOUT_MS", default_value_t = 500)]
    pub redis_timeout_ms: u64,
    /// PostgreSQL URL; the database is created if missing and migrated at start.
    #[arg(
        long,
        env = "RUSHGATE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/rushgate"
    )]
    pub database_url: String,
    /// Maximum PostgreSQL connections per process.
    #[arg(long, env = "RUSHGATE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
}

impl StoreConfig {
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// Confirmation on replicas as configured, over a connection of its own.
    pub async fn replicas(&self) -> anyhow::Result<crate::sale::Replicas> {
        if self.redis_replicas == 0 {
            return Ok(crate::sale::Replicas::none());
        }
        let wait = Duration::from_millis(self.redis_replica_wait_ms);
        let redis = crate::store::redis::Redis::connect(
            &self.redis_url,
            self.redis_cluster,
            &self.redis_prefix,
            self.redis_timeout() + wait,
        )
        .await?;
        Ok(crate::sale::Replicas::new(
            redis.conn,
            self.redis_replicas,
            wait,
        ))
    }

    /// Connects to Redis (a single node or the cluster) as configured.
    pub async fn redis(&self) -> anyhow::Result<crate::store::redis::Redis> {
        crate::store::redis::Redis::connect(
            &self.redis_url,
            self.redis_cluster,
            &self.redis_prefix,
            self.redis_timeout(),
        )
        .await
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "RUSHGATE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub app: AppConfig,
    #[command(flatten)]
    pub worker: WorkerConfig,
}

/// Settings of the HTTP application itself (also used by tests).
#[derive(Debug, Clone, Args)]
pub struct AppConfig {
    /// development or production.
    #[arg(long, env = "RUSHGATE_ENV", value_enum, default_value = "development")]
    pub environment: Environment,
    /// HMAC key for all tokens: at least 32 random bytes, hex. Shared with the edge.
    #[arg(
        long,
        env = "RUSHGATE_SIGNING_KEY",
        default_value = "",
        hide_default_value = true
    )]
    pub signing_key: Secret,
    /// The key being rotated out: tokens it signed still verify.
    #[arg(
        long,
        env = "RUSHGATE_SIGNING_KEY_PREVIOUS",
        default_value = "",
        hide_default_value = true
    )]
    pub signing_key_previous: Secret,
    /// Refuse `/buy/` requests that lack a valid `X-Rushgate-Admit` from the edge.
    #[arg(long, env = "RUSHGATE_REQUIRE_EDGE_ADMISSION", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_edge_admission: bool,
    /// Lifetime of a login session, in seconds.
    #[arg(long, env = "RUSHGATE_SESSION_TTL_S", default_value_t = 12 * 3600)]
    pub session_ttl_s: u32,
    /// Mark the session cookie `Secure`, sent over HTTPS only (default: true in
    /// production, false in development).
    #[arg(long, env = "RUSHGATE_COOKIE_SECURE", action = clap::ArgAction::Set)]
    pub cookie_secure: Option<bool>,
    /// Lifetime of a purchase URL, in seconds.
    #[arg(long, env = "RUSHGATE_PURCHASE_URL_TTL_S", default_value_t = 300)]
    pub purchase_url_ttl_s: u32,
    /// How old a cached event may get before it is refreshed in the background, ms.
    #[arg(long, env = "RUSHGATE_EVENT_CACHE_REFRESH_MS", default_value_t = 1000)]
    pub event_cache_refresh_ms: u64,
    /// How long an unknown event id is remembered as unknown, ms.
    #[arg(long, env = "RUSHGATE_EVENT_CACHE_NEGATIVE_MS", default_value_t = 2000)]
    pub event_cache_negative_ms: u64,
    /// Sustained `/buy` requests per second this process sends to Redis; beyond
    /// it (and the burst) requests answer 503 `overloaded`.
    #[arg(long, env = "RUSHGATE_BUY_RATE_PER_S", default_value_t = 20_000)]
    pub buy_rate_per_s: u32,
    /// Burst allowance of the `/buy` token bucket.
    #[arg(long, env = "RUSHGATE_BUY_BURST", default_value_t = 2_000)]
    pub buy_burst: u32,
    /// Most `/buy` requests this process works on at once; one more is answered
    /// 503 `overloaded` at once rather than queued. The limit in force adapts
    /// below this (see `RUSHGATE_BUY_TARGET_MS`).
    #[arg(long, env = "RUSHGATE_BUY_MAX_IN_FLIGHT", default_value_t = 128)]
    pub buy_max_in_flight: usize,
    /// Mean time of a purchase above which the process counts as short of
    /// CPU and lowers its in-flight limit (and raises it back below), ms; 0
    /// keeps the limit fixed at `RUSHGATE_BUY_MAX_IN_FLIGHT`.
    #[arg(long, env = "RUSHGATE_BUY_TARGET_MS", default_value_t = 5)]
    pub buy_target_ms: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "RUSHGATE_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers, and then its
    /// body, ms: past it the connection is dropped (headers) or answered 408
    /// (body), so half-sent requests do not hold connections open.
    #[arg(long, env = "RUSHGATE_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Whether the console may add webhook endpoints at private addresses:
    /// `RUSHGATE_WEBHOOK_ALLOW_PRIVATE`, read with the webhook settings and
    /// copied here by `serve`.
    #[arg(skip)]
    pub webhook_allow_private: bool,
    /// The edge's public base URL (`https://tickets.example.com`): sessions
    /// ended here (logouts, account changes) are relayed to it, so that the
    /// edge refuses them too. Unset: no edge, or one that hears only of the
    /// logouts it passes on.
    #[arg(long, env = "RUSHGATE_EDGE_URL")]
    pub edge_url: Option<String>,
    #[command(flatten)]
    pub limits: crate::auth::limits::LimitsConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("RUSHGATE_SIGNING_KEY is required in production")]
    MissingSigningKey,
    #[error("RUSHGATE_SIGNING_KEY: {0}")]
    BadSigningKey(rushgate_core::token::KeyError),
}

impl AppConfig {
    /// Builds the keyring. Outside production an unset key is replaced by a fresh
    /// random one, returned so the caller can print it for the edge's `.dev.vars`.
    pub fn keyring(&self) -> Result<(Keyring, Option<String>), ConfigError> {
        let previous = (!self.signing_key_previous.0.is_empty())
            .then_some(self.signing_key_previous.0.as_str());
        if self.signing_key.0.is_empty() {
            if self.environment == Environment::Production {
                return Err(ConfigError::MissingSigningKey);
            }
            let generated = hex::encode(rand::random::<[u8; 32]>());
            let keys =
                Keyring::from_hex(&generated, previous).map_err(ConfigError::BadSigningKey)?;
            return Ok((keys, Some(generated)));
        }
        let keys =
            Keyring::from_hex(&self.signing_key.0, previous).map_err(ConfigError::BadSigningKey)?;
        Ok((keys, None))
    }

    /// Whether the session cookie is marked `Secure`: as set, else in production.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure
            .unwrap_or(self.environment == Environment::Production)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    pub fn buy_target(&self) -> Duration {
        Duration::from_millis(self.buy_target_ms)
    }

    pub fn event_cache_refresh(&self) -> Duration {
        Duration::from_millis(self.event_cache_refresh_ms)
    }

    pub fn event_cache_negative(&self) -> Duration {
        Duration::from_millis(self.event_cache_negative_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn defaults_work_on_one_machine() {
        let probe = Probe::try_parse_from(["probe"]).unwrap();
        let config = probe.config;
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.store.redis_url, "redis://127.0.0.1:6379");
        assert!(config.app.require_edge_admission);
        assert!(!config.app.cookie_secure(), "plain HTTP on one machine");
        assert_eq!(format!("{:?}", config.app.signing_key), "<unset>");
        let (_, generated) = config.app.keyring().unwrap();
        assert_eq!(generated.map(|k| k.len()), Some(64));
    }

    #[test]
    fn production_needs_a_key_and_secrets_stay_hidden() {
        let probe = Probe::try_parse_from(["probe", "--environment", "production"]).unwrap();
        assert!(
            probe.config.app.cookie_secure(),
            "production cookies are Secure"
        );
        let plain = [
            "probe",
            "--environment",
            "production",
            "--cookie-secure",
            "false",
        ];
        assert!(
            !Probe::try_parse_from(plain)
                .unwrap()
                .config
                .app
                .cookie_secure()
        );
        assert!(matches!(
            probe.config.app.keyring(),
            Err(ConfigError::MissingSigningKey)
        ));
        let key = "ab".repeat(32);
        let probe = Probe::try_parse_from(["probe", "--signing-key", &key]).unwrap();
        assert!(!format!("{:?}", probe.config).contains(&key));
        assert!(probe.config.app.keyring().unwrap().1.is_none());
        let probe = Probe::try_parse_from(["probe", "--signing-key", "abc"]).unwrap();
        assert!(matches!(
            probe.config.app.keyring(),
            Err(ConfigError::BadSigningKey(_))
        ));
    }
}
