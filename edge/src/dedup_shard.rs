//! `DedupShard`, the Durable Object that owns a slice of the users (the edge
//! picks the shard by user hash): their dedup windows and spent retry tokens,
//! kept in memory — if the object is evicted a window may reopen early, which
//! costs the origin one request but never correctness, since the origin enforces
//! every limit itself — and their ended sessions (logged out, or of an account
//! that moved to a new generation: `core::dedup`), kept in the object's
//! storage too, so an ending holds at every edge location and across evictions.
//! A `/buy` asks its shard once: the session check rides along with the gate.
//! The shard also keeps its users' places in event queues (`entrants`), their
//! numbers in automatic lotteries' opening draws (for the sale's desk, which
//! fixes the drawn share from all shards: `desk`), and counts tries at the
//! door (`door`) of its users and of the client addresses that hash to it.

use std::cell::{Cell, RefCell};

use rushgate_core::dedup::{Gate, SessionRef, Shard, shard_of};
use rushgate_core::velocity::Velocity;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::DurableObjectState;
use worker::{Env, ListOptions, Result, State, web_sys};

use crate::config::Config;
use crate::door::{AddressAsk, DoorAsk};
use crate::entrants::{Book, JoinAsk};
use crate::inits::{self, Inits};
use crate::objects;

/// Durable Object binding of the shards.
pub const BINDING: &str = "DEDUP";

/// Storage key prefix of revoked sessions (value: expiry, unix ms).
const REVOKED: &str = "revoked:";

/// Storage key prefix of accounts' first valid generations (value:
/// `"<generation> <until ms>"`).
const ACCOUNT: &str = "account:";

/// Asks the shard that owns `user_id`; returns its text answer.
pub async fn ask(env: &Env, config: &Config, user_id: i64, url: &str) -> Result<String> {
    ask_at(env, shard_of(user_id, config.dedup_shards), url).await
}

/// The header that carries a shard's answer (its body is empty).
const ANSWER: &str = "x-answer";

/// Asks shard number `shard`. The runtime's own objects throughout, and the
/// answer in a header: the `worker` crate's `Stub` and `Response` would read
/// the few bytes of a body through a stream reader, and copy the answer's
/// headers, status and properties first — most of the cost of a gate.
pub async fn ask_at(env: &Env, shard: u32, url: &str) -> Result<String> {
    let stub = objects::namespace(env, BINDING)?.get_by_name(&format!("dedup-{shard}"))?;
    let answer: web_sys::Response = JsFuture::from(stub.fetch_with_str(url)?)
        .await?
        .unchecked_into();
    match answer.headers().get(ANSWER)? {
        Some(word) if answer.ok() && word == "body" => Ok(JsFuture::from(answer.text()?)
            .await?
            .as_string()
            .unwrap_or_default()),
        Some(text) if answer.ok() => Ok(text),
        _ => Err(worker::Error::RustError(format!(
            "the dedup shard answered {}",
            answer.status()
        ))),
    }
}

thread_local! {
    /// Shard answers' inits (`pass`, `duplicate 7`, ...: a few dozen at most).
    static ANSWERS: Inits<String> = const { Inits::new() };
}

/// A shard's answer to the worker.
fn answer(text: &str) -> Result<web_sys::Response> {
    let init =
        ANSWERS.with(|answers| answers.get(text, || inits::make(None, &[(ANSWER, text)])))?;
    Ok(web_sys::Response::new_with_opt_str_and_init(None, &init)?)
}

/// An answer too long for a header (a histogram, a list of numbers): the body.
fn answer_body(text: &str) -> Result<web_sys::Response> {
    let init = inits::make(None, &[(ANSWER, "body")])?;
    Ok(web_sys::Response::new_with_opt_str_and_init(
        Some(text),
        &init,
    )?)
}

/// A refused ask (a worker bug, never a user's doing).
fn refusal(status: u16) -> Result<web_sys::Response> {
    let init = inits::make(Some(status), &[])?;
    Ok(web_sys::Response::new_with_opt_str_and_init(None, &init)?)
}

