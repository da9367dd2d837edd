//! `QueueFrontier`, the Durable Object that owns one event's queue frontier
//! (one object per event, named `frontier-<event id>`): asked by the edge's
//! isolates at most once a second each, it steps the controller
//! (`core::queue::controller`) at most once a second — the origin's feed, the
//! user shards' entrant counts — stores it, so the frontier never moves back,
//! and reports it to the origin for the draw record. The crowd never reaches
//! it: joins go to the user shards, polls are answered by the isolates from
//! their copy of the frontier — read through the location's cache, so the
//! object answers one read a second per location, not per isolate
//! (`location::fetch_once`). An alarm just after the close steps it once
//! more, so joins of the sale's last second reach the draw record even when
//! nobody polls any more.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use rushgate_core::queue::controller::Controller;
use rushgate_core::queue::wire::{self, FrontierView, QueueFeed, QueueReport};
use wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::DurableObjectState;
use worker::{Delay, Env, Method, Result, State, web_sys};

use crate::config::Config;
use crate::entrants;
use crate::error::EdgeError;
use crate::location;
use crate::objects::{self, Load};
use crate::origin;
use crate::query::field;
use crate::shard::{self, ShardAsk};

/// Durable Object binding of the frontiers.
pub const BINDING: &str = "QUEUE";

/// Storage key of the controller.
const CONTROLLER: &str = "controller";

/// Storage key of the event id, for the alarm.
const EVENT: &str = "event";

/// How long after the close the last step runs, ms.
const LAST_STEP_AFTER_CLOSE_MS: i64 = 2_000;

/// How long an ask waits for the object's first step, ms.
const FIRST_STEP_WAIT_MS: u64 = 5_000;

/// How long an isolate uses its copy of a frontier, ms.
const COPY_TTL_MS: i64 = 1_000;

/// How long a request waits for the isolate's ask under way, ms (the object's
/// first step waits up to `FIRST_STEP_WAIT_MS` itself).
const ASK_WAIT_MS: u64 = FIRST_STEP_WAIT_MS + 2_000;

thread_local! {
    /// This isolate's copies: event id → (frontier, read at ms).
    static COPIES: RefCell<HashMap<i64, (Rc<FrontierView>, i64)>> = RefCell::new(HashMap::new());
    /// This isolate's asks under way: event id → started at ms.
    static ASKING: RefCell<HashMap<i64, i64>> = RefCell::new(HashMap::new());
}

fn frontier_url(event_id: i64) -> String {
    format!("https://queue.internal/frontier?e={event_id}")
}

/// `load`: the object's asks and busiest second, as `<asks> <peak per s>`.
pub const LOAD_URL: &str = "https://queue.internal/load";

