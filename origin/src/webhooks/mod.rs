//! Webhooks: every change of an order is recorded in the `order_events` outbox
//! in the same transaction as the change (a trigger on `orders`, migration
//! 0007), which also queues a delivery per endpoint that wants it. The delivery
//! worker ([`deliver`]) sends them at each endpoint's pace, signed, in order per
//! order, retrying with backoff and dead-lettering after the configured tries;
//! the console ([`console`]) manages an event's own endpoints and dead letters.

pub mod console;
pub mod deliver;
pub mod destination;
pub mod repo;

use std::time::Duration;

use clap::Args;
use rushgate_core::webhook::{self, EventType};
use sqlx::PgPool;

use crate::config::Secret;

/// The deployment's endpoints and how deliveries are paced and retried.
#[derive(Debug, Clone, Args)]
pub struct WebhookConfig {
    /// Endpoints that get every order event of every sale, comma-separated.
    #[arg(
        long,
        env = "RUSHGATE_WEBHOOK_URLS",
        value_delimiter = ',',
        default_value = "",
        hide_default_value = true
    )]
    pub webhook_urls: Vec<String>,
    /// The secret that signs deliveries to those endpoints (required with them).
    #[arg(
        long,
        env = "RUSHGATE_WEBHOOK_SECRET",
        default_value = "",
        hide_default_value = true
    )]
    pub webhook_secret: Secret,
    /// The event types those endpoints get, comma-separated (default: all).
    #[arg(
        long,
        env = "RUSHGATE_WEBHOOK_TYPES",
        value_delimiter = ',',
        default_value = "",
        hide_default_value = true
    )]
    pub webhook_types: Vec<String>,
    /// Deliveries a second to each of those endpoints, at most.
    #[arg(long, env = "RUSHGATE_WEBHOOK_RATE_PER_S", default_value_t = webhook::DEFAULT_RATE_PER_S)]
    pub webhook_rate_per_s: u32,
    /// Deliveries at once to one of those endpoints after a quiet spell
    /// (default: a tenth of the rate).
    #[arg(long, env = "RUSHGATE_WEBHOOK_BURST")]
    pub webhook_burst: Option<u32>,
    /// How long a delivery may take before it counts as failed, ms.
    #[arg(long, env = "RUSHGATE_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// Tries before a delivery is dead-lettered.
    #[arg(long, env = "RUSHGATE_WEBHOOK_MAX_ATTEMPTS", default_value_t = 12)]
    pub webhook_max_attempts: u32,
    /// Wait after a first failure, ms; it doubles with each further one.
    #[arg(long, env = "RUSHGATE_WEBHOOK_BACKOFF_MS", default_value_t = 1_000)]
    pub webhook_backoff_ms: u64,
    /// The longest wait between tries, ms.
    #[arg(
        long,
        env = "RUSHGATE_WEBHOOK_BACKOFF_MAX_MS",
        default_value_t = 600_000
    )]
    pub webhook_backoff_max_ms: u64,
    /// Most deliveries one process has in flight at once.
    #[arg(long, env = "RUSHGATE_WEBHOOK_IN_FLIGHT", default_value_t = 64)]
    pub webhook_in_flight: usize,
    /// Days a delivered delivery's row is kept (0: for ever); waiting and
    /// dead ones are always kept, and so are the order events themselves.
    #[arg(long, env = "RUSHGATE_WEBHOOK_KEEP_DAYS", default_value_t = 30)]
    pub webhook_keep_days: u32,
    /// Let endpoints be private addresses (loopback, private networks,
    /// link-local): for receivers on the deployment's own network, such as
    /// the local demo's. Off in production.
    #[arg(long, env = "RUSHGATE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("RUSHGATE_WEBHOOK_SECRET is required with RUSHGATE_WEBHOOK_URLS")]
    MissingSecret,
    #[error("RUSHGATE_WEBHOOK_URLS: {0}")]
    BadUrl(String),
    #[error("RUSHGATE_WEBHOOK_TYPES: no such event type {0:?}")]
    BadType(String),
    #[error("RUSHGATE_WEBHOOK_RATE_PER_S must be between 1 and {max}", max = webhook::MAX_RATE_PER_S)]
    BadRate,
}