/// What the worker asks a shard. Sent as the query string of a GET, so a gate
/// costs no request body or headers: `u=<user>&e=<event>&w=<window s>&t=<now
/// ms>&s=<session id hex>&g=<generation>[&n=<retry nonce hex>&x=<retry expiry
/// ms>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub user_id: i64,
    pub event_id: i64,
    pub window_s: u32,
    pub now_ms: i64,
    pub sid: [u8; 16],
    pub generation: u32,
    /// A verified retry token: its nonce and expiry (ms).
    pub retry: Option<([u8; 16], i64)>,
    /// A first attempt in the event's opening draw: the user's number, which
    /// the shard records as an entrant's if the attempt passes the gate.
    pub draw: Option<f64>,
}

impl Ask {
    pub fn url(&self) -> String {
        let mut url = format!(
            "https://dedup.internal/gate?u={}&e={}&w={}&t={}&s={}&g={}",
            self.user_id,
            self.event_id,
            self.window_s,
            self.now_ms,
            hex::encode(self.sid),
            self.generation
        );
        if let Some((nonce, expires_ms)) = &self.retry {
            url.push_str(&format!("&n={}&x={expires_ms}", hex::encode(nonce)));
        }
        if let Some(number) = self.draw {
            url.push_str(&format!("&d={number}"));
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
            generation: generation(url)?,
            retry,
            draw: match field("d") {
                Some(d) => Some(d.parse().ok()?),
                None => None,
            },
        })
    }

    pub fn session(&self) -> SessionRef {
        SessionRef {
            user_id: self.user_id,
            sid: self.sid,
            generation: self.generation,
        }
    }
}

/// The `g=` field of an ask (0 when absent).
pub(crate) fn generation(url: &str) -> Option<u32> {
    field(url, "g").map_or(Some(0), |g| g.parse().ok())
}

/// `/session?u=<user>&s=<sid hex>&g=<generation>&t=<now ms>`: was the
/// session ended?
pub fn session_url(session: &SessionRef, now_ms: i64) -> String {
    format!(
        "https://dedup.internal/session?u={}&s={}&g={}&t={now_ms}",
        session.user_id,
        hex::encode(session.sid),
        session.generation
    )
}

/// `/draw-histogram?e=<event>`: how many of the shard's entrants in the
/// event's opening draw fall in each part of number space
/// (`core::opening::histogram`).
pub fn draw_histogram_url(event_id: i64) -> String {
    format!("https://dedup.internal/draw-histogram?e={event_id}")
}

/// `/draw-bucket?e=<event>&b=<part>`: the numbers of the shard's entrants in
/// one part of number space.
pub fn draw_bucket_url(event_id: i64, bucket: usize) -> String {
    format!("https://dedup.internal/draw-bucket?e={event_id}&b={bucket}")
}

/// `/pre-histogram?e=<event>&o=<opens ms>&s=<seed hex>`: how many of the
/// shard's pre-queue entrants' draw numbers (from the queue's seed) fall in
/// each part of number space.
pub fn pre_histogram_url(event_id: i64, opens_at_ms: i64, seed_hex: &str) -> String {
    format!("https://dedup.internal/pre-histogram?e={event_id}&o={opens_at_ms}&s={seed_hex}")
}

/// `/pre-bucket?…&b=<part>`: the pre-queue entrants' numbers in one part.
pub fn pre_bucket_url(event_id: i64, opens_at_ms: i64, seed_hex: &str, bucket: usize) -> String {
    format!(
        "{}&b={bucket}",
        pre_histogram_url(event_id, opens_at_ms, seed_hex).replace("pre-histogram", "pre-bucket")
    )
}

/// Asks every shard `url` at once; their answers.
pub async fn every_shard(env: &Env, shards: u32, url: &str) -> Result<Vec<String>> {
    use worker::js_sys::{Array, Promise};
    let asks = Array::new();
    for shard in 0..shards {
        let (env, url) = (env.clone(), url.to_owned());
        let ask = async move {
            ask_at(&env, shard, &url)
                .await
                .map(|text| JsValue::from_str(&text))
                .map_err(|e| JsValue::from_str(&e.to_string()))
        };
        asks.push(&worker::wasm_bindgen_futures::future_to_promise(ask));
    }
    let answers = Array::from(&JsFuture::from(Promise::all(&asks)).await?);
    Ok(answers.iter().filter_map(|a| a.as_string()).collect())
}

