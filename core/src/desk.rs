//! An event's desk: what the edge decides for a whole sale, whatever the number
//! of isolates serving it, kept by one Durable Object per event (`SaleDesk`).
//!
//! - **Units in flight are leased.** An isolate may send the origin attempts
//!   for at most the units its lease holds; the desk leases out no more units
//!   than the origin's freshest word says are left, less what the other
//!   isolates hold. So the origin never has more units in flight than there
//!   are to win, however many isolates there are. A lease lasts
//!   [`LEASE_MS`] (renewed while used): an isolate that stops answering holds
//!   nothing for longer, and the origin has the last word on every attempt.
//! - **What the desk counts stays true under reordering.** Units an isolate
//!   has sent stay in its lease until their answers come back; answers to an
//!   isolate's asks are numbered, so a late one never replaces a newer one;
//!   units sold while an ask was on its way are taken off the lease it
//!   brings back; and of two words on what is left, a higher count replaces
//!   a lower one only a while later ([`RISE_AFTER_MS`]).
//! - **The crowd's arrival rate** is the sum of what each isolate saw lately,
//!   so the automatic lottery aims at the event's crowd, not an isolate's.
//! - **The desk paces its own load**: an isolate whose lease came back empty
//!   is told when to ask again, later the more isolates ask, so the object
//!   never answers more than [`TARGET_ASKS_PER_S`] such asks a second.
//!
//! Pure: the caller supplies the clock and owns where the state lives.

use std::collections::HashMap;

/// How long a lease holds, ms.
pub const LEASE_MS: i64 = 2_000;

/// How long an isolate's reported arrival rate counts, ms.
pub const RATE_TTL_MS: i64 = 3_000;

/// The asks a second the desk aims to stay under (a Durable Object takes
/// about 1,000 before it queues).
pub const TARGET_ASKS_PER_S: f64 = 400.0;

/// The soonest an isolate with an empty lease asks again, ms.
pub const MIN_RETRY_MS: i64 = 100;

/// The origin's word on a tier: units left at an instant (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub remaining: i64,
    pub at_ms: i64,
}

/// How much newer a word saying more is left must be to replace one saying
/// less, ms. Stock only falls during a sale but for units given back, while
/// answers reach the edge out of order: a reservation's answer can arrive
/// after a later one's, with a higher count. Within this span the lower
/// count holds.
pub const RISE_AFTER_MS: i64 = 1_000;

impl Word {
    /// What two words say together: the newer, unless it says more is left
    /// than a word less than [`RISE_AFTER_MS`] older — then that one.
    pub fn fresher(self, other: Option<Word>) -> Word {
        let Some(other) = other else { return self };
        let (old, new) = if other.at_ms > self.at_ms {
            (self, other)
        } else {
            (other, self)
        };
        if new.remaining <= old.remaining || new.at_ms - old.at_ms >= RISE_AFTER_MS {
            new
        } else {
            old
        }
    }
}

/// One isolate's ask for a tier's lease.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeaseAsk {
    /// The asking isolate's name.
    pub isolate: u64,
    pub tier_id: i64,
    /// Units it would like to hold.
    pub want: i64,
    /// Of those, units it has sent the origin already: they stay leased
    /// whatever is left, until the origin has answered them.
    pub in_flight: i64,
    /// The freshest word it has (an origin answer, or its snapshot's).
    pub word: Option<Word>,
    /// Purchase attempts a second it saw lately.
    pub arrivals_per_s: f64,
    pub now_ms: i64,
}

/// The desk's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lease {
    /// Units the isolate may have in flight, until `expires_ms`.
    pub units: i64,
    pub expires_ms: i64,
    /// Units left as the desk knows them (0: sold out, as far as anyone knows).
    pub remaining: i64,
    /// Purchase attempts a second at the whole event.
    pub arrivals_per_s: f64,
    /// With no units: when to ask again (ms).
    pub retry_at_ms: i64,
    /// The desk's number for this answer, greater than every earlier one's:
    /// answers can reach an isolate out of order, and only the latest holds.
    pub granted: i64,
}

#[derive(Debug, Default)]
struct Tier {
    word: Option<Word>,
    /// Isolate → (units, expires ms).
    leases: HashMap<u64, (i64, i64)>,
}

