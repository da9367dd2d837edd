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
//! What it is asked and answers is `wire`.

mod draws;
pub mod wire;

use std::cell::{Cell, RefCell};

use rushgate_core::dedup::{Gate, Shard, shard_of};
use rushgate_core::opening;
use rushgate_core::velocity::Velocity;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::DurableObjectState;
use worker::{Env, ListOptions, Result, State, web_sys};

use crate::config::Config;
use crate::door::{AddressAsk, DoorAsk};
use crate::entrants::Book;
use crate::inits::{self, Inits};
use crate::objects::{self, Load};
use crate::query::bytes16;
use draws::Draws;
use wire::parse_account;
pub use wire::{Answer, Ask, ShardAsk};

/// Durable Object binding of the shards.
pub const BINDING: &str = "DEDUP";

/// Storage key prefix of revoked sessions (value: expiry, unix ms).
const REVOKED: &str = "revoked:";

/// Storage key prefix of accounts' first valid generations (value:
/// `"<generation> <until ms>"`).
const ACCOUNT: &str = "account:";

/// Asks the shard that owns `user_id`; returns its text answer.
pub async fn ask(env: &Env, config: &Config, user_id: i64, ask: &ShardAsk) -> Result<String> {
    ask_at(env, shard_of(user_id, config.dedup_shards), ask).await
}

/// The header that carries a shard's answer (its body is empty).
const ANSWER: &str = "x-answer";

/// Asks shard number `shard`. The runtime's own objects throughout, and the
/// answer in a header: the `worker` crate's `Stub` and `Response` would read
/// the few bytes of a body through a stream reader, and copy the answer's
/// headers, status and properties first — most of the cost of a gate.
pub async fn ask_at(env: &Env, shard: u32, ask: &ShardAsk) -> Result<String> {
    let stub = objects::namespace(env, BINDING)?.get_by_name(&format!("dedup-{shard}"))?;
    let answer: web_sys::Response = JsFuture::from(stub.fetch_with_str(&ask.url())?)
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

/// Asks every shard `ask` at once; their answers.
pub async fn every_shard(env: &Env, shards: u32, ask: &ShardAsk) -> Result<Vec<String>> {
    use worker::js_sys::{Array, Promise};
    let asks = Array::new();
    for shard in 0..shards {
        let (env, each) = (env.clone(), ask.clone());
        let ask = async move {
            ask_at(&env, shard, &each)
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
/// (`histogram`, then `bucket` of the part it lies in): the share of
/// number space below which exactly `k` of them lie; 1.0 when there are no
/// more than `k`. Two rounds of asks, whatever the count
/// (`core::opening::BUCKETS`).
pub async fn kth_number(
    env: &Env,
    shards: u32,
    histogram: &ShardAsk,
    bucket: impl Fn(usize) -> ShardAsk,
    k: usize,
) -> Result<f64> {
    use rushgate_core::opening;
    let mut total = vec![0u64; opening::BUCKETS];
    for text in every_shard(env, shards, histogram).await? {
        opening::add_histogram(&mut total, &text);
    }
    let Some((part, below)) = opening::bucket_of_kth(&total, k) else {
        return Ok(1.0);
    };
    let mut numbers: Vec<f64> = every_shard(env, shards, &bucket(part))
        .await?
        .iter()
        .flat_map(|text| opening::parse_numbers(text))
        .collect();
    Ok(opening::kth(&mut numbers, k - below))
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
    /// Its users' numbers in opening draws.
    draws: RefCell<Draws>,
    env: Env,
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
            draws: RefCell::new(Draws::default()),
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
        let Some(ask) = ShardAsk::parse(url) else {
            return refusal(400);
        };
        if ask == ShardAsk::Load {
            return answer(&self.load.get().text());
        }
        let now_ms = crate::clock::now_ms();
        self.load.set(self.load.get().count(now_ms));
        match ask {
            ShardAsk::Gate(ask) => {
                let gate = self.gate(&ask).await?;
                if let (Answer::Gate(Gate::Pass), Some(number)) = (gate, ask.draw) {
                    let mut draws = self.draws.borrow_mut();
                    draws.enter(ask.event_id, ask.user_id, number, ask.now_ms);
                }
                answer(&gate.text())
            }
            ShardAsk::PreHistogram {
                event_id,
                opens_at_ms,
                seed,
            } => {
                let numbers =
                    Book::pre_numbers(&self.entrants, &self.state, event_id, opens_at_ms, &seed)
                        .await?;
                answer_body(&opening::histogram(numbers))
            }
            ShardAsk::PreBucket {
                event_id,
                opens_at_ms,
                seed,
                bucket,
            } => {
                let numbers =
                    Book::pre_numbers(&self.entrants, &self.state, event_id, opens_at_ms, &seed)
                        .await?;
                answer_body(&opening::in_bucket(numbers, bucket))
            }
            ShardAsk::DrawHistogram { event_id } => {
                answer_body(&opening::histogram(self.draws.borrow().numbers(event_id)))
            }
            ShardAsk::DrawBucket { event_id, bucket } => answer_body(&opening::in_bucket(
                self.draws.borrow().numbers(event_id),
                bucket,
            )),
            ShardAsk::Session { session, now_ms } => {
                let revoked = self.shard.borrow().is_revoked(&session, now_ms);
                answer(if revoked { "revoked" } else { "ok" })
            }
            ShardAsk::RevokeAccount {
                user_id,
                generation,
                until_ms,
            } => {
                self.revoke_account(user_id, generation, until_ms).await?;
                answer("ok")
            }
            ShardAsk::Revoke { sid, until_ms } => {
                let key = format!("{REVOKED}{}", hex::encode(sid));
                self.state.storage().put(&key, until_ms).await?;
                self.shard.borrow_mut().revoke(sid, until_ms);
                answer("ok")
            }
            ShardAsk::Door(ask) => answer(&self.door(&ask).await?),
            ShardAsk::Address(ask) => answer(&self.address(&ask)),
            ShardAsk::Join(ask) => {
                if self.shard.borrow().is_revoked(&ask.session(), ask.now_ms) {
                    return answer("revoked");
                }
                let joined = Book::join(&self.entrants, &self.state, &ask).await?;
                answer(&joined)
            }
            ShardAsk::Entrants {
                event_id,
                opens_at_ms,
            } => {
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
            ShardAsk::Load => refusal(400),
        }
    }
}
