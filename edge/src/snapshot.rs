//! What this isolate knows about an event: the origin's public view, refreshed
//! at most once per TTL, plus what the edge learned since — how many units the
//! origin last said were left, tiers it said are sold out, how many units this
//! isolate has in flight to it, how fast purchase attempts arrive (for
//! automatic admission) and who entered its opening draw.
//! Phases are computed from the clock at decision time, so a sale opens on time
//! whatever the age of the snapshot.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rushgate_core::api::EventView;
use rushgate_core::velocity::Rate;
use rushgate_core::{ErrorCode, Phase, Schedule};
use rushgate_core::{admission, opening};

use crate::config::Config;
use crate::error::EdgeError;
use crate::origin;

/// How long an origin answer saying nothing is left makes the edge answer
/// `sold_out` itself, ms; after that an attempt may ask again (units come back
/// when unpaid orders expire).
const SOLD_OUT_HOLD_MS: i64 = 5_000;

struct Entry {
    view: Option<Rc<EventView>>,
    fetched_ms: i64,
    /// Purchase attempts, and asks at the door (challenges, joins, URLs).
    buys: Rate,
    door: Rate,
    /// The opening draw's entrants seen here (user → number), and the share
    /// drawn once the draw ended.
    entrants: HashMap<i64, f64>,
    drawn_share: Option<f64>,
}

/// A tier's traffic to the origin, as this isolate sees it.
#[derive(Default)]
struct Flight {
    /// Units in attempts forwarded and not answered yet.
    units: i64,
    /// Units left and when the origin said so.
    said: Option<(i64, i64)>,
}

thread_local! {
    static EVENTS: RefCell<HashMap<i64, Entry>> = RefCell::new(HashMap::new());
    /// (event id, tier id) → its flight; kept apart from the snapshots so it
    /// counts from the first attempt, whether or not a snapshot is stored yet.
    static FLIGHTS: RefCell<HashMap<(i64, i64), Flight>> = RefCell::new(HashMap::new());
}

/// The public view of `event_id`, at most `event_ttl_ms` old (older if the origin
/// cannot be reached but a copy exists); `None` if the event is not public.
pub async fn view(
    config: &Rc<Config>,
    event_id: i64,
    now_ms: i64,
) -> Result<Option<Rc<EventView>>, EdgeError> {
    let cached = EVENTS.with(|e| {
        e.borrow()
            .get(&event_id)
            .map(|entry| (entry.view.clone(), now_ms - entry.fetched_ms))
    });
    if let Some((view, age)) = &cached
        && *age < config.event_ttl_ms as i64
    {
        return Ok(view.clone());
    }
    let path = format!("/api/events/{event_id}");
    let Some(_claim) = origin::Refresh::claim(&path) else {
        // Another request of this isolate is refreshing: decide on the last copy.
        if let Some((view, _)) = cached {
            return Ok(view);
        }
        return fetch(config, &path).await;
    };
    let fetched = fetch(config, &path).await;
    match fetched {
        Ok(view) => {
            EVENTS.with(|e| {
                let mut events = e.borrow_mut();
                let entry = events.entry(event_id).or_insert_with(|| Entry {
                    view: None,
                    fetched_ms: 0,
                    buys: Rate::new(now_ms),
                    door: Rate::new(now_ms),
                    entrants: HashMap::new(),
                    drawn_share: None,
                });
                entry.view = view.clone();
                // The view was read at the origin after this request began.
                entry.fetched_ms = crate::clock::now_ms().max(now_ms);
            });
            Ok(view)
        }
        // Keep deciding from the last copy while the origin is unreachable.
        Err(e) => match cached {
            Some((view, _)) => Ok(view),
            None => Err(e),
        },
    }
}

/// The public view of `event_id`, or 404 `not_found`.
pub async fn public_view(
    config: &Rc<Config>,
    event_id: i64,
    now_ms: i64,
) -> Result<Rc<EventView>, EdgeError> {
    view(config, event_id, now_ms)
        .await?
        .ok_or_else(|| EdgeError::new(rushgate_core::ErrorCode::NotFound, "no such event"))
}

async fn fetch(config: &Config, path: &str) -> Result<Option<Rc<EventView>>, EdgeError> {
    let (status, body) = origin::get(config, path).await?;
    match status {
        200 => {
            let view: EventView =
                serde_json::from_slice(&body).map_err(|_| EdgeError::origin_unavailable())?;
            Ok(Some(Rc::new(view)))
        }
        404 => Ok(None),
        _ => Err(EdgeError::origin_unavailable()),
    }
}

/// The phase at `now_ms`, from the snapshot's schedule and remaining stock.
pub fn phase(view: &EventView, now: time::OffsetDateTime) -> Phase {
    let remaining: i64 = view.tiers.iter().map(|t| t.remaining).sum();
    Schedule {
        visible_at: view.visible_at,
        opens_at: view.opens_at,
        closes_at: view.closes_at,
        presale: view.presale,
    }
    .phase(now, remaining)
}

