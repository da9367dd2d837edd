//! What this isolate knows about an event: the origin's public view, refreshed
//! at most once per TTL, and how fast purchase attempts and asks at the door
//! arrive here (the sale's desk sums the isolates' rates: `flight`). What the
//! edge learned since the view (the origin's word, leases of units in flight,
//! the opening draw's share) is `flight`'s. Phases are computed from the clock
//! at decision time, so a sale opens on time whatever the age of the snapshot.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rushgate_core::api::EventView;
use rushgate_core::velocity::Rate;
use rushgate_core::{ErrorCode, Phase, Schedule};

use crate::config::Config;
use crate::error::EdgeError;
use crate::location;

struct Entry {
    view: Option<Rc<EventView>>,
    fetched_ms: i64,
    /// Purchase attempts, and asks at the door (challenges, joins, URLs).
    buys: Rate,
    door: Rate,
}

thread_local! {
    static EVENTS: RefCell<HashMap<i64, Entry>> = RefCell::new(HashMap::new());
}

/// When this isolate's view of the event was read (ms; 0 if never).
pub fn fetched_ms(event_id: i64) -> i64 {
    EVENTS.with(|e| {
        e.borrow()
            .get(&event_id)
            .map_or(0, |entry| entry.fetched_ms)
    })
}

/// The public view of `event_id`, read through the location (`location`):
/// at most `EVENT_CACHE_TTL_S` old while the origin answers, older while it
/// does not; `None` if the event is not public. The parsed view is kept while
/// its copy is the same.
pub async fn view(
    config: &Rc<Config>,
    event_id: i64,
    now_ms: i64,
) -> Result<Option<Rc<EventView>>, EdgeError> {
    let path = format!("/api/events/{event_id}");
    let key = location::key(&path);
    let (copy, _) = location::read(config, None, &key, &path, now_ms).await?;
    let parsed = EVENTS.with(|e| {
        e.borrow()
            .get(&event_id)
            .filter(|entry| entry.fetched_ms == copy.fetched_ms)
            .map(|entry| entry.view.clone())
    });
    if let Some(view) = parsed {
        return Ok(view);
    }
    let view = match copy.status {
        200 => Some(Rc::new(
            serde_json::from_slice::<EventView>(&copy.body)
                .map_err(|_| EdgeError::origin_unavailable())?,
        )),
        404 => None,
        _ => return Err(EdgeError::origin_unavailable()),
    };
    EVENTS.with(|e| {
        let mut events = e.borrow_mut();
        let entry = events.entry(event_id).or_insert_with(|| Entry {
            view: None,
            fetched_ms: 0,
            buys: Rate::new(now_ms),
            door: Rate::new(now_ms),
        });
        entry.view = view.clone();
        entry.fetched_ms = copy.fetched_ms;
    });
    Ok(view)
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
