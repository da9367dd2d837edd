//! `DedupShard`, the Durable Object that owns a slice of the users (the edge
//! picks the shard by user hash): their dedup windows and spent retry tokens,
//! kept in memory — if the object is evicted a window may reopen early, which
//! costs the origin one request but never correctness, since the origin enforces
//! every limit itself — and their revoked sessions, kept in the object's
//! storage too, so a logout holds at every edge location and across evictions.
//! A `/buy` asks its shard once: the session check rides along with the gate.

use std::cell::RefCell;

use rushgate_core::dedup::{Gate, Shard, shard_of};
use worker::{
    DurableObject, Env, ListOptions, Request, Response, Result, State, Stub, durable_object,
};

use crate::config::Config;

/// Durable Object binding of the shards.
pub const BINDING: &str = "DEDUP";

/// Storage key prefix of revoked sessions (value: expiry, unix ms).
const REVOKED: &str = "revoked:";

/// The shard that owns `user_id`.
pub fn stub(env: &Env, config: &Config, user_id: i64) -> Result<Stub> {
    let shard = shard_of(user_id, config.dedup_shards);
    env.durable_object(BINDING)?
        .get_by_name(&format!("dedup-{shard}"))
}

/// What the worker asks a shard. Sent as the query string of a GET, so a gate
/// costs no request body or headers: `u=<user>&e=<event>&w=<window s>&t=<now
/// ms>&s=<session id hex>[&n=<retry nonce hex>&x=<retry expiry ms>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub user_id: i64,
    pub event_id: i64,
    pub window_s: u32,
    pub now_ms: i64,
    pub sid: [u8; 16],
    /// A verified retry token: its nonce and expiry (ms).
    pub retry: Option<([u8; 16], i64)>,
}

impl Ask {
    pub fn url(&self) -> String {
        let mut url = format!(
            "https://dedup.internal/gate?u={}&e={}&w={}&t={}&s={}",
            self.user_id,
            self.event_id,
            self.window_s,
            self.now_ms,
            hex::encode(self.sid)
        );
        if let Some((nonce, expires_ms)) = &self.retry {
            url.push_str(&format!("&n={}&x={expires_ms}", hex::encode(nonce)));
        }
        url
    }

    pub fn parse(url: &str) -> Option<Self> {
        let field = |name: &str| field(url, name);
        let retry = match (field("n"), field("x")) {
            (Some(nonce), Some(exp)) => Some((bytes16(nonce)?, exp.parse().ok()?)),
            _ => None,
        };
        Some(Self {
            user_id: field("u")?.parse().ok()?,
            event_id: field("e")?.parse().ok()?,
            window_s: field("w")?.parse().ok()?,
            now_ms: field("t")?.parse().ok()?,
            sid: bytes16(field("s")?)?,
            retry,
        })
    }
}

/// `/session?s=<sid hex>&t=<now ms>`: is the session revoked?
pub fn session_url(sid: &[u8; 16], now_ms: i64) -> String {
    format!(
        "https://dedup.internal/session?s={}&t={now_ms}",
        hex::encode(sid)
    )
}

/// `/revoke?s=<sid hex>&x=<expiry ms>`: the session ended at logout.
pub fn revoke_url(sid: &[u8; 16], expires_ms: i64) -> String {
    format!(
        "https://dedup.internal/revoke?s={}&x={expires_ms}",
        hex::encode(sid)
    )
}

fn field<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn bytes16(text: &str) -> Option<[u8; 16]> {
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

/// The shard's answer to a gate, as text: `pass`, `duplicate <retry after s>`,
/// `spent` or `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Gate(Gate),
    /// The session was ended by logging out.
    Revoked,
}

impl Answer {
    pub fn text(self) -> String {
        match self {
            Self::Gate(Gate::Pass) => "pass".into(),
            Self::Gate(Gate::Duplicate { retry_after_s }) => format!("duplicate {retry_after_s}"),
            Self::Gate(Gate::Spent) => "spent".into(),
            Self::Revoked => "revoked".into(),
        }
    }

    pub fn parse(text: &str) -> Self {
        match text.split_once(' ') {
            Some(("duplicate", after)) => Self::Gate(Gate::Duplicate {
                retry_after_s: after.parse().unwrap_or(1),
            }),
            _ if text == "pass" => Self::Gate(Gate::Pass),
            _ if text == "revoked" => Self::Revoked,
            _ => Self::Gate(Gate::Spent),
        }
    }
}

#[durable_object(fetch)]
pub struct DedupShard {
    state: State,
    shard: RefCell<Shard>,
    /// Whether the revoked sessions were read from storage yet.
    loaded: RefCell<bool>,
    asks: RefCell<u32>,
}