/// The desk's state for one event.
#[derive(Debug, Default)]
pub struct Desk {
    tiers: HashMap<i64, Tier>,
    /// The last answer's number: after a restart it starts again from the
    /// clock (µs), above any number given out before.
    granted: i64,
    /// Isolate → (arrivals per s, reported at ms).
    rates: HashMap<u64, (f64, i64)>,
}

impl Desk {
    /// Renews (or takes, or gives back with `want` 0) an isolate's lease on a
    /// tier.
    pub fn lease(&mut self, ask: &LeaseAsk) -> Lease {
        let now = ask.now_ms;
        self.rates
            .insert(ask.isolate, (ask.arrivals_per_s.max(0.0), now));
        self.rates.retain(|_, (_, at)| now - *at < RATE_TTL_MS);
        let arrivals_per_s = self.rates.values().map(|(r, _)| r).sum();
        let asking = self.rates.len().max(1) as f64;
        let tier = self.tiers.entry(ask.tier_id).or_default();
        if let Some(word) = ask.word {
            tier.word = Some(word.fresher(tier.word));
        }
        tier.leases.retain(|_, (_, expires)| *expires > now);
        tier.leases.remove(&ask.isolate);
        let remaining = tier.word.map_or(0, |w| w.remaining.max(0));
        let held: i64 = tier.leases.values().map(|(units, _)| units).sum();
        let sent = ask.in_flight.clamp(0, ask.want.max(0));
        let units = ask.want.max(0).min(remaining - held).max(sent);
        let expires_ms = now + LEASE_MS;
        if units > 0 {
            tier.leases.insert(ask.isolate, (units, expires_ms));
        }
        // Spread the empty-handed isolates' asks so that together they stay
        // under the target.
        let retry_ms = ((asking / TARGET_ASKS_PER_S) * 1000.0) as i64;
        self.granted = (self.granted + 1).max(now.saturating_mul(1000));
        Lease {
            units,
            expires_ms,
            remaining,
            arrivals_per_s,
            retry_at_ms: now + retry_ms.max(MIN_RETRY_MS),
            granted: self.granted,
        }
    }

    /// Units leased out on a tier at `now_ms` (tests, the load report).
    pub fn held(&self, tier_id: i64, now_ms: i64) -> i64 {
        self.tiers.get(&tier_id).map_or(0, |t| {
            t.leases
                .values()
                .filter(|(_, expires)| *expires > now_ms)
                .map(|(units, _)| units)
                .sum()
        })
    }
}

/// What an isolate holds of a tier: its lease and the units of it in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slice {
    pub units: i64,
    pub expires_ms: i64,
    pub in_flight: i64,
    /// Not before this instant ask the desk again (ms).
    pub ask_after_ms: i64,
    /// The number of the desk's answer the lease is from.
    pub granted: i64,
    /// Units sold from the slice's leases so far.
    pub sold_total: i64,
}

/// An ask on its way to the desk, as the slice was when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// Units asked for (0: a report).
    pub want: i64,
    /// Of those, units in flight.
    pub in_flight: i64,
    /// The slice's units sold so far.
    pub sold_total: i64,
}

/// What a slice lets an attempt for `quantity` units do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Go to the origin (the units are counted in flight).
    Go,
    /// Ask the desk first: the lease is gone or too small.
    Ask,
    /// No room now, and the desk said when to ask again.
    Full,
}

impl Slice {
    /// Whether an attempt for `quantity` units fits at `now_ms`; takes the
    /// units when it does.
    pub fn take(&mut self, quantity: i64, now_ms: i64) -> Room {
        let quantity = quantity.max(1);
        let valid = self.expires_ms > now_ms;
        // One attempt may always ask for more than the lease holds: the origin
        // answers it (as one attempt alone may ask for more than is left).
        let fits =
            self.in_flight + quantity <= self.units || (self.in_flight == 0 && self.units > 0);
        if valid && fits {
            self.in_flight += quantity;
            return Room::Go;
        }
        if now_ms < self.ask_after_ms {
            Room::Full
        } else {
            Room::Ask
        }
    }

    /// An attempt's units came back: refused, or it failed.
    pub fn give_back(&mut self, quantity: i64) {
        self.in_flight = (self.in_flight - quantity.max(1)).max(0);
    }

