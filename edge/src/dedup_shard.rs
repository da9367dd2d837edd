//! `DedupShard`, the Durable Object that owns the dedup windows and spent retry
//! tokens of a slice of the users (the edge picks the shard by user hash). The
//! state is kept in memory: if the object is evicted a window may reopen early,
//! which costs the origin one request but never correctness — the origin enforces
//! every limit itself.

use std::cell::RefCell;

use rushgate_core::dedup::{Gate, Shard};
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

/// What the worker asks a shard. Sent as the query string of a GET, so a gate
/// costs no request body or headers: `u=<user>&e=<event>&w=<window s>&t=<now
/// ms>[&n=<retry nonce hex>&x=<retry expiry ms>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub user_id: i64,
    pub event_id: i64,
    pub window_s: u32,
    pub now_ms: i64,
    /// A verified retry token: its nonce (hex) and expiry (ms).
    pub retry: Option<(String, i64)>,
}

impl Ask {
    pub fn url(&self) -> String {
        let mut url = format!(
            "https://dedup.internal/gate?u={}&e={}&w={}&t={}",
            self.user_id, self.event_id, self.window_s, self.now_ms
        );
        if let Some((nonce, expires_ms)) = &self.retry {
            url.push_str(&format!("&n={nonce}&x={expires_ms}"));
        }
        url
    }

    pub fn parse(url: &str) -> Option<Self> {
        let query = url.split_once('?')?.1;
        let field = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        };
        let retry = match (field("n"), field("x")) {
            (Some(nonce), Some(exp)) => Some((nonce.to_owned(), exp.parse().ok()?)),
            _ => None,
        };
        Some(Self {
            user_id: field("u")?.parse().ok()?,
            event_id: field("e")?.parse().ok()?,
            window_s: field("w")?.parse().ok()?,
            now_ms: field("t")?.parse().ok()?,
            retry,
        })
    }
}

/// The shard's answer, as text: `pass`, `duplicate <retry after s>` or `spent`.
pub fn answer_text(gate: Gate) -> String {
    match gate {
        Gate::Pass => "pass".into(),
        Gate::Duplicate { retry_after_s } => format!("duplicate {retry_after_s}"),
        Gate::Spent => "spent".into(),
    }
}

pub fn parse_answer(text: &str) -> Gate {
    match text.split_once(' ') {
        Some(("duplicate", after)) => Gate::Duplicate {
            retry_after_s: after.parse().unwrap_or(1),
        },
        _ if text == "pass" => Gate::Pass,
        _ => Gate::Spent,
    }
}

#[durable_object(fetch)]
pub struct DedupShard {
    shard: RefCell<Shard>,
    asks: RefCell<u32>,
}

impl DurableObject for DedupShard {
    fn new(_state: State, _env: Env) -> Self {
        Self {
            shard: RefCell::new(Shard::default()),
            asks: RefCell::new(0),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let Some(ask) = Ask::parse(&req.inner().url()) else {
            return Response::error("bad ask", 400);
        };
        let mut shard = self.shard.borrow_mut();
        let gate = match &ask.retry {
            Some((nonce, expires_ms)) => {
                let mut bytes = [0u8; 16];
                match hex::decode_to_slice(nonce, &mut bytes) {
                    Ok(()) => shard.retry_attempt(bytes, *expires_ms, ask.now_ms),
                    Err(_) => Gate::Spent,
                }
            }
            None => shard.first_attempt(ask.user_id, ask.event_id, ask.window_s, ask.now_ms),
        };
        let mut asks = self.asks.borrow_mut();
        *asks += 1;
        if asks.is_multiple_of(1024) {
            shard.prune(ask.now_ms);
        }
        Response::ok(answer_text(gate))
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
            retry: None,
        };
        assert_eq!(Ask::parse(&first.url()), Some(first.clone()));
        let retry = Ask {
            retry: Some(("ab".repeat(16), 1_700_000_100_000)),
            ..first
        };
        assert_eq!(Ask::parse(&retry.url()), Some(retry));
        assert_eq!(Ask::parse("https://dedup.internal/gate?u=x"), None);
        for gate in [
            Gate::Pass,
            Gate::Spent,
            Gate::Duplicate { retry_after_s: 7 },
        ] {
            assert_eq!(parse_answer(&answer_text(gate)), gate);
        }
    }
}
