//! `SaleDesk`, the Durable Object that decides for a whole sale what no
//! isolate may decide alone (one object per event, named `desk-<event id>`):
//! the leases of units in flight to the origin and the event's arrival rate
//! (`core::desk`), and the opening draw's drawn share, fixed once from the
//! entrants every user shard recorded (`core::opening`). Asked by isolates,
//! never by the crowd: an isolate asks when its lease is spent or old, and the
//! desk tells an isolate it turned away when to ask again, so its load stays
//! under `core::desk::TARGET_ASKS_PER_S` whatever the number of isolates.

use std::cell::{Cell, RefCell};

use rushgate_core::desk::{Desk, Lease, LeaseAsk, Word};
use rushgate_core::opening;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::DurableObjectState;
use worker::{Env, Result, State, web_sys};

use crate::objects::{self, Load};
use crate::query::field;
use crate::shard::{self, ShardAsk};

/// Durable Object binding of the desks.
pub const BINDING: &str = "DESK";

/// Storage key of the drawn share, once fixed.
const SHARE: &str = "share";

/// `load`: the object's asks and busiest second, as `<asks> <peak per s>`.
pub const LOAD_URL: &str = "https://desk.internal/load";

/// Asks the event's desk; its text answer.
pub async fn ask(env: &Env, event_id: i64, url: &str) -> Result<String> {
    let stub = objects::namespace(env, BINDING)?.get_by_name(&format!("desk-{event_id}"))?;
    let answer: web_sys::Response = JsFuture::from(stub.fetch_with_str(url)?)
        .await?
        .unchecked_into();
    let text = JsFuture::from(answer.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    if answer.ok() {
        Ok(text)
    } else {
        Err(worker::Error::RustError(format!(
            "the desk answered {}: {text}",
            answer.status()
        )))
    }
}

/// `/lease?i=<isolate>&t=<tier>&w=<want>&f=<in flight>&v=<arrivals per
/// s>&n=<now ms>[&r=<remaining>&a=<its time ms>]`.
pub fn lease_url(ask: &LeaseAsk) -> String {
    let mut url = format!(
        "https://desk.internal/lease?i={}&t={}&w={}&f={}&v={}&n={}",
        ask.isolate,
        ask.tier_id,
        ask.want,
        ask.in_flight,
        milli(ask.arrivals_per_s),
        ask.now_ms
    );
    if let Some(word) = ask.word {
        url.push_str(&format!("&r={}&a={}", word.remaining, word.at_ms));
    }
    url
}

pub fn parse_lease_ask(url: &str) -> Option<LeaseAsk> {
    let word = match (field(url, "r"), field(url, "a")) {
        (Some(r), Some(a)) => Some(Word {
            remaining: r.parse().ok()?,
            at_ms: a.parse().ok()?,
        }),
        _ => None,
    };
    Some(LeaseAsk {
        isolate: field(url, "i")?.parse().ok()?,
        tier_id: field(url, "t")?.parse().ok()?,
        want: field(url, "w")?.parse().ok()?,
        in_flight: field(url, "f").map_or(Some(0), |f| f.parse().ok())?,
        word,
        arrivals_per_s: from_milli(field(url, "v")?)?,
        now_ms: field(url, "n")?.parse().ok()?,
    })
}

/// A rate on the wire: thousandths, as an integer (integers are cheaper than
/// floats to write and read in Wasm).
fn milli(rate: f64) -> u64 {
    (rate.max(0.0) * 1000.0).round() as u64
}

fn from_milli(text: &str) -> Option<f64> {
    Some(text.parse::<u64>().ok()? as f64 / 1000.0)
}

/// A lease as text: `<units> <expires ms> <remaining> <arrivals per s>
/// <retry at ms> <granted>`.
pub fn lease_text(lease: &Lease) -> String {
    format!(
        "{} {} {} {} {} {}",
        lease.units,
        lease.expires_ms,
        lease.remaining,
        milli(lease.arrivals_per_s),
        lease.retry_at_ms,
        lease.granted
    )
}

pub fn parse_lease(text: &str) -> Option<Lease> {
    let mut words = text.split(' ');
    let mut next = || words.next();
    Some(Lease {
        units: next()?.parse().ok()?,
        expires_ms: next()?.parse().ok()?,
        remaining: next()?.parse().ok()?,
        arrivals_per_s: from_milli(next()?)?,
        retry_at_ms: next()?.parse().ok()?,
        granted: next()?.parse().ok()?,
    })
}

/// `/share?e=<event>&k=<drawn>&n=<shards>`: the opening draw's drawn share,
/// fixed at the first ask (`k` entrants drawn).
pub fn share_url(event_id: i64, drawn: usize, shards: u32) -> String {
    format!("https://desk.internal/share?e={event_id}&k={drawn}&n={shards}")
}

#[wasm_bindgen]
pub struct SaleDesk {
    state: State,
    env: Env,
    desk: RefCell<Desk>,
    share: Cell<Option<f64>>,
    load: Cell<Load>,
}

#[wasm_bindgen(
    wasm_bindgen_futures = worker::wasm_bindgen_futures,
    js_sys = worker::js_sys
)]
impl SaleDesk {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: Env) -> Self {
        Self {
            state: State::from(state),
            env,
            desk: RefCell::new(Desk::default()),
            share: Cell::new(None),
            load: Cell::new(Load::default()),
        }
    }

    pub async fn fetch(&self, req: web_sys::Request) -> std::result::Result<JsValue, JsValue> {
        let (status, body) = match self.answer(&req.url()).await {
            Ok(body) => (200, body),
            Err(e) => (500, e.to_string()),
        };
        let init = web_sys::ResponseInit::new();
        init.set_status(status);
        Ok(web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)?.into())
    }
}