    /// An attempt's units were sold: the lease is spent by as many.
    pub fn sold(&mut self, quantity: i64) {
        self.give_back(quantity);
        self.units = (self.units - quantity.max(1)).max(0);
        self.sold_total += quantity.max(1);
    }

    /// An ask for `want` units, sent now.
    pub fn ask(&self, want: i64) -> Asked {
        Asked {
            want,
            in_flight: self.in_flight,
            sold_total: self.sold_total,
        }
    }

    /// The desk's answer to `asked`; the units in flight stay counted. The
    /// desk leased the units that were in flight when the ask left: those
    /// sold since are spent. Turned away empty-handed, the isolate waits
    /// until the desk said; an ask for nothing (a report) never makes it
    /// wait. An answer older than the one the slice holds changes nothing.
    pub fn renewed(&mut self, lease: &Lease, asked: Asked) {
        // An answer overtaken by a later one (the desk replaced this lease
        // since) is stale.
        if lease.granted <= self.granted {
            return;
        }
        self.granted = lease.granted;
        self.units = (lease.units - (self.sold_total - asked.sold_total)).max(0);
        self.expires_ms = lease.expires_ms;
        self.ask_after_ms = if lease.units > 0 || asked.want <= 0 {
            0
        } else {
            lease.retry_at_ms
        };
    }
}

/// How long an origin answer saying nothing is left makes an isolate answer
/// `sold_out` itself, ms; after that an attempt may ask again (units come back
/// when unpaid orders expire).
pub const SOLD_OUT_HOLD_MS: i64 = 5_000;

/// What an isolate knows of a tier besides its snapshot: its slice, the
/// origin's freshest word, and whether one of its requests is asking the desk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Local {
    pub slice: Slice,
    pub word: Option<Word>,
    pub asking: bool,
    /// Units that requests of the isolate wait to send while one asks.
    pub waiting: i64,
}

impl Local {
    /// Whether the tier is sold out at `now_ms` as far as this isolate knows:
    /// its snapshot (`snapshot`) says nothing is left, or the origin said so
    /// within [`SOLD_OUT_HOLD_MS`].
    pub fn sold_out(&self, snapshot: Word, now_ms: i64) -> bool {
        snapshot.remaining <= 0
            || self
                .word
                .is_some_and(|w| w.remaining <= 0 && now_ms < w.at_ms + SOLD_OUT_HOLD_MS)
    }

    /// The freshest word: the origin's last, or the snapshot's if newer.
    pub fn word(&self, snapshot: Word) -> Word {
        snapshot.fresher(self.word)
    }

