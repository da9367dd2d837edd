//! Turning stored events into API views, with the phase and remaining stock as of
//! `now`.

use rushgate_core::api::{DrawCommitment, EventSummary, EventView, TierView};
use rushgate_core::draw;
use time::OffsetDateTime;

use super::repo::EventRecord;
use crate::sale::stock::{self, Remaining};

fn tiers(event: &EventRecord, remaining: &Remaining) -> Vec<TierView> {
    event
        .tiers
        .iter()
        .map(|t| TierView {
            id: t.id,
            name: t.name.clone(),
            price_cents: t.price_cents,
            stock_total: i64::from(t.stock),
            remaining: remaining.get(&t.id).copied().unwrap_or(0),
        })
        .collect()
}

pub fn full(event: &EventRecord, now: OffsetDateTime, remaining: &Remaining) -> EventView {
    EventView {
        id: event.id,
        name: event.name.clone(),
        venue: event.venue.clone(),
        description: event.description.clone(),
        visible_at: event.schedule.visible_at,
        opens_at: event.schedule.opens_at,
        closes_at: event.schedule.closes_at,
        per_user_limit: event.per_user_limit,
        per_order_limit: event.per_order_limit,
        payment_window_s: event.payment_window_s,
        dedup_window_s: event.dedup_window_s,
        admission: event.admission.clone(),
        buckets: event.buckets,
        challenge: event.challenge,
        presale: event.schedule.presale,
        velocity: event.velocity,
        status: event.status,
        phase: event.phase(now, stock::total(event, remaining)),
        server_time: now,
        tiers: tiers(event, remaining),
        review_note: event.review_note.clone(),
        draw: event.draw_seed.as_ref().map(|seed| DrawCommitment {
            commitment: draw::commitment(seed),
        }),
    }
}

/// What anyone may see of an event: [`full`] without the review's note, which
/// is between the organiser and the admins.
pub fn public(event: &EventRecord, now: OffsetDateTime, remaining: &Remaining) -> EventView {
    EventView {
        review_note: None,
        ..full(event, now, remaining)
    }
}

pub fn summary(event: &EventRecord, now: OffsetDateTime, remaining: &Remaining) -> EventSummary {
    EventSummary {
        id: event.id,
        name: event.name.clone(),
        venue: event.venue.clone(),
        opens_at: event.schedule.opens_at,
        closes_at: event.schedule.closes_at,
        phase: event.phase(now, stock::total(event, remaining)),
        tiers: tiers(event, remaining),
    }
}