impl SaleDesk {
    async fn answer(&self, url: &str) -> Result<String> {
        let path = url
            .split('?')
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("");
        if path == "load" {
            return Ok(self.load.get().text());
        }
        let now_ms = crate::clock::now_ms();
        self.load.set(self.load.get().count(now_ms));
        match path {
            "lease" => {
                let mut ask = parse_lease_ask(url)
                    .ok_or_else(|| worker::Error::RustError("a bad lease ask".into()))?;
                // The desk's clock decides leases, whatever the isolate's.
                ask.now_ms = now_ms;
                Ok(lease_text(&self.desk.borrow_mut().lease(&ask)))
            }
            "share" => {
                let (Some(event_id), Some(drawn), Some(shards)) = (
                    field(url, "e").and_then(|e| e.parse().ok()),
                    field(url, "k").and_then(|k| k.parse().ok()),
                    field(url, "n").and_then(|n| n.parse().ok()),
                ) else {
                    return Err(worker::Error::RustError("a bad share ask".into()));
                };
                let share = self.share(event_id, drawn, shards).await?;
                Ok(opening::wire_number(share).to_string())
            }
            _ => Err(worker::Error::RustError(format!("no such ask: {path}"))),
        }
    }

    /// The drawn share: stored once fixed; else from every shard's entrants,
    /// in two rounds (how many in each 1/1024 of number space, then the
    /// numbers of the part where the `drawn`-th lies).
    async fn share(&self, event_id: i64, drawn: usize, shards: u32) -> Result<f64> {
        if let Some(share) = self.share.get() {
            return Ok(share);
        }
        if let Some(share) = self.state.storage().get::<f64>(SHARE).await.ok().flatten() {
            self.share.set(Some(share));
            return Ok(share);
        }
        let share = shard::kth_number(
            &self.env,
            shards,
            &ShardAsk::DrawHistogram { event_id },
            |bucket| ShardAsk::DrawBucket { event_id, bucket },
            drawn,
        )
        .await?;
        // Another ask may have fixed it meanwhile: the first one stored wins.
        if let Some(stored) = self.state.storage().get::<f64>(SHARE).await.ok().flatten() {
            self.share.set(Some(stored));
            return Ok(stored);
        }
        self.state.storage().put(SHARE, share).await?;
        self.share.set(Some(share));
        Ok(share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_and_answers_round_trip() {
        let ask = LeaseAsk {
            isolate: 77,
            tier_id: 3,
            want: 4,
            in_flight: 2,
            word: Some(Word {
                remaining: 9,
                at_ms: 1_700_000_000_000,
            }),
            arrivals_per_s: 12.5,
            now_ms: 1_700_000_000_500,
        };
        assert_eq!(parse_lease_ask(&lease_url(&ask)), Some(ask));
        let bare = LeaseAsk { word: None, ..ask };
        assert_eq!(parse_lease_ask(&lease_url(&bare)), Some(bare));
        let lease = Lease {
            units: 2,
            expires_ms: 5,
            remaining: 9,
            arrivals_per_s: 100.25,
            retry_at_ms: 7,
            granted: 1_700_000_000_500_001,
        };
        assert_eq!(parse_lease(&lease_text(&lease)), Some(lease));
        assert_eq!(parse_lease("1 2"), None);
        assert_eq!(field(&share_url(4, 15, 64), "k"), Some("15"));
    }
}