    pub fn learn(&mut self, word: Word) {
        self.word = Some(word.fresher(self.word));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ask(isolate: u64, want: i64, remaining: i64, now_ms: i64) -> LeaseAsk {
        LeaseAsk {
            isolate,
            tier_id: 1,
            want,
            in_flight: 0,
            word: Some(Word {
                remaining,
                at_ms: now_ms,
            }),
            arrivals_per_s: 10.0,
            now_ms,
        }
    }

    #[test]
    fn leases_never_add_up_to_more_than_is_left() {
        let mut desk = Desk::default();
        assert_eq!(desk.lease(&ask(1, 6, 10, 0)).units, 6);
        assert_eq!(desk.lease(&ask(2, 6, 10, 1)).units, 4);
        assert_eq!(desk.lease(&ask(3, 6, 10, 2)).units, 0);
        assert_eq!(desk.held(1, 2), 10);
        // Renewing replaces an isolate's own lease.
        assert_eq!(desk.lease(&ask(1, 2, 10, 3)).units, 2);
        assert_eq!(desk.lease(&ask(3, 6, 10, 4)).units, 4);
    }

    #[test]
    fn units_already_sent_stay_leased_whatever_is_left() {
        let mut desk = Desk::default();
        assert_eq!(desk.lease(&ask(1, 3, 3, 0)).units, 3);
        // The isolate has sent all three and wants a fourth; the word says
        // two are left (one sold): its three stay counted, none is added.
        let lease = desk.lease(&LeaseAsk {
            in_flight: 3,
            ..ask(1, 4, 2, 10)
        });
        assert_eq!(lease.units, 3);
        assert_eq!(desk.lease(&ask(2, 1, 2, 11)).units, 0, "nothing to lease");
    }

    #[test]
    fn a_silent_isolate_s_lease_expires_and_its_units_go_to_others() {
        let mut desk = Desk::default();
        assert_eq!(desk.lease(&ask(1, 10, 10, 0)).units, 10);
        assert_eq!(desk.lease(&ask(2, 10, 10, 100)).units, 0);
        assert_eq!(desk.lease(&ask(2, 10, 10, LEASE_MS)).units, 10);
    }

    #[test]
    fn the_freshest_word_wins_and_sold_out_leases_nothing() {
        let mut desk = Desk::default();
        desk.lease(&ask(1, 5, 10, 1_000));
        let mut stale = ask(2, 5, 50, 900);
        stale.now_ms = 1_001;
        assert_eq!(desk.lease(&stale).remaining, 10, "an older word is ignored");
        let gone = desk.lease(&ask(3, 5, 0, 1_002));
        assert_eq!((gone.units, gone.remaining), (0, 0));
        assert!(gone.retry_at_ms >= 1_002 + MIN_RETRY_MS);
    }

    #[test]
    fn the_rate_is_the_event_s_and_the_desk_paces_its_asks() {
        let mut desk = Desk::default();
        for isolate in 0..1_000 {
            desk.lease(&ask(isolate, 1, 0, 10));
        }
        let last = desk.lease(&ask(5, 1, 0, 20));
        assert!((last.arrivals_per_s - 10_000.0).abs() < 1e-6);
        // 1,000 isolates asking: each waits 2.5 s, 400 asks a second in all.
        assert_eq!(last.retry_at_ms - 20, 2_500);
        // Old reports age out.
        let later = desk.lease(&ask(5, 1, 0, 20 + RATE_TTL_MS + 1));
        assert!((later.arrivals_per_s - 10.0).abs() < 1e-6);
    }

    #[test]
    fn a_slice_sends_what_it_holds_and_asks_when_it_is_spent() {
        let mut slice = Slice::default();
        assert_eq!(slice.take(1, 0), Room::Ask);
        slice.renewed(
            &Lease {
                units: 2,
                expires_ms: 1_000,
                remaining: 5,
                arrivals_per_s: 0.0,
                retry_at_ms: 0,
                granted: 1,
            },
            slice.ask(2),
        );
        assert_eq!(slice.take(1, 10), Room::Go);
        assert_eq!(slice.take(1, 10), Room::Go);
        assert_eq!(slice.take(1, 10), Room::Ask);
        slice.give_back(1);
        assert_eq!(slice.take(1, 10), Room::Go);
        // Sold units spend the lease: they are not in it any more.
        slice.sold(1);
        slice.sold(1);
        assert_eq!((slice.units, slice.in_flight), (0, 0));
        assert_eq!(slice.take(1, 10), Room::Ask, "spent");
        slice.renewed(
            &Lease {
                units: 2,
                expires_ms: 1_000,
                remaining: 5,
                arrivals_per_s: 0.0,
                retry_at_ms: 0,
                granted: 2,
            },
            slice.ask(2),
        );
        assert_eq!(slice.take(1, 1_000), Room::Ask, "expired");
        let empty = Lease {
            units: 0,
            expires_ms: 3_000,
            remaining: 0,
            arrivals_per_s: 0.0,
            retry_at_ms: 1_500,
            granted: 3,
        };
        slice.renewed(&empty, slice.ask(2));
        assert_eq!(slice.take(1, 1_200), Room::Full);
        assert_eq!(slice.take(1, 1_500), Room::Ask);
        // A report (an ask for nothing) never holds the next ask back.
        slice.renewed(
            &Lease {
                granted: 4,
                ..empty
            },
            slice.ask(0),
        );
        assert_eq!(slice.take(1, 1_200), Room::Ask);
    }

    #[test]
    fn an_isolate_holds_sold_out_for_a_while_after_the_origin_said_so() {
        let mut local = Local::default();
        let snapshot = Word {
            remaining: 5,
            at_ms: 0,
        };
        assert!(!local.sold_out(snapshot, 100));
        local.learn(Word {
            remaining: 0,
            at_ms: 1_000,
        });
        assert!(local.sold_out(snapshot, 1_000));
        assert!(local.sold_out(snapshot, 1_000 + SOLD_OUT_HOLD_MS - 1));
        assert!(!local.sold_out(snapshot, 1_000 + SOLD_OUT_HOLD_MS));
        assert!(
            local.sold_out(
                Word {
                    remaining: 0,
                    at_ms: 0
                },
                99_000
            ),
            "the snapshot says so"
        );
        // An older word never replaces a newer one, nor a newer one saying
        // more is left within a second.
        local.learn(Word {
            remaining: 7,
            at_ms: 500,
        });
        assert_eq!(
            local.word(snapshot),
            Word {
                remaining: 0,
                at_ms: 1_000
            }
        );
        assert_eq!(
            local
                .word(Word {
                    remaining: 3,
                    at_ms: 2_000
                })
                .remaining,
            3
        );
    }

    #[test]
    fn an_answer_overtaken_by_a_later_one_changes_nothing() {
        let mut desk = Desk::default();
        let first = desk.lease(&ask(1, 5, 10, 100));
        let second = desk.lease(&ask(1, 2, 10, 100));
        assert!(second.granted > first.granted);
        let mut slice = Slice::default();
        // The second answer arrives first: the first, arriving after, is stale.
        slice.renewed(&second, slice.ask(2));
        slice.renewed(&first, slice.ask(5));
        assert_eq!(slice.units, 2, "the desk holds two for this isolate");
        // A desk started again numbers its answers above the old ones.
        let mut restarted = Desk::default();
        assert!(restarted.lease(&ask(1, 1, 10, 101)).granted > second.granted);
    }

    #[test]
    fn units_sold_while_an_ask_is_on_its_way_are_not_leased_again() {
        let lease = |units, granted| Lease {
            units,
            expires_ms: 1_000,
            remaining: 5,
            arrivals_per_s: 0.0,
            retry_at_ms: 0,
            granted,
        };
        let mut slice = Slice::default();
        slice.renewed(&lease(1, 1), slice.ask(1));
        assert_eq!(slice.take(1, 10), Room::Go);
        // More is wanted: the ask counts the unit in flight ...
        let asked = slice.ask(2);
        // ... which sells before the answer comes back.
        slice.sold(1);
        // The desk leased the unit in flight again (it did not know yet).
        slice.renewed(&lease(1, 2), asked);
        assert_eq!(slice.units, 0);
        assert_eq!(slice.take(1, 10), Room::Ask);
    }

    #[test]
    fn a_later_answer_saying_more_is_left_waits_its_turn() {
        let w = |remaining, at_ms| Word { remaining, at_ms };
        // Two answers crossing on their way: the lower count holds.
        assert_eq!(w(9, 120).fresher(Some(w(8, 100))), w(8, 100));
        assert_eq!(w(8, 100).fresher(Some(w(9, 120))), w(8, 100));
        // Falling: the newer.
        assert_eq!(w(7, 130).fresher(Some(w(8, 100))), w(7, 130));
        // Units came back, said a second later: the newer.
        assert_eq!(w(3, 1_100).fresher(Some(w(0, 100))), w(3, 1_100));
        let mut desk = Desk::default();
        desk.lease(&ask(1, 0, 8, 100));
        assert_eq!(desk.lease(&ask(2, 20, 9, 120)).units, 8);
    }

    proptest! {
        /// Whatever the asks, a lease is granted only within the freshest
        /// word on what is left, less what the other isolates hold: a grant
        /// never takes the units leased past it.
        #[test]
        fn a_grant_never_takes_the_leases_past_the_word(
            asks in prop::collection::vec((0u64..8, 0i64..20, 0i64..30, 0i64..5_000), 1..200),
        ) {
            let mut desk = Desk::default();
            let mut now = 0;
            let mut word: Option<Word> = None;
            for (isolate, want, remaining, step) in asks {
                now += step % 700;
                let w = Word { remaining, at_ms: now };
                word = Some(w.fresher(word));
                let lease = desk.lease(&LeaseAsk {
                    isolate, tier_id: 1, want, in_flight: 0, word: Some(w), arrivals_per_s: 1.0, now_ms: now,
                });
                prop_assert!(lease.units <= want.max(0));
                prop_assert!(lease.units == 0 || desk.held(1, now) <= word.unwrap().remaining);
            }
        }
    }
}