/// The `k`-th lowest (from 0) of the numbers every shard holds for some list
/// (`histogram_url`, then `bucket_url` of the part it lies in): the share of
/// number space below which exactly `k` of them lie; 1.0 when there are no
/// more than `k`. Two rounds of asks, whatever the count
/// (`core::opening::BUCKETS`).
pub async fn kth_number(
    env: &Env,
    shards: u32,
    histogram_url: &str,
    bucket_url: impl Fn(usize) -> String,
    k: usize,
) -> Result<f64> {
    use rushgate_core::opening;
    let mut total = vec![0u64; opening::BUCKETS];
    for text in every_shard(env, shards, histogram_url).await? {
        opening::add_histogram(&mut total, &text);
    }
    let Some((bucket, below)) = opening::bucket_of_kth(&total, k) else {
        return Ok(1.0);
    };
    let mut numbers: Vec<f64> = every_shard(env, shards, &bucket_url(bucket))
        .await?
        .iter()
        .flat_map(|text| opening::parse_numbers(text))
        .collect();
    Ok(opening::kth(&mut numbers, k - below))
}

/// How long a shard keeps an opening draw's entrants, ms.
const DRAW_KEPT_MS: i64 = 3_600_000;

/// `/revoke-account?u=<user>&g=<first valid generation>&x=<until ms>`: the
/// account's older sessions ended.
pub fn revoke_account_url(user_id: i64, generation: u32, until_ms: i64) -> String {
    format!("https://dedup.internal/revoke-account?u={user_id}&g={generation}&x={until_ms}")
}

/// `/revoke?s=<sid hex>&x=<expiry ms>`: the session ended at logout.
pub fn revoke_url(sid: &[u8; 16], expires_ms: i64) -> String {
    format!(
        "https://dedup.internal/revoke?s={}&x={expires_ms}",
        hex::encode(sid)
    )
}

/// A stored account revocation: `"<generation> <until ms>"`.
fn parse_account(text: &str) -> Option<(u32, i64)> {
    let (generation, until) = text.split_once(' ')?;
    Some((generation.parse().ok()?, until.parse().ok()?))
}

pub(crate) fn field<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

pub(crate) fn bytes16(text: &str) -> Option<[u8; 16]> {
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

/// The Durable Object class, exported with wasm-bindgen itself rather than the
/// `worker` crate's macro: that one copies the method, URL, headers and `cf`
/// properties of every ask into its own request type, where a shard reads
/// only the URL.
#[wasm_bindgen]
pub struct DedupShard {
    state: State,
    shard: RefCell<Shard>,
    /// Whether the revoked sessions were read from storage yet.
    loaded: RefCell<bool>,
    asks: RefCell<u32>,
    load: Cell<Load>,
    /// Its users' places in event queues.
    entrants: RefCell<Book>,
    /// Tries at the door of its accounts, and of the addresses it owns.
    accounts: RefCell<Velocity<i64>>,
    addresses: RefCell<Velocity<String>>,
    /// Opening draws' entrants: event → (user → number), and when each
    /// event's draw last took one.
    draws: RefCell<std::collections::HashMap<i64, (std::collections::HashMap<i64, f64>, i64)>>,
    env: Env,
}

/// Requests answered, in all and in the busiest second.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Load {
    asks: u64,
    second: i64,
    in_second: u32,
    peak_per_s: u32,
}

impl Load {
    pub(crate) fn count(mut self, now_ms: i64) -> Self {
        let second = now_ms.div_euclid(1000);
        if second != self.second {
            self.second = second;
            self.in_second = 0;
        }
        self.asks += 1;
        self.in_second += 1;
        self.peak_per_s = self.peak_per_s.max(self.in_second);
        self
    }

    /// As the `load` answer: `<asks> <peak per s>`.
    pub(crate) fn text(self) -> String {
        format!("{} {}", self.asks, self.peak_per_s)
    }
}

/// `/load`: the shard's [`Load`] (not counted itself).
pub const LOAD_URL: &str = "https://dedup.internal/load";

/// Parses a `load` answer into (asks, peak per s).
pub fn parse_load(text: &str) -> Option<(u64, u32)> {
    let (asks, peak) = text.split_once(' ')?;
    Some((asks.parse().ok()?, peak.parse().ok()?))
}

