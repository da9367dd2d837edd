//! The edge's configuration: wrangler `[vars]` and secrets, read once per isolate
//! into a typed struct.

use std::cell::RefCell;
use std::rc::Rc;

use rushgate_core::origins::Origins;
use rushgate_core::{ErrorCode, Keyring};
use worker::Env;

use crate::error::EdgeError;

#[derive(Debug)]
pub struct Config {
    /// The origins requests are spread over (`ORIGIN_URLS`, comma-separated;
    /// else `ORIGIN_URL`), with which of them failed lately.
    pub origins: RefCell<Origins>,
    pub keys: Keyring,
    /// How long a cached event answer is served as fresh, ms.
    pub event_ttl_ms: u64,
    /// How much longer a stale one is served while it is refreshed, ms.
    pub event_swr_ms: u64,
    /// How many Durable Objects share the per-user dedup state.
    pub dedup_shards: u32,
    /// How often funnel counters are sent on, ms.
    pub report_every_ms: u64,
    /// How many Durable Objects sum the isolates' funnel counts for the origin.
    pub tally_shards: u32,
    /// Lifetime of a purchase URL issued here, s (as the origin's).
    pub purchase_url_ttl_s: u32,
    /// Whether `CF-Connecting-IP` is the client's address, set by the
    /// platform in front (Cloudflare) rather than by the client
    /// (`TRUST_CF_CONNECTING_IP`).
    pub trust_client_address: bool,
}

impl Config {
    /// The client's address, when the platform in front sets it.
    pub fn client_address(&self, headers: &worker::Headers) -> Option<String> {
        if !self.trust_client_address {
            return None;
        }
        headers.get("cf-connecting-ip").ok().flatten()
    }
}

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

fn var(env: &Env, name: &str, default: &str) -> String {
    env.var(name)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| default.to_owned())
}

fn number(env: &Env, name: &str, default: u64) -> Result<u64, EdgeError> {
    var(env, name, &default.to_string())
        .parse()
        .map_err(|_| EdgeError::new(ErrorCode::Internal, format!("{name} must be a number")))
}

fn origins(env: &Env) -> Result<Origins, EdgeError> {
    let list = env
        .var("ORIGIN_URLS")
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| var(env, "ORIGIN_URL", "http://127.0.0.1:8080"));
    Origins::parse(&list)
        .ok_or_else(|| EdgeError::new(ErrorCode::Internal, "ORIGIN_URLS lists no origin"))
}

/// The configuration, built on first use in this isolate.
pub fn load(env: &Env) -> Result<Rc<Config>, EdgeError> {
    if let Some(config) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(config);
    }
    let key = env
        .secret("SIGNING_KEY")
        .map(|s| s.to_string())
        .map_err(|_| EdgeError::new(ErrorCode::Internal, "SIGNING_KEY is not set"))?;
    let previous = env
        .secret("SIGNING_KEY_PREVIOUS")
        .ok()
        .map(|s| s.to_string());
    let keys = Keyring::from_hex(&key, previous.as_deref().filter(|p| !p.is_empty()))
        .map_err(|e| EdgeError::new(ErrorCode::Internal, format!("SIGNING_KEY: {e}")))?;
    let config = Rc::new(Config {
        origins: RefCell::new(origins(env)?),
        keys,
        event_ttl_ms: number(env, "EVENT_CACHE_TTL_S", 2)? * 1000,
        event_swr_ms: number(env, "EVENT_CACHE_SWR_S", 30)? * 1000,
        dedup_shards: number(env, "DEDUP_SHARDS", 64)?.clamp(1, 1024) as u32,
        report_every_ms: number(env, "REPORT_EVERY_MS", 1000)?,
        tally_shards: number(env, "TALLY_SHARDS", 4)?.clamp(1, 256) as u32,
        purchase_url_ttl_s: number(env, "PURCHASE_URL_TTL_S", 300)?.min(u64::from(u32::MAX)) as u32,
        trust_client_address: var(env, "TRUST_CF_CONNECTING_IP", "false") == "true",
    });
    CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
    Ok(config)
}