/// Refuses a queue join or a challenge unless the sale's door is open at
/// `now` (`core::queue::check_door_phase`).
pub fn door_phase(view: &EventView, now: time::OffsetDateTime) -> Result<(), EdgeError> {
    rushgate_core::queue::check_door_phase(phase(view, now)).map_err(|code| match code {
        ErrorCode::NotFound => EdgeError::new(code, "no such event"),
        code => code.into(),
    })
}

/// Whether the tier is known to be sold out: the snapshot says nothing remains,
/// or the origin said so recently.
pub fn tier_sold_out(view: &EventView, tier_id: i64, now_ms: i64) -> bool {
    let snapshot_says = view
        .tiers
        .iter()
        .find(|t| t.id == tier_id)
        .is_some_and(|t| t.remaining <= 0);
    snapshot_says
        || FLIGHTS.with(|f| {
            f.borrow()
                .get(&(view.id, tier_id))
                .and_then(|flight| flight.said)
                .is_some_and(|(left, at_ms)| left <= 0 && now_ms < at_ms + SOLD_OUT_HOLD_MS)
        })
}

/// Remembers how many units of the tier the origin said are left (none left
/// counts as sold out for `SOLD_OUT_HOLD_MS`).
pub fn learn_remaining(event_id: i64, tier_id: i64, remaining: i64, now_ms: i64) {
    FLIGHTS.with(|f| {
        f.borrow_mut().entry((event_id, tier_id)).or_default().said = Some((remaining, now_ms));
    });
}

/// Units of the tier in attempts this isolate forwarded and has no answer to.
/// Dropping it gives them back.
pub struct InFlight {
    key: (i64, i64),
    units: i64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        FLIGHTS.with(|f| {
            if let Some(flight) = f.borrow_mut().get_mut(&self.key) {
                flight.units -= self.units;
            }
        });
    }
}

/// Takes `quantity` units of the tier in flight if the units already in flight
/// leave room for them within what is left (the origin's last word if newer than
/// the snapshot); `None` means the attempt would most likely find nothing.
pub fn take_in_flight(view: &EventView, tier_id: i64, quantity: i64) -> Option<InFlight> {
    let snapshot_remaining = view.tiers.iter().find(|t| t.id == tier_id)?.remaining;
    let fetched_ms = EVENTS.with(|e| e.borrow().get(&view.id).map_or(0, |entry| entry.fetched_ms));
    let key = (view.id, tier_id);
    FLIGHTS.with(|f| {
        let mut flights = f.borrow_mut();
        let flight = flights.entry(key).or_default();
        let remaining = match flight.said {
            Some((said, at_ms)) if at_ms >= fetched_ms => said,
            _ => snapshot_remaining,
        };
        if !admission::within_stock(flight.units, quantity, remaining) {
            return None;
        }
        let units = quantity.max(1);
        flight.units += units;
        Some(InFlight { key, units })
    })
}

/// Counts a purchase attempt; returns the recent arrival rate per second.
pub fn arrival(event_id: i64, now_ms: i64) -> f64 {
    EVENTS.with(|e| {
        e.borrow_mut()
            .get_mut(&event_id)
            .map_or(0.0, |entry| entry.buys.count(now_ms))
    })
}

/// Counts an ask at the event's door; returns the recent rate per second.
pub fn door_arrival(event_id: i64, now_ms: i64) -> f64 {
    EVENTS.with(|e| {
        e.borrow_mut()
            .get_mut(&event_id)
            .map_or(0.0, |entry| entry.door.count(now_ms))
    })
}

/// Counts `user_id`, whose draw number is `number`, among the event's
/// opening draw entrants here.
pub fn enter_draw(event_id: i64, user_id: i64, number: f64) {
    EVENTS.with(|e| {
        if let Some(entry) = e.borrow_mut().get_mut(&event_id) {
            entry.entrants.insert(user_id, number);
        }
    });
}

/// The share of the opening draw's number space that is drawn
/// (`core::opening::share` of the entrants seen here and the units left),
/// fixed at its first reading after the draw's end `ends_ms`; all of it
/// before.
pub fn drawn_share(view: &EventView, now_ms: i64, ends_ms: i64) -> f64 {
    if now_ms < ends_ms {
        return 1.0;
    }
    let remaining = view.tiers.iter().map(|t| t.remaining).sum();
    EVENTS.with(|e| {
        let mut events = e.borrow_mut();
        let Some(entry) = events.get_mut(&view.id) else {
            return opening::share(&mut [], remaining);
        };
        *entry.drawn_share.get_or_insert_with(|| {
            let mut numbers: Vec<f64> = entry.entrants.drain().map(|(_, n)| n).collect();
            opening::share(&mut numbers, remaining)
        })
    })
}