impl DedupShard {
    /// An account at the door: its session, its tries, and its answer spent
    /// once (the retry tokens' spent set: 16 random bytes never collide).
    async fn door(&self, ask: &DoorAsk) -> Result<String> {
        if self.shard.borrow().is_revoked(&ask.session(), ask.now_ms) {
            return Ok("revoked".into());
        }
        let seen = {
            let mut accounts = self.accounts.borrow_mut();
            if self.prune_due() {
                accounts.prune(ask.now_ms);
            }
            accounts.count(&ask.user_id, None, ask.now_ms)
        };
        if let Some(after_s) = seen.slow_down(ask.limit, ask.now_ms) {
            return Ok(format!("slow {after_s}"));
        }
        let spent = match ask.spend {
            Some((id, expires_ms)) => {
                self.shard
                    .borrow_mut()
                    .retry_attempt(id, expires_ms, ask.now_ms)
                    == Gate::Spent
            }
            None => false,
        };
        let word = if spent { "spent" } else { "ok" };
        Ok(format!("{word} {}", seen.tries_per_min))
    }

    /// Records a user's number in an event's opening draw; forgets draws
    /// nobody entered for an hour.
    fn enter_draw(&self, event_id: i64, user_id: i64, number: f64, now_ms: i64) {
        let mut draws = self.draws.borrow_mut();
        draws.retain(|_, (_, last)| now_ms - *last < DRAW_KEPT_MS);
        let (entrants, last) = draws
            .entry(event_id)
            .or_insert_with(|| (std::collections::HashMap::new(), now_ms));
        entrants.insert(user_id, number);
        *last = now_ms;
    }

    /// Counts an ask; true every 1,024th (time to forget what is old).
    fn prune_due(&self) -> bool {
        let mut asks = self.asks.borrow_mut();
        *asks = asks.wrapping_add(1);
        asks.is_multiple_of(1024)
    }

    /// An address at the door: its tries and the accounts behind it.
    fn address(&self, ask: &AddressAsk) -> String {
        let seen = {
            let mut addresses = self.addresses.borrow_mut();
            if self.prune_due() {
                addresses.prune(ask.now_ms);
            }
            addresses.count(&ask.address, Some(ask.user_id), ask.now_ms)
        };
        match seen.slow_down(ask.limit, ask.now_ms) {
            Some(after_s) => format!("slow {after_s}"),
            None => format!("ok {} {}", seen.tries_per_min, seen.accounts_per_min),
        }
    }

    /// Reads the ended sessions from storage on first use (the runtime holds
    /// other events back while storage is read).
    async fn load(&self) -> Result<()> {
        if *self.loaded.borrow() {
            return Ok(());
        }
        for prefix in [REVOKED, ACCOUNT] {
            let stored = self
                .state
                .storage()
                .list_with_options(ListOptions::new().prefix(prefix))
                .await?;
            for entry in stored.entries() {
                let Ok(pair) = entry.map(|e| worker::js_sys::Array::from(&e)) else {
                    continue;
                };
                let Some(key) = pair.get(0).as_string() else {
                    continue;
                };
                let name = &key[prefix.len()..];
                let mut shard = self.shard.borrow_mut();
                if prefix == REVOKED
                    && let (Some(sid), Some(until)) = (bytes16(name), pair.get(1).as_f64())
                {
                    shard.revoke(sid, until as i64);
                } else if let (Ok(user), Some((generation, until))) = (
                    name.parse(),
                    pair.get(1).as_string().and_then(|v| parse_account(&v)),
                ) {
                    shard.revoke_account(user, generation, until);
                }
            }
        }
        *self.loaded.borrow_mut() = true;
        Ok(())
    }

    /// Records that an account's sessions before `generation` ended.
    async fn revoke_account(&self, user: i64, generation: u32, until: i64) -> Result<()> {
        self.shard
            .borrow_mut()
            .revoke_account(user, generation, until);
        let Some((generation, until)) = self.shard.borrow().account(user) else {
            return Ok(());
        };
        let key = format!("{ACCOUNT}{user}");
        self.state
            .storage()
            .put(&key, format!("{generation} {until}"))
            .await
    }

