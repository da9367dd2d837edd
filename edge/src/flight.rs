//! This isolate's side of the sale's desk (`desk`): per tier its lease of
//! units in flight, the origin's freshest word and the sold-out hold
//! (`core::desk::Local`); per event the whole crowd's arrival rate as the desk
//! last said it, and the opening draw's drawn share once the desk fixed it.
//! What is kept here is a cache of what the desk decided, never a decision
//! of its own: an attempt goes to the origin only within a lease.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use rushgate_core::api::EventView;
use rushgate_core::desk::{Asked, Lease, LeaseAsk, Local, Room, Word};
use rushgate_core::opening;
use worker::{Delay, Env};

use crate::clock;
use crate::config::Config;
use crate::desk;
use crate::error::EdgeError;

/// How long the event's arrival rate from the desk counts, ms; an isolate
/// reports its own rate at least this often while it sees arrivals.
const RATE_FRESH_MS: i64 = 1_000;

#[derive(Default)]
struct Event {
    /// The desk's last word on the event's arrival rate, and when.
    rate: Option<(f64, i64)>,
    /// The opening draw's drawn share, once fixed.
    share: Option<f64>,
    /// When this isolate's ask for the share started, while it is out.
    share_asked_ms: Option<i64>,
}

/// How long a request waits for its isolate's ask for the drawn share, ms
/// (the desk's first answer asks every shard).
const SHARE_WAIT_MS: i64 = 5_000;

thread_local! {
    static TIERS: RefCell<HashMap<(i64, i64), Local>> = RefCell::new(HashMap::new());
    static EVENTS: RefCell<HashMap<i64, Event>> = RefCell::new(HashMap::new());
}

/// The snapshot's word on a tier.
pub fn snapshot_word(view: &EventView, tier_id: i64, fetched_ms: i64) -> Word {
    Word {
        remaining: view
            .tiers
            .iter()
            .find(|t| t.id == tier_id)
            .map_or(0, |t| t.remaining),
        at_ms: fetched_ms,
    }
}

/// Whether the tier is known to be sold out at `now_ms`.
pub fn sold_out(event_id: i64, tier_id: i64, snapshot: Word, now_ms: i64) -> bool {
    TIERS.with(|t| {
        t.borrow()
            .get(&(event_id, tier_id))
            .copied()
            .unwrap_or_default()
            .sold_out(snapshot, now_ms)
    })
}

/// Remembers what the origin said is left of a tier (an answer's
/// `X-Rushgate-Remaining`).
pub fn learn(event_id: i64, tier_id: i64, word: Word) {
    TIERS.with(|t| {
        t.borrow_mut()
            .entry((event_id, tier_id))
            .or_default()
            .learn(word)
    });
}

/// Units of a tier this isolate has in flight to the origin within its lease;
/// dropping it gives them back to the lease, [`InFlight::sold`] spends them.
pub struct InFlight {
    key: (i64, i64),
    units: i64,
}

impl InFlight {
    /// The origin held the units: the lease is spent by as many.
    pub fn sold(self) {
        TIERS.with(|t| {
            if let Some(local) = t.borrow_mut().get_mut(&self.key) {
                local.slice.sold(self.units);
            }
        });
        std::mem::forget(self);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        TIERS.with(|t| {
            if let Some(local) = t.borrow_mut().get_mut(&self.key) {
                local.slice.give_back(self.units);
            }
        });
    }
}

/// How long a request waits for another of its isolate's asks at the desk,
/// and how often it looks.
const WAIT_FOR_ASK_MS: u64 = 1_500;
const LOOK_EVERY_MS: u64 = 10;