/// Asks the event's frontier object; its text answer and status.
pub async fn ask(env: &Env, event_id: i64, url: &str) -> Result<(u16, String)> {
    let stub = objects::namespace(env, BINDING)?.get_by_name(&format!("frontier-{event_id}"))?;
    let answer: web_sys::Response = JsFuture::from(stub.fetch_with_str(url)?)
        .await?
        .unchecked_into();
    let text = JsFuture::from(answer.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    Ok((answer.status(), text))
}

/// The event's frontier: this isolate's copy while under a second old, else
/// the location's, else the object's (once per location). One ask per isolate at a time: while it is under way, other
/// requests use the last copy, or — at the opening, before there is one —
/// look for it on timers of their own, more slowly as they wait, so the
/// stampede asks the object once per isolate, not once per join. (Awaiting the
/// asking request's own promise would resume a waiter in that request's
/// context, which the runtime refuses.)
pub async fn read(
    env: &Env,
    event_id: i64,
    now_ms: i64,
) -> std::result::Result<Rc<FrontierView>, EdgeError> {
    let copy = COPIES.with(|c| c.borrow().get(&event_id).cloned());
    if let Some((view, at)) = &copy
        && now_ms - at < location::due_ms(COPY_TTL_MS)
    {
        return Ok(view.clone());
    }
    if let Some(found) = location::fresh_copy(&copy_key(event_id), COPY_TTL_MS, now_ms).await
        && let Ok(view) = serde_json::from_slice::<FrontierView>(&found.body)
    {
        let view = Rc::new(view);
        COPIES.with(|c| {
            c.borrow_mut()
                .insert(event_id, (view.clone(), found.fetched_ms))
        });
        return Ok(view);
    }
    // An ask older than the wait went with a request that was cancelled.
    let asking = ASKING
        .with(|a| a.borrow().get(&event_id).copied())
        .is_some_and(|started| now_ms - started < ASK_WAIT_MS as i64);
    match (asking, copy) {
        (true, Some((view, _))) => Ok(view),
        (true, None) => wait_for_copy(event_id).await,
        (false, _) => {
            ASKING.with(|a| a.borrow_mut().insert(event_id, now_ms));
            let read = ask_for_copy(env, event_id, now_ms).await;
            ASKING.with(|a| {
                let mut asking = a.borrow_mut();
                if asking.get(&event_id) == Some(&now_ms) {
                    asking.remove(&event_id);
                }
            });
            read
        }
    }
}

/// The location cache's key of an event's frontier.
fn copy_key(event_id: i64) -> String {
    format!("https://queue.internal/copy/{event_id}")
}

/// Asks the object (once per location) and keeps the copy.
async fn ask_for_copy(
    env: &Env,
    event_id: i64,
    now_ms: i64,
) -> std::result::Result<Rc<FrontierView>, EdgeError> {
    let asked = async {
        let (status, text) = ask(env, event_id, &frontier_url(event_id)).await?;
        Ok((status, text.into_bytes()))
    };
    let copy = location::fetch_once(&copy_key(event_id), COPY_TTL_MS, 1, now_ms, asked).await?;
    let view: FrontierView = match copy.status {
        200 => serde_json::from_slice(&copy.body).map_err(|_| EdgeError::origin_unavailable())?,
        _ => return Err(EdgeError::origin_unavailable()),
    };
    let view = Rc::new(view);
    COPIES.with(|c| {
        c.borrow_mut()
            .insert(event_id, (view.clone(), copy.fetched_ms))
    });
    Ok(view)
}

/// Waits for the copy another request of this isolate is asking for, when
/// the isolate has none yet: looks after 10 ms, then twice as long each time
/// up to a quarter second; gives up (503) when that ask ends without a copy
/// or after `ASK_WAIT_MS`. Any copy will do: the one asked for is as of the
/// instant its ask started, which may be before this request came.
async fn wait_for_copy(event_id: i64) -> std::result::Result<Rc<FrontierView>, EdgeError> {
    let mut pause_ms = 10;
    let mut waited_ms = 0;
    while waited_ms < ASK_WAIT_MS {
        Delay::from(Duration::from_millis(pause_ms)).await;
        waited_ms += pause_ms;
        pause_ms = (pause_ms * 2).min(250);
        let copy = COPIES.with(|c| c.borrow().get(&event_id).cloned());
        if let Some((view, _)) = copy {
            return Ok(view);
        }
        if ASKING.with(|a| !a.borrow().contains_key(&event_id)) {
            break;
        }
    }
    Err(EdgeError::origin_unavailable())
}

/// Sums the entrant counts of every user shard (which send their new joins
/// to the origin on the way), all asked at once.
async fn counts(env: &Env, config: &Config, feed: &QueueFeed, event_id: i64) -> Result<(u64, u64)> {
    let ask = ShardAsk::Entrants {
        event_id,
        opens_at_ms: feed.opens_at_ms,
    };
    let mut total = (0, 0);
    for answer in shard::every_shard(env, config.dedup_shards, &ask).await? {
        if let Some((pre, late)) = entrants::parse_counts(&answer) {
            total.0 += pre;
            total.1 += late;
        }
    }
    Ok(total)
}

/// The origin's feed for the event; `None` if it has no queue.
async fn feed(config: &Config, event_id: i64, now_ms: i64) -> Result<Option<QueueFeed>> {
    let path = wire::internal_path(event_id);
    let headers = origin::attested(config, "GET", &path, now_ms);
    let mut response = origin::send(config, Method::Get, &path, headers, None)
        .await
        .map_err(|e| worker::Error::RustError(e.0.message))?;
    match response.status_code() {
        200 => Ok(Some(serde_json::from_slice(&response.bytes().await?)?)),
        404 => Ok(None),
        status => Err(worker::Error::RustError(format!(
            "the origin's queue feed answered {status}"
        ))),
    }
}

#[wasm_bindgen]
pub struct QueueFrontier {
    state: State,
    env: Env,
    controller: RefCell<Option<Controller>>,
    feed: RefCell<Option<QueueFeed>>,
    stepping: Cell<bool>,
    /// The origin said the event has no queue.
    absent: Cell<bool>,
    /// The alarm for the last step is set.
    alarm_set: Cell<bool>,
    load: Cell<Load>,
}

#[wasm_bindgen(
    wasm_bindgen_futures = worker::wasm_bindgen_futures,
    js_sys = worker::js_sys
)]
impl QueueFrontier {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: Env) -> Self {
        Self {
            state: State::from(state),
            env,
            controller: RefCell::new(None),
            feed: RefCell::new(None),
            stepping: Cell::new(false),
            absent: Cell::new(false),
            alarm_set: Cell::new(false),
            load: Cell::new(Load::default()),
        }
    }

    pub async fn fetch(&self, req: web_sys::Request) -> std::result::Result<JsValue, JsValue> {
        match self.answer(&req.url()).await {
            Ok((status, body)) => {
                let init = web_sys::ResponseInit::new();
                init.set_status(status);
                Ok(web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)?.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The last step, after the close (a failure is retried by the runtime).
    pub async fn alarm(&self) -> std::result::Result<JsValue, JsValue> {
        let event_id: Option<i64> = self.state.storage().get(EVENT).await.ok().flatten();
        let Some(event_id) = event_id else {
            return Ok(JsValue::UNDEFINED);
        };
        let config =
            crate::config::load(&self.env).map_err(|e| worker::Error::RustError(e.0.message))?;
        self.step(&config, event_id, crate::clock::now_ms()).await?;
        Ok(JsValue::UNDEFINED)
    }
}

impl QueueFrontier {
    async fn answer(&self, url: &str) -> Result<(u16, String)> {
        let now_ms = crate::clock::now_ms();
        if url.starts_with(LOAD_URL) {
            return Ok((200, self.load.get().text()));
        }
        self.load.set(self.load.get().count(now_ms));
        let Some(event_id) = field(url, "e").and_then(|e| e.parse::<i64>().ok()) else {
            return Ok((400, String::new()));
        };
        let config =
            crate::config::load(&self.env).map_err(|e| worker::Error::RustError(e.0.message))?;
        let due = self
            .controller
            .borrow()
            .as_ref()
            .is_none_or(|c| c.due(now_ms));
        if due && !self.stepping.replace(true) {
            let stepped = self.step(&config, event_id, now_ms).await;
            self.stepping.set(false);
            if let Err(e) = stepped {
                worker::console_error!("queue frontier {event_id}: {e}");
            }
        }
        // Asks that arrive while the first step is under way wait for it.
        for _ in 0..FIRST_STEP_WAIT_MS / 10 {
            if !self.stepping.get() || self.feed.borrow().is_some() {
                break;
            }
            Delay::from(Duration::from_millis(10)).await;
        }
        let controller = self.controller.borrow();
        let feed = self.feed.borrow();
        match (controller.as_ref(), feed.as_ref()) {
            (Some(c), Some(feed)) => Ok((200, serde_json::to_string(&c.view(feed))?)),
            _ if self.absent.get() => Ok((404, String::new())),
            // Not read yet (the first step failed or is under way).
            _ => Ok((503, String::new())),
        }
    }

    async fn step(&self, config: &Config, event_id: i64, now_ms: i64) -> Result<()> {
        let Some(feed) = feed(config, event_id, now_ms).await? else {
            *self.feed.borrow_mut() = None;
            self.absent.set(true);
            return Ok(());
        };
        self.absent.set(false);
        if self.controller.borrow().is_none() {
            let stored: Option<Controller> =
                self.state.storage().get(CONTROLLER).await.ok().flatten();
            let controller = stored.unwrap_or_else(|| Controller::new(feed.opens_at_ms));
            self.controller.borrow_mut().get_or_insert(controller);
        }
        let (pre, late) = counts(&self.env, config, &feed, event_id).await?;
        let target = {
            let mut controller = self.controller.borrow_mut();
            let Some(c) = controller.as_mut() else {
                return Ok(());
            };
            c.step(&feed, pre, late, now_ms);
            c.pre_target()
        };
        // Exactly as many pre-queue entrants as the step admitted: the
        // frontier at the number of the next one, from every shard's.
        if let Some(k) = target {
            let mut seed = [0u8; rushgate_core::draw::SEED_LEN];
            hex::decode_to_slice(&feed.seed, &mut seed)
                .map_err(|_| worker::Error::RustError("the queue's seed is not hex".into()))?;
            let opens_at_ms = feed.opens_at_ms;
            let drawn = shard::kth_number(
                &self.env,
                config.dedup_shards,
                &ShardAsk::PreHistogram {
                    event_id,
                    opens_at_ms,
                    seed,
                },
                |bucket| ShardAsk::PreBucket {
                    event_id,
                    opens_at_ms,
                    seed,
                    bucket,
                },
                k as usize,
            )
            .await?;
            if let Some(c) = self.controller.borrow_mut().as_mut() {
                c.set_drawn(drawn);
            }
        }
        let report = match self.controller.borrow().as_ref() {
            Some(c) => c.report(),
            None => return Ok(()),
        };
        let last_step_in_ms = feed.closes_at_ms + LAST_STEP_AFTER_CLOSE_MS - now_ms;
        *self.feed.borrow_mut() = Some(feed);
        let stored = self.controller.borrow().clone();
        if let Some(c) = stored {
            self.state.storage().put(CONTROLLER, c).await?;
        }
        if last_step_in_ms > 0 && !self.alarm_set.get() {
            self.state.storage().put(EVENT, event_id).await?;
            self.state.storage().set_alarm(last_step_in_ms).await?;
            self.alarm_set.set(true);
        }
        let report = QueueReport {
            joins: Vec::new(),
            frontier: Some(report),
        };
        if !entrants::send(config, event_id, &report, now_ms).await {
            worker::console_warn!("queue frontier {event_id}: the origin did not take the report");
        }
        Ok(())
    }
}
