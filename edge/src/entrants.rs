//! Queue entrants, kept by the user shards (`DedupShard`): the shard that owns
//! a user records when they first joined an event's queue (in storage, so a
//! pass is the same after an eviction), counts its entrants before and after
//! the opening for the event's frontier, and sends the joins to the origin in
//! batches for the draw record when the frontier asks for the counts — never a
//! request to the origin per join.

use std::cell::RefCell;
use std::collections::HashMap;

use rushgate_core::queue::wire::{self, Join, MAX_JOINS_PER_REPORT, QueueReport};
use worker::{ListOptions, Result, State};

use crate::config::Config;
use crate::origin;

/// Storage key of a join: `q:<event>:<user>` → joined at (unix ms).
fn key(event_id: i64, user_id: i64) -> String {
    format!("q:{event_id}:{user_id}")
}

/// One event's entrants in this shard.
#[derive(Default)]
struct EventBook {
    loaded: bool,
    joined: HashMap<i64, i64>,
    pre: u64,
    late: u64,
    /// Joins the origin has not acknowledged yet.
    unreported: Vec<Join>,
}

/// Every event's entrants in this shard.
#[derive(Default)]
pub struct Book {
    events: HashMap<i64, EventBook>,
}

/// A join as the worker asks it: `join?e=<event>&u=<user>&t=<now ms>&o=<opens
/// ms>&n=<shards>&s=<session id hex>&g=<generation>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinAsk {
    pub event_id: i64,
    pub user_id: i64,
    pub now_ms: i64,
    pub opens_at_ms: i64,
    pub shards: u32,
    pub sid: [u8; 16],
    pub generation: u32,
}

impl JoinAsk {
    pub fn url(&self) -> String {
        format!(
            "https://dedup.internal/join?e={}&u={}&t={}&o={}&n={}&s={}&g={}",
            self.event_id,
            self.user_id,
            self.now_ms,
            self.opens_at_ms,
            self.shards,
            hex::encode(self.sid),
            self.generation
        )
    }

    pub fn session(&self) -> rushgate_core::dedup::SessionRef {
        rushgate_core::dedup::SessionRef {
            user_id: self.user_id,
            sid: self.sid,
            generation: self.generation,
        }
    }

    pub fn parse(url: &str) -> Option<Self> {
        let field = |name: &str| crate::query::field(url, name);
        Some(Self {
            event_id: field("e")?.parse().ok()?,
            user_id: field("u")?.parse().ok()?,
            now_ms: field("t")?.parse().ok()?,
            opens_at_ms: field("o")?.parse().ok()?,
            shards: field("n")?.parse().ok()?,
            sid: crate::query::bytes16(field("s")?)?,
            generation: crate::query::generation(url)?,
        })
    }
}

/// The shard's answer to a join: `<joined ms> <late joiners ahead>`.
pub fn parse_joined(text: &str) -> Option<(i64, u64)> {
    let (joined, ahead) = text.split_once(' ')?;
    Some((joined.parse().ok()?, ahead.parse().ok()?))
}

/// The shard's answer to `entrants`: `<pre> <late>`.
pub fn parse_counts(text: &str) -> Option<(u64, u64)> {
    let (pre, late) = text.split_once(' ')?;
    Some((pre.parse().ok()?, late.parse().ok()?))
}

impl Book {
    /// Reads an event's joins from storage on first use (after an eviction,
    /// all are sent to the origin again: it keeps the first of each).
    async fn load(
        book: &RefCell<Self>,
        state: &State,
        event_id: i64,
        opens_at_ms: i64,
    ) -> Result<()> {
        if book
            .borrow()
            .events
            .get(&event_id)
            .is_some_and(|e| e.loaded)
        {
            return Ok(());
        }
        let prefix = format!("q:{event_id}:");
        let stored = state
            .storage()
            .list_with_options(ListOptions::new().prefix(&prefix))
            .await?;
        let mut loaded = EventBook {
            loaded: true,
            ..EventBook::default()
        };
        for entry in stored.entries() {
            let Ok(pair) = entry.map(|e| worker::js_sys::Array::from(&e)) else {
                continue;
            };
            let user = pair
                .get(0)
                .as_string()
                .and_then(|k| k[prefix.len()..].parse::<i64>().ok());
            if let (Some(user_id), Some(joined_ms)) = (user, pair.get(1).as_f64()) {
                let joined_ms = joined_ms as i64;
                loaded.joined.insert(user_id, joined_ms);
                loaded.unreported.push(Join { user_id, joined_ms });
            }
        }
        loaded.pre = loaded.joined.values().filter(|t| **t < opens_at_ms).count() as u64;
        loaded.late = loaded.joined.len() as u64 - loaded.pre;
        book.borrow_mut().events.insert(event_id, loaded);
        Ok(())
    }