/// An attempt for `quantity` units of a tier, admitted by its round: room for
/// it in this isolate's lease, asking the desk when the lease is spent or
/// old — one request asks for all the isolate's, the others wait for its
/// answer — ; `None` when there is none now (not admitted this time).
/// `arrivals_per_s` is this isolate's recent rate, reported on the way.
pub async fn room(
    env: &Env,
    event_id: i64,
    tier_id: i64,
    quantity: i64,
    snapshot: Word,
    arrivals_per_s: f64,
    now_ms: i64,
) -> Result<Option<InFlight>, EdgeError> {
    let key = (event_id, tier_id);
    let in_flight = || InFlight {
        key,
        units: quantity.max(1),
    };
    let mut waited_ms = 0;
    loop {
        let now = crate::clock::now_ms().max(now_ms);
        let (room, asking) = TIERS.with(|t| {
            let mut tiers = t.borrow_mut();
            let local = tiers.entry(key).or_default();
            (local.slice.take(quantity, now), local.asking)
        });
        match room {
            Room::Go => return Ok(Some(in_flight())),
            Room::Full => return Ok(None),
            Room::Ask if !asking => break,
            // Another request of the isolate is asking: its answer serves
            // this one too (requests cannot await each other's I/O, but
            // they share memory).
            Room::Ask if waited_ms >= WAIT_FOR_ASK_MS => return Ok(None),
            Room::Ask => {
                if waited_ms == 0 {
                    TIERS.with(|t| {
                        if let Some(local) = t.borrow_mut().get_mut(&key) {
                            local.waiting += quantity.max(1);
                        }
                    });
                }
                worker::Delay::from(std::time::Duration::from_millis(LOOK_EVERY_MS)).await;
                waited_ms += LOOK_EVERY_MS;
            }
        }
    }
    let (word, asked) = TIERS.with(|t| {
        let mut tiers = t.borrow_mut();
        let local = tiers.entry(key).or_default();
        local.asking = true;
        // What is on its way and what waits: the isolate holds no more of
        // the stock than it is about to send, so spraying requests over many
        // isolates does not scatter the stock into idle leases.
        let want = local.slice.in_flight + quantity.max(1) + local.waiting;
        local.waiting = 0;
        (local.word(snapshot), local.slice.ask(want))
    });
    let lease = ask_desk(env, event_id, tier_id, asked, word, arrivals_per_s, now_ms).await;
    TIERS.with(|t| {
        let mut tiers = t.borrow_mut();
        let local = tiers.entry(key).or_default();
        local.asking = false;
        if let Ok(lease) = &lease {
            local.slice.renewed(lease, asked);
            if lease.remaining <= 0 {
                local.learn(Word {
                    remaining: 0,
                    at_ms: now_ms,
                });
            }
        }
    });
    lease?;
    let room = TIERS.with(|t| {
        let mut tiers = t.borrow_mut();
        let local = tiers.entry(key).or_default();
        local
            .slice
            .take(quantity, crate::clock::now_ms().max(now_ms))
    });
    Ok((room == Room::Go).then(in_flight))
}

async fn ask_desk(
    env: &Env,
    event_id: i64,
    tier_id: i64,
    asked: Asked,
    word: Word,
    arrivals_per_s: f64,
    now_ms: i64,
) -> Result<Lease, EdgeError> {
    let ask = LeaseAsk {
        isolate: crate::clock::isolate_id(),
        tier_id,
        want: asked.want,
        in_flight: asked.in_flight,
        word: Some(word),
        arrivals_per_s,
        now_ms,
    };
    let text = desk::ask(env, event_id, &desk::lease_url(&ask)).await?;
    let lease = desk::parse_lease(&text).ok_or_else(EdgeError::origin_unavailable)?;
    EVENTS.with(|e| {
        e.borrow_mut().entry(event_id).or_default().rate = Some((lease.arrivals_per_s, now_ms));
    });
    Ok(lease)
}

/// Tells the desk what the origin just said of a tier (after a reservation or
/// a refusal), keeping of this isolate's lease only what is still on its way
/// or waiting: the desk learns every sale as it happens, so it never leases
/// out units that are gone, and units this isolate does not need go back.
pub async fn tell_desk(env: Env, event_id: i64, tier_id: i64, word: Word, arrivals_per_s: f64) {
    let key = (event_id, tier_id);
    let asked = TIERS.with(|t| {
        let tiers = t.borrow();
        let slice = tiers.get(&key).map(|local| local.slice).unwrap_or_default();
        let waiting = tiers.get(&key).map_or(0, |local| local.waiting);
        slice.ask(slice.in_flight + waiting)
    });
    let now_ms = crate::clock::now_ms();
    match ask_desk(&env, event_id, tier_id, asked, word, arrivals_per_s, now_ms).await {
        Ok(lease) => TIERS.with(|t| {
            if let Some(local) = t.borrow_mut().get_mut(&key) {
                local.slice.renewed(&lease, asked);
            }
        }),
        Err(e) => worker::console_warn!("telling the desk failed: {:?}", e.0),
    }
}