impl DedupShard {
    /// Reads the revoked sessions from storage on first use (the runtime holds
    /// other events back while storage is read).
    async fn load(&self) -> Result<()> {
        if *self.loaded.borrow() {
            return Ok(());
        }
        let stored = self
            .state
            .storage()
            .list_with_options(ListOptions::new().prefix(REVOKED))
            .await?;
        for entry in stored.entries() {
            let Ok(pair) = entry.map(|e| worker::js_sys::Array::from(&e)) else {
                continue;
            };
            let (key, value) = (pair.get(0).as_string(), pair.get(1).as_f64());
            if let (Some(sid), Some(until)) =
                (key.and_then(|k| bytes16(&k[REVOKED.len()..])), value)
            {
                self.shard.borrow_mut().revoke(sid, until as i64);
            }
        }
        *self.loaded.borrow_mut() = true;
        Ok(())
    }

    async fn gate(&self, ask: &Ask) -> Result<Answer> {
        let answer = {
            let mut shard = self.shard.borrow_mut();
            if shard.is_revoked(&ask.sid, ask.now_ms) {
                Answer::Revoked
            } else {
                Answer::Gate(match &ask.retry {
                    Some((nonce, expires_ms)) => {
                        shard.retry_attempt(*nonce, *expires_ms, ask.now_ms)
                    }
                    None => {
                        shard.first_attempt(ask.user_id, ask.event_id, ask.window_s, ask.now_ms)
                    }
                })
            }
        };
        let due = {
            let mut asks = self.asks.borrow_mut();
            *asks += 1;
            asks.is_multiple_of(1024)
        };
        if due {
            let forgotten = self.shard.borrow_mut().prune(ask.now_ms);
            let keys: Vec<String> = forgotten
                .iter()
                .map(|sid| format!("{REVOKED}{}", hex::encode(sid)))
                .collect();
            if !keys.is_empty() {
                self.state.storage().delete_multiple(keys).await?;
            }
        }
        Ok(answer)
    }
}

impl DurableObject for DedupShard {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            shard: RefCell::new(Shard::default()),
            loaded: RefCell::new(false),
            asks: RefCell::new(0),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.load().await?;
        let url = req.inner().url();
        let path = url
            .split('?')
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("");
        match path {
            "gate" => match Ask::parse(&url) {
                Some(ask) => Response::ok(self.gate(&ask).await?.text()),
                None => Response::error("bad ask", 400),
            },
            "session" => {
                let (Some(sid), Some(now_ms)) = (
                    field(&url, "s").and_then(bytes16),
                    field(&url, "t").and_then(|t| t.parse().ok()),
                ) else {
                    return Response::error("bad ask", 400);
                };
                let revoked = self.shard.borrow().is_revoked(&sid, now_ms);
                Response::ok(if revoked { "revoked" } else { "ok" })
            }
            "revoke" => {
                let (Some(sid), Some(until)) = (
                    field(&url, "s").and_then(bytes16),
                    field(&url, "x").and_then(|x| x.parse::<i64>().ok()),
                ) else {
                    return Response::error("bad ask", 400);
                };
                let key = format!("{REVOKED}{}", hex::encode(sid));
                self.state.storage().put(&key, until).await?;
                self.shard.borrow_mut().revoke(sid, until);
                Response::ok("ok")
            }
            _ => Response::error("no such ask", 404),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_and_answers_round_trip() {
        let first = Ask {
            user_id: 7,
            event_id: 42,
            window_s: 10,
            now_ms: 1_700_000_000_000,
            sid: [5; 16],
            retry: None,
        };
        assert_eq!(Ask::parse(&first.url()), Some(first.clone()));
        let retry = Ask {
            retry: Some(([0xab; 16], 1_700_000_100_000)),
            ..first
        };
        assert_eq!(Ask::parse(&retry.url()), Some(retry));
        assert_eq!(Ask::parse("https://dedup.internal/gate?u=x"), None);
        for answer in [
            Answer::Gate(Gate::Pass),
            Answer::Gate(Gate::Spent),
            Answer::Gate(Gate::Duplicate { retry_after_s: 7 }),
            Answer::Revoked,
        ] {
            assert_eq!(Answer::parse(&answer.text()), answer);
        }
        assert_eq!(field(&session_url(&[1; 16], 5), "t"), Some("5"));
        assert_eq!(
            field(&revoke_url(&[1; 16], 9), "s").and_then(bytes16),
            Some([1; 16])
        );
    }
}