impl WebhookConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms)
    }

    fn urls(&self) -> Vec<&str> {
        self.webhook_urls
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// The types the deployment's endpoints get.
    pub fn types(&self) -> Result<Vec<EventType>, ConfigError> {
        let named: Vec<&str> = self
            .webhook_types
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if named.is_empty() {
            return Ok(EventType::ALL.to_vec());
        }
        named
            .into_iter()
            .map(|t| EventType::parse(t).ok_or_else(|| ConfigError::BadType(t.to_owned())))
            .collect()
    }

    /// Checks the settings; the deployment's endpoints with their pace.
    pub fn endpoints(&self) -> Result<Vec<repo::DeploymentEndpoint>, ConfigError> {
        let urls = self.urls();
        if !urls.is_empty() && self.webhook_secret.0.is_empty() {
            return Err(ConfigError::MissingSecret);
        }
        if !(1..=webhook::MAX_RATE_PER_S).contains(&self.webhook_rate_per_s) {
            return Err(ConfigError::BadRate);
        }
        let types = self.types()?;
        let burst = self
            .webhook_burst
            .unwrap_or_else(|| webhook::default_burst(self.webhook_rate_per_s))
            .max(1);
        urls.into_iter()
            .map(|url| {
                destination::check_url(url, self.webhook_allow_private).map_err(|e| {
                    ConfigError::BadUrl(format!("{}: {e}", destination::redacted(url)))
                })?;
                Ok(repo::DeploymentEndpoint {
                    url: url.to_owned(),
                    types: types.clone(),
                    rate_per_s: self.webhook_rate_per_s,
                    burst,
                })
            })
            .collect()
    }
}

/// Writes the deployment's endpoints to PostgreSQL (from then on their
/// events are queued for them) and disables those no longer configured.
pub async fn sync_deployment(db: &PgPool, config: &WebhookConfig) -> anyhow::Result<()> {
    let endpoints = config.endpoints()?;
    repo::sync_deployment(db, &endpoints).await?;
    for e in &endpoints {
        let url = destination::redacted(&e.url);
        tracing::info!(%url, rate_per_s = e.rate_per_s, "webhook endpoint");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        config: WebhookConfig,
    }

    fn parse(args: &[&str]) -> WebhookConfig {
        let mut all = vec!["probe"];
        all.extend_from_slice(args);
        Probe::try_parse_from(all).unwrap().config
    }

    #[test]
    fn none_configured_by_default() {
        let config = parse(&[]);
        assert!(config.endpoints().unwrap().is_empty());
        assert_eq!(config.types().unwrap(), EventType::ALL.to_vec());
        assert_eq!(config.webhook_rate_per_s, 50);
    }

    #[test]
    fn endpoints_need_a_secret_and_good_urls_and_types() {
        let urls = "http://127.0.0.1:9000/hook, https://example.com/h";
        assert!(matches!(
            parse(&["--webhook-urls", urls]).endpoints(),
            Err(ConfigError::MissingSecret)
        ));
        let secret = ["--webhook-secret", "s3cret-s3cret"];
        let public_only = parse(&["--webhook-urls", urls, secret[0], secret[1]]);
        assert!(
            matches!(public_only.endpoints(), Err(ConfigError::BadUrl(e)) if e.contains("public")),
            "loopback needs RUSHGATE_WEBHOOK_ALLOW_PRIVATE"
        );
        let good = parse(&[
            "--webhook-urls",
            urls,
            secret[0],
            secret[1],
            "--webhook-allow-private",
            "true",
        ]);
        let endpoints = good.endpoints().unwrap();
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[1].url, "https://example.com/h");
        assert_eq!(endpoints[0].burst, 5);
        for bad in ["ftp://x/y", "not a url", "http://user:pw@host/"] {
            assert!(
                matches!(
                    parse(&["--webhook-urls", bad, "--webhook-secret", "x"]).endpoints(),
                    Err(ConfigError::BadUrl(_))
                ),
                "{bad}"
            );
        }
        let typed = parse(&[
            "--webhook-types",
            "order.paid,order.expired",
            "--webhook-urls",
            "http://h.example/",
            "--webhook-secret",
            "x",
        ]);
        assert_eq!(
            typed.endpoints().unwrap()[0].types,
            vec![EventType::Paid, EventType::Expired]
        );
        assert!(matches!(
            parse(&["--webhook-types", "order.shipped"]).endpoints(),
            Err(ConfigError::BadType(_))
        ));
        assert!(matches!(
            parse(&["--webhook-rate-per-s", "0"]).endpoints(),
            Err(ConfigError::BadRate)
        ));
    }
}