/// The event's arrival rate for the automatic lottery: the desk's sum over
/// the isolates while fresh; else this isolate's own rate (and it reports it:
/// a lease ask for the units it holds).
pub async fn event_rate(
    env: &Env,
    event_id: i64,
    tier_id: i64,
    snapshot: Word,
    arrivals_per_s: f64,
    now_ms: i64,
) -> f64 {
    let known = EVENTS.with(|e| e.borrow().get(&event_id).and_then(|ev| ev.rate));
    if let Some((rate, at)) = known
        && now_ms - at < RATE_FRESH_MS
    {
        return rate.max(arrivals_per_s);
    }
    let key = (event_id, tier_id);
    let (asking, asked, word) = TIERS.with(|t| {
        let mut tiers = t.borrow_mut();
        let local = tiers.entry(key).or_default();
        let asking = local.asking;
        local.asking = true;
        let want = local.slice.units.max(local.slice.in_flight);
        (asking, local.slice.ask(want), local.word(snapshot))
    });
    if asking {
        return known.map_or(arrivals_per_s, |(r, _)| r.max(arrivals_per_s));
    }
    let lease = ask_desk(env, event_id, tier_id, asked, word, arrivals_per_s, now_ms).await;
    TIERS.with(|t| {
        if let Some(local) = t.borrow_mut().get_mut(&key) {
            local.asking = false;
            if let Ok(lease) = &lease {
                local.slice.renewed(lease, asked);
            }
        }
    });
    match lease {
        Ok(lease) => lease.arrivals_per_s.max(arrivals_per_s),
        Err(_) => arrivals_per_s,
    }
}

/// The opening draw's drawn share: 1.0 before the draw's end `ends_ms`; then
/// the desk's, fixed once for the sale from every shard's entrants (and kept
/// here after the first ask).
pub async fn drawn_share(
    env: &Env,
    config: &Config,
    view: &EventView,
    now_ms: i64,
    ends_ms: i64,
) -> Result<f64, EdgeError> {
    if now_ms < ends_ms {
        return Ok(1.0);
    }
    let known = |event_id| {
        EVENTS.with(|e| {
            e.borrow()
                .get(&event_id)
                .map(|ev| (ev.share, ev.share_asked_ms))
        })
    };
    // One ask per isolate: at the draw's end every ticket comes back at once,
    // and the desk would see each of them. The others look for its answer on
    // timers of their own (a request cannot await another's I/O).
    let mut pause_ms = 10;
    loop {
        match known(view.id) {
            Some((Some(share), _)) => return Ok(share),
            Some((None, Some(asked_ms))) if clock::now_ms() - asked_ms < SHARE_WAIT_MS => {
                Delay::from(Duration::from_millis(pause_ms)).await;
                pause_ms = (pause_ms * 2).min(250);
            }
            _ => break,
        }
    }
    let asked_ms = clock::now_ms();
    EVENTS.with(|e| e.borrow_mut().entry(view.id).or_default().share_asked_ms = Some(asked_ms));
    let share = ask_share(env, config, view).await;
    EVENTS.with(|e| {
        let mut events = e.borrow_mut();
        let event = events.entry(view.id).or_default();
        event.share_asked_ms = None;
        if let Ok(share) = share {
            event.share = Some(share);
        }
    });
    share
}

/// Asks the desk for the drawn share.
async fn ask_share(env: &Env, config: &Config, view: &EventView) -> Result<f64, EdgeError> {
    let remaining = view.tiers.iter().map(|t| t.remaining).sum();
    let url = desk::share_url(view.id, opening::drawn(remaining), config.dedup_shards);
    let text = desk::ask(env, view.id, &url).await?;
    opening::parse_wire_number(&text).ok_or_else(EdgeError::origin_unavailable)
}