    async fn gate(&self, ask: &Ask) -> Result<Answer> {
        let answer = {
            let mut shard = self.shard.borrow_mut();
            if shard.is_revoked(&ask.session(), ask.now_ms) {
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
            let sessions = forgotten
                .sessions
                .iter()
                .map(|sid| format!("{REVOKED}{}", hex::encode(sid)));
            let accounts = forgotten.accounts.iter().map(|u| format!("{ACCOUNT}{u}"));
            let keys: Vec<String> = sessions.chain(accounts).collect();
            if !keys.is_empty() {
                self.state.storage().delete_multiple(keys).await?;
            }
        }
        Ok(answer)
    }
}

#[wasm_bindgen(
    wasm_bindgen_futures = worker::wasm_bindgen_futures,
    js_sys = worker::js_sys
)]
impl DedupShard {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: Env) -> Self {
        Self {
            state: State::from(state),
            shard: RefCell::new(Shard::default()),
            loaded: RefCell::new(false),
            asks: RefCell::new(0),
            load: Cell::new(Load::default()),
            entrants: RefCell::new(Book::default()),
            accounts: RefCell::new(Velocity::default()),
            addresses: RefCell::new(Velocity::default()),
            draws: RefCell::new(std::collections::HashMap::new()),
            env,
        }
    }

    /// One ask; the answer is the runtime's own response object.
    pub async fn fetch(&self, req: web_sys::Request) -> std::result::Result<JsValue, JsValue> {
        match self.answer(&req.url()).await {
            Ok(response) => Ok(response.into()),
            Err(e) => Err(e.into()),
        }
    }
}