    /// Records a first join, or finds the earlier one; answers `<joined ms>
    /// <late ahead>`, the late joiners ahead estimated from this shard's
    /// count times the number of shards.
    pub async fn join(book: &RefCell<Self>, state: &State, ask: &JoinAsk) -> Result<String> {
        Self::load(book, state, ask.event_id, ask.opens_at_ms).await?;
        let known = book
            .borrow()
            .events
            .get(&ask.event_id)
            .and_then(|e| e.joined.get(&ask.user_id).copied());
        let joined_ms = match known {
            Some(joined_ms) => joined_ms,
            None => {
                state
                    .storage()
                    .put(&key(ask.event_id, ask.user_id), ask.now_ms)
                    .await?;
                let mut b = book.borrow_mut();
                let e = b.events.entry(ask.event_id).or_default();
                // Another ask for the same user may have landed meanwhile.
                if let Some(first) = e.joined.get(&ask.user_id) {
                    *first
                } else {
                    e.joined.insert(ask.user_id, ask.now_ms);
                    if ask.now_ms < ask.opens_at_ms {
                        e.pre += 1;
                    } else {
                        e.late += 1;
                    }
                    e.unreported.push(Join {
                        user_id: ask.user_id,
                        joined_ms: ask.now_ms,
                    });
                    ask.now_ms
                }
            }
        };
        let late_ahead = if joined_ms < ask.opens_at_ms {
            0
        } else {
            let b = book.borrow();
            let e = &b.events[&ask.event_id];
            let earlier = e
                .joined
                .values()
                .filter(|t| **t >= ask.opens_at_ms && **t < joined_ms)
                .count() as u64;
            earlier * u64::from(ask.shards.max(1))
        };
        Ok(format!("{joined_ms} {late_ahead}"))
    }

    /// The draw numbers (from the queue's `seed`) of the event's pre-queue
    /// entrants in this shard.
    pub async fn pre_numbers(
        book: &RefCell<Self>,
        state: &State,
        event_id: i64,
        opens_at_ms: i64,
        seed: &rushgate_core::draw::Seed,
    ) -> Result<Vec<f64>> {
        Self::load(book, state, event_id, opens_at_ms).await?;
        let b = book.borrow();
        Ok(b.events.get(&event_id).map_or_else(Vec::new, |e| {
            e.joined
                .iter()
                .filter(|(_, joined)| **joined < opens_at_ms)
                .map(|(user, _)| {
                    rushgate_core::queue::fraction(&rushgate_core::draw::number_bytes(seed, *user))
                })
                .collect()
        }))
    }

    /// The event's counts, after sending the joins the origin has not had.
    pub async fn counts(
        book: &RefCell<Self>,
        state: &State,
        config: &Config,
        event_id: i64,
        opens_at_ms: i64,
        now_ms: i64,
    ) -> Result<String> {
        Self::load(book, state, event_id, opens_at_ms).await?;
        loop {
            let batch: Vec<Join> = {
                let mut b = book.borrow_mut();
                let e = b.events.entry(event_id).or_default();
                let n = e.unreported.len().min(MAX_JOINS_PER_REPORT);
                e.unreported.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            let report = QueueReport {
                joins: batch.clone(),
                frontier: None,
            };
            if !send(config, event_id, &report, now_ms).await {
                let mut b = book.borrow_mut();
                let e = b.events.entry(event_id).or_default();
                e.unreported.splice(0..0, batch);
                break;
            }
        }
        let b = book.borrow();
        let e = &b.events[&event_id];
        Ok(format!("{} {}", e.pre, e.late))
    }
}

/// Sends a queue report to the origin, attested; whether it was taken.
pub async fn send(config: &Config, event_id: i64, report: &QueueReport, now_ms: i64) -> bool {
    origin::report(config, &wire::internal_path(event_id), report, now_ms).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_and_answers_round_trip() {
        let ask = JoinAsk {
            event_id: 3,
            user_id: 77,
            now_ms: 1_700_000_000_123,
            opens_at_ms: 1_700_000_005_000,
            shards: 64,
            sid: [7; 16],
            generation: 1,
        };
        assert_eq!(JoinAsk::parse(&ask.url()), Some(ask));
        assert_eq!(parse_joined("1700 128"), Some((1700, 128)));
        assert_eq!(parse_counts("5 6"), Some((5, 6)));
        assert_eq!(parse_counts("5"), None);
    }
}
