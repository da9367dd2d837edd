//! `FunnelTally`, the Durable Objects that sum the isolates' funnel counts
//! before they reach the origin (`TALLY_SHARDS` of them, named
//! `tally-<n>`; an isolate reports to one chosen by its name): the origin gets
//! at most one report per tally per `REPORT_EVERY_MS`, however many isolates
//! count. Counts a tally could not deliver stay in its storage and go with
//! its next report (an alarm tries again while the origin is away), so an
//! outage delays counts and never loses them.

use std::cell::{Cell, RefCell};

use rushgate_core::api::{EDGE_REPORT_PATH, EdgeReport};
use rushgate_core::funnel::Buffer;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::DurableObjectState;
use worker::{Env, Result, State, web_sys};

use crate::objects::Load;
use crate::{objects, origin};

/// Durable Object binding of the tallies.
pub const BINDING: &str = "TALLY";

/// Storage key of counts not delivered yet.
const PENDING: &str = "pending";

/// Reports sent back to back in one turn at most.
const MAX_REPORTS_PER_TURN: usize = 20;

/// `load`: the object's asks and busiest second.
pub const LOAD_URL: &str = "https://tally.internal/load";

/// Sends an isolate's report to tally `n`; whether it took it.
pub async fn report(env: &Env, n: u32, report: &EdgeReport) -> bool {
    let Ok(body) = serde_json::to_string(report) else {
        return false;
    };
    let sent = async {
        let stub = objects::namespace(env, BINDING)?.get_by_name(&format!("tally-{n}"))?;
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(&body));
        let request =
            web_sys::Request::new_with_str_and_init("https://tally.internal/report", &init)?;
        let answer: web_sys::Response = JsFuture::from(stub.fetch_with_request(&request)?)
            .await?
            .unchecked_into();
        Ok::<bool, worker::Error>(answer.ok())
    };
    sent.await.unwrap_or(false)
}

/// Asks tally `n` for its load.
pub async fn load(env: &Env, n: u32) -> Result<String> {
    let stub = objects::namespace(env, BINDING)?.get_by_name(&format!("tally-{n}"))?;
    let answer: web_sys::Response = JsFuture::from(stub.fetch_with_str(LOAD_URL)?)
        .await?
        .unchecked_into();
    Ok(JsFuture::from(answer.text()?)
        .await?
        .as_string()
        .unwrap_or_default())
}

#[wasm_bindgen]
pub struct FunnelTally {
    state: State,
    env: Env,
    buffer: RefCell<Buffer>,
    loaded: Cell<bool>,
    last_sent_ms: Cell<i64>,
    sending: Cell<bool>,
    load: Cell<Load>,
}

#[wasm_bindgen(
    wasm_bindgen_futures = worker::wasm_bindgen_futures,
    js_sys = worker::js_sys
)]
impl FunnelTally {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: Env) -> Self {
        Self {
            state: State::from(state),
            env,
            buffer: RefCell::new(Buffer::default()),
            loaded: Cell::new(false),
            last_sent_ms: Cell::new(0),
            sending: Cell::new(false),
            load: Cell::new(Load::default()),
        }
    }

    pub async fn fetch(&self, req: web_sys::Request) -> std::result::Result<JsValue, JsValue> {
        let url = req.url();
        let (status, body) = if url.ends_with("/load") {
            (200, self.load.get().text())
        } else {
            let now_ms = crate::clock::now_ms();
            self.load.set(self.load.get().count(now_ms));
            let text = JsFuture::from(req.text()?)
                .await?
                .as_string()
                .unwrap_or_default();
            match self.take(&text, now_ms).await {
                Ok(()) => (204, String::new()),
                Err(e) => (500, e.to_string()),
            }
        };
        let init = web_sys::ResponseInit::new();
        init.set_status(status);
        let body = (status != 204).then_some(body.as_str());
        Ok(web_sys::Response::new_with_opt_str_and_init(body, &init)?.into())
    }

    /// Tries again to deliver what waits.
    pub async fn alarm(&self) -> std::result::Result<JsValue, JsValue> {
        self.restore().await?;
        self.send(crate::clock::now_ms()).await?;
        Ok(JsValue::UNDEFINED)
    }
}

impl FunnelTally {
    /// Counts not delivered before this object was last evicted.
    async fn restore(&self) -> Result<()> {
        if self.loaded.replace(true) {
            return Ok(());
        }
        let pending: Option<Vec<EdgeReport>> =
            self.state.storage().get(PENDING).await.ok().flatten();
        for report in pending.unwrap_or_default() {
            self.buffer.borrow_mut().put_back(report);
        }
        Ok(())
    }

    async fn take(&self, text: &str, now_ms: i64) -> Result<()> {
        let report: EdgeReport = serde_json::from_str(text)?;
        self.restore().await?;
        self.buffer.borrow_mut().put_back(report);
        let config =
            crate::config::load(&self.env).map_err(|e| worker::Error::RustError(e.0.message))?;
        if now_ms - self.last_sent_ms.get() >= config.report_every_ms as i64 {
            self.send(now_ms).await?;
        } else {
            self.keep(now_ms + config.report_every_ms as i64).await?;
        }
        Ok(())
    }

    /// Sends what waits, a few bounded reports; keeps what could not go.
    async fn send(&self, now_ms: i64) -> Result<()> {
        if self.sending.replace(true) {
            return Ok(());
        }
        self.last_sent_ms.set(now_ms);
        let config =
            crate::config::load(&self.env).map_err(|e| worker::Error::RustError(e.0.message))?;
        let mut delivered = true;
        for _ in 0..MAX_REPORTS_PER_TURN {
            let Some(report) = self.buffer.borrow_mut().take() else {
                break;
            };
            if !origin::report(&config, EDGE_REPORT_PATH, &report, now_ms).await {
                self.buffer.borrow_mut().put_back(report);
                delivered = false;
                break;
            }
        }
        self.sending.set(false);
        let retry_at = now_ms + config.report_every_ms.max(1000) as i64;
        if delivered && self.buffer.borrow().is_empty() {
            self.state.storage().delete(PENDING).await?;
            Ok(())
        } else {
            self.keep(retry_at).await
        }
    }

    /// Stores what waits and sets the alarm that sends it.
    async fn keep(&self, at_ms: i64) -> Result<()> {
        let mut reports = Vec::new();
        {
            let mut buffer = self.buffer.borrow_mut();
            while let Some(report) = buffer.take() {
                reports.push(report);
            }
            for report in reports.iter().cloned() {
                buffer.put_back(report);
            }
        }
        self.state.storage().put(PENDING, reports).await?;
        // An alarm's time is given as milliseconds from now.
        let in_ms = (at_ms - crate::clock::now_ms()).max(1);
        self.state.storage().set_alarm(in_ms).await
    }
}