impl DedupShard {
    async fn answer(&self, url: &str) -> Result<web_sys::Response> {
        self.load().await?;
        let path = url
            .split('?')
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("");
        if path == "load" {
            return answer(&self.load.get().text());
        }
        let now_ms = crate::clock::now_ms();
        self.load.set(self.load.get().count(now_ms));
        match path {
            "gate" => match Ask::parse(url) {
                Some(ask) => {
                    let gate = self.gate(&ask).await?;
                    if let (Answer::Gate(Gate::Pass), Some(number)) = (gate, ask.draw) {
                        self.enter_draw(ask.event_id, ask.user_id, number, ask.now_ms);
                    }
                    answer(&gate.text())
                }
                None => refusal(400),
            },
            "pre-histogram" | "pre-bucket" => {
                let (Some(event_id), Some(opens_at_ms), Some(seed)) = (
                    field(url, "e").and_then(|e| e.parse::<i64>().ok()),
                    field(url, "o").and_then(|o| o.parse::<i64>().ok()),
                    field(url, "s").and_then(|s| {
                        let mut seed = [0u8; rushgate_core::draw::SEED_LEN];
                        hex::decode_to_slice(s, &mut seed).ok().map(|()| seed)
                    }),
                ) else {
                    return refusal(400);
                };
                let numbers =
                    Book::pre_numbers(&self.entrants, &self.state, event_id, opens_at_ms, &seed)
                        .await?;
                match field(url, "b").and_then(|b| b.parse::<usize>().ok()) {
                    Some(bucket) => {
                        answer_body(&rushgate_core::opening::in_bucket(numbers, bucket))
                    }
                    None => answer_body(&rushgate_core::opening::histogram(numbers)),
                }
            }
            "draw-histogram" => {
                let Some(event_id) = field(url, "e").and_then(|e| e.parse::<i64>().ok()) else {
                    return refusal(400);
                };
                let draws = self.draws.borrow();
                let numbers = draws
                    .get(&event_id)
                    .into_iter()
                    .flat_map(|(e, _)| e.values().copied());
                answer_body(&rushgate_core::opening::histogram(numbers))
            }
            "draw-bucket" => {
                let (Some(event_id), Some(bucket)) = (
                    field(url, "e").and_then(|e| e.parse::<i64>().ok()),
                    field(url, "b").and_then(|b| b.parse::<usize>().ok()),
                ) else {
                    return refusal(400);
                };
                let draws = self.draws.borrow();
                let numbers = draws
                    .get(&event_id)
                    .into_iter()
                    .flat_map(|(e, _)| e.values().copied());
                answer_body(&rushgate_core::opening::in_bucket(numbers, bucket))
            }
            "session" => {
                let (Some(user_id), Some(sid), Some(generation), Some(now_ms)) = (
                    field(url, "u").and_then(|u| u.parse().ok()),
                    field(url, "s").and_then(bytes16),
                    generation(url),
                    field(url, "t").and_then(|t| t.parse().ok()),
                ) else {
                    return refusal(400);
                };
                let session = SessionRef {
                    user_id,
                    sid,
                    generation,
                };
                let revoked = self.shard.borrow().is_revoked(&session, now_ms);
                answer(if revoked { "revoked" } else { "ok" })
            }
            "revoke-account" => {
                let (Some(user), Some(generation), Some(until)) = (
                    field(url, "u").and_then(|u| u.parse().ok()),
                    field(url, "g").and_then(|g| g.parse().ok()),
                    field(url, "x").and_then(|x| x.parse().ok()),
                ) else {
                    return refusal(400);
                };
                self.revoke_account(user, generation, until).await?;
                answer("ok")
            }
            "revoke" => {
                let (Some(sid), Some(until)) = (
                    field(url, "s").and_then(bytes16),
                    field(url, "x").and_then(|x| x.parse::<i64>().ok()),
                ) else {
                    return refusal(400);
                };
                let key = format!("{REVOKED}{}", hex::encode(sid));
                self.state.storage().put(&key, until).await?;
                self.shard.borrow_mut().revoke(sid, until);
                answer("ok")
            }
            "door" => match DoorAsk::parse(url) {
                Some(ask) => answer(&self.door(&ask).await?),
                None => refusal(400),
            },
            "address" => match AddressAsk::parse(url) {
                Some(ask) => answer(&self.address(&ask)),
                None => refusal(400),
            },
            "join" => {
                let Some(ask) = JoinAsk::parse(url) else {
                    return refusal(400);
                };
                if self.shard.borrow().is_revoked(&ask.session(), ask.now_ms) {
                    return answer("revoked");
                }
                let joined = Book::join(&self.entrants, &self.state, &ask).await?;
                answer(&joined)
            }
            "entrants" => {
                let (Some(event_id), Some(opens_at_ms)) = (
                    field(url, "e").and_then(|e| e.parse().ok()),
                    field(url, "o").and_then(|o| o.parse().ok()),
                ) else {
                    return refusal(400);
                };
                let config = crate::config::load(&self.env)
                    .map_err(|e| worker::Error::RustError(e.0.message))?;
                let counts = Book::counts(
                    &self.entrants,
                    &self.state,
                    &config,
                    event_id,
                    opens_at_ms,
                    now_ms,
                )
                .await?;
                answer(&counts)
            }
            _ => refusal(404),
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
            generation: 3,
            retry: None,
            draw: None,
        };
        assert_eq!(Ask::parse(&first.url()), Some(first.clone()));
        let retry = Ask {
            retry: Some(([0xab; 16], 1_700_000_100_000)),
            ..first.clone()
        };
        assert_eq!(Ask::parse(&retry.url()), Some(retry));
        let entrant = Ask {
            draw: Some(0.123_456_789_012_345_67),
            ..first
        };
        assert_eq!(Ask::parse(&entrant.url()), Some(entrant));
        assert_eq!(Ask::parse("https://dedup.internal/gate?u=x"), None);
        for answer in [
            Answer::Gate(Gate::Pass),
            Answer::Gate(Gate::Spent),
            Answer::Gate(Gate::Duplicate { retry_after_s: 7 }),
            Answer::Revoked,
        ] {
            assert_eq!(Answer::parse(&answer.text()), answer);
        }
        let session = SessionRef {
            user_id: 4,
            sid: [1; 16],
            generation: 2,
        };
        let url = session_url(&session, 5);
        assert_eq!(field(&url, "t"), Some("5"));
        assert_eq!(generation(&url), Some(2));
        assert_eq!(generation("https://dedup.internal/session?u=4"), Some(0));
        assert_eq!(
            parse_account("3 1700000000000"),
            Some((3, 1_700_000_000_000))
        );
        let revoke = revoke_account_url(4, 3, 99);
        assert_eq!(field(&revoke, "g"), Some("3"));
        let load = Load::default().count(1_000).count(1_500).count(2_100);
        assert_eq!(parse_load(&load.text()), Some((3, 2)));
        assert_eq!(parse_load("3"), None);
        assert_eq!(
            field(&revoke_url(&[1; 16], 9), "s").and_then(bytes16),
            Some([1; 16])
        );
    }
}
