//! The queue's arithmetic (admission mode `queue`), free of IO so that the edge
//! and the origin agree on it.
//!
//! **Where one stands.** A pre-queue entrant's draw number
//! (`crate::draw::number`) is uniform over 256-bit space, so its place among
//! `entrants` is about `fraction(number) × entrants` — no list of everyone
//! needed, only a count. Who joins after the opening queues behind the whole
//! pre-queue by join time.
//!
//! **The frontier.** Admission moves a [`Frontier`] forward and never back: a
//! pre-queue entrant is admitted once the frontier's share of number space
//! passes their number, a late joiner once the whole pre-queue is in and the
//! frontier's time passes their join time. So nobody is ever admitted ahead of
//! someone with a better place, whenever each of them happens to ask.
//!
//! **How far to move it.** A closed loop ([`Flow::to_admit`]) over what is
//! left, what is on its way and how admitted users actually convert; and a
//! waiting user's chance, wait, and how soon to ask again.

pub mod controller;
pub mod status;
pub mod wire;

use serde::{Deserialize, Serialize};

/// A time as unix milliseconds, as the queue counts time.
pub fn unix_ms(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A draw number's share of number space, in [0, 1): its first 8 bytes as a
/// fraction (the rest changes it by less than 2⁻⁶⁴).
pub fn fraction(number: &[u8; 32]) -> f64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&number[..8]);
    u64::from_be_bytes(head) as f64 / 18_446_744_073_709_551_616.0
}

/// The estimated place (1 = first) of a pre-queue entrant among `entrants`.
pub fn drawn_place(number: &[u8; 32], entrants: u64) -> u64 {
    ((fraction(number) * entrants as f64) as u64 + 1).min(entrants.max(1))
}

/// Where an entrant stands in line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Standing {
    /// Joined before the opening: by draw number.
    Drawn { fraction: f64 },
    /// Joined after the opening, at this time (ms).
    Late { joined_ms: i64 },
}

/// How far admission has come; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Frontier {
    /// Share of number space admitted from the pre-queue, in [0, 1].
    pub drawn: f64,
    /// Late joiners who joined before this time (ms) are admitted; meaningful
    /// once `drawn` is 1.
    pub late_until_ms: i64,
}

impl Frontier {
    /// Nobody admitted yet; late joiners are counted from the opening on.
    pub fn new(opens_at_ms: i64) -> Self {
        Self {
            drawn: 0.0,
            late_until_ms: opens_at_ms,
        }
    }

    pub fn admits(&self, standing: Standing) -> bool {
        match standing {
            Standing::Drawn { fraction } => fraction < self.drawn,
            Standing::Late { joined_ms } => self.drawn >= 1.0 && joined_ms < self.late_until_ms,
        }
    }

    /// The frontier moved on by about `admit` more entrants: through the
    /// pre-queue's `entrants` first (uniform numbers: a share per entrant),
    /// then, with the pre-queue all in, through the late joiners, who arrive
    /// at `late_per_s` — never past `now_ms`, nor backwards.
    pub fn advance(&self, admit: u64, entrants: u64, late_per_s: f64, now_ms: i64) -> Self {
        let mut next = *self;
        let mut left = admit as f64;
        if next.drawn < 1.0 {
            if entrants == 0 {
                next.drawn = 1.0;
            } else {
                let waiting = (1.0 - next.drawn) * entrants as f64;
                let step = left.min(waiting);
                next.drawn = (next.drawn + step / entrants as f64).min(1.0);
                left -= step;
                if left > 0.0 {
                    next.drawn = 1.0;
                }
            }
        }
        if next.drawn >= 1.0 && left > 0.0 && late_per_s > 0.0 {
            let ms = (left / late_per_s * 1000.0).ceil() as i64;
            next.late_until_ms = next.late_until_ms.saturating_add(ms).min(now_ms);
        }
        next.late_until_ms = next.late_until_ms.max(self.late_until_ms);
        next
    }
}

/// What the queue knows when it decides how many more to admit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Units left in the sale (all tiers).
    pub remaining: i64,
    /// Units in purchase attempts on their way to the origin.
    pub in_flight: i64,
    /// Admitted users still inside their exclusive window who have not bought.
    pub holding_window: u64,
    /// Admitted users so far, and those of them who bought.
    pub admitted: u64,
    pub converted: u64,
    /// Units bought per buyer so far (1 until someone buys).
    pub units_per_buyer: f64,
}

/// The share of admitted users who buy, before any has had the chance, in
/// the odds a waiting user is shown ([`Flow::chance`]).
pub const PRIOR_CONVERSION: f64 = 1.0;

/// How many admitted users it takes to learn the conversion on its own.
const PRIOR_WEIGHT: f64 = 20.0;

impl Flow {
    /// The observed conversion, pulled towards the prior while few were admitted.
    pub fn conversion(&self) -> f64 {
        let observed = self.converted as f64 + PRIOR_CONVERSION * PRIOR_WEIGHT;
        (observed / (self.admitted as f64 + PRIOR_WEIGHT)).clamp(0.01, 1.0)
    }

    fn units_per_buyer(&self) -> f64 {
        if self.units_per_buyer.is_finite() {
            self.units_per_buyer.max(1.0)
        } else {
            1.0
        }
    }

    /// How many more users to admit now: one for every unit left that no
    /// admitted user holds yet — an admitted user holds a unit through their
    /// window, whether they buy or not — and none while nothing is left. So
    /// nobody is admitted to a unit someone ahead of them may still take: the
    /// buying order is the queue's (the frontier counts the admitted exactly:
    /// `controller`).
    pub fn to_admit(&self) -> u64 {
        let free = self.remaining - self.in_flight.max(0);
        if self.remaining <= 0 || free <= 0 {
            return 0;
        }
        let users = (free as f64 / self.units_per_buyer()).floor() as u64;
        users.saturating_sub(self.holding_window)
    }

    /// The chance that a user with `ahead` people before them gets a unit:
    /// the buyers the units left can serve, over the buyers expected among
    /// those ahead and this user.
    pub fn chance(&self, ahead: u64) -> f64 {
        if self.remaining <= 0 {
            return 0.0;
        }
        let buyers_served = self.remaining as f64 / self.units_per_buyer();
        let competing = (ahead as f64 + 1.0) * self.conversion();
        (buyers_served / competing.max(1.0)).clamp(0.0, 1.0)
    }
}

/// Seconds until `ahead` people are admitted at `admitted_per_s`; `None` when
/// nobody is being admitted (e.g. before the opening).
pub fn estimated_wait_s(ahead: u64, admitted_per_s: f64) -> Option<u64> {
    (admitted_per_s > 0.0).then(|| (ahead as f64 / admitted_per_s).ceil() as u64)
}

/// Seconds before a waiting user polls again: soon when their turn is near,
/// rarely when it is far, plus up to a quarter more from `jitter` in [0, 1) so
/// that a crowd's polls do not arrive together.
pub fn poll_after_s(wait_s: Option<u64>, jitter: f64) -> u64 {
    let base = match wait_s {
        Some(wait) => (wait / 4).clamp(2, 30),
        None => 10,
    };
    base + (base as f64 * 0.25 * jitter.clamp(0.0, 0.999)) as u64
}

/// Whether the door of a sale (its queue, or its challenges) is open in
/// `phase`: from the time the sale is visible until it sells out or closes;
/// otherwise the error to answer.
pub fn check_door_phase(phase: crate::Phase) -> Result<(), crate::ErrorCode> {
    use crate::{ErrorCode, Phase};
    match phase {
        Phase::Upcoming | Phase::Presale | Phase::Open => Ok(()),
        Phase::SoldOut => Err(ErrorCode::SoldOut),
        Phase::Closed => Err(ErrorCode::Closed),
        Phase::Hidden => Err(ErrorCode::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flow(remaining: i64) -> Flow {
        Flow {
            remaining,
            in_flight: 0,
            holding_window: 0,
            admitted: 0,
            converted: 0,
            units_per_buyer: 1.0,
        }
    }

    #[test]
    fn the_door_is_open_from_visible_until_sold_out_or_closed() {
        use crate::{ErrorCode, Phase};
        assert_eq!(check_door_phase(Phase::Upcoming), Ok(()));
        assert_eq!(check_door_phase(Phase::Presale), Ok(()));
        assert_eq!(check_door_phase(Phase::Open), Ok(()));
        assert_eq!(check_door_phase(Phase::SoldOut), Err(ErrorCode::SoldOut));
        assert_eq!(check_door_phase(Phase::Closed), Err(ErrorCode::Closed));
        assert_eq!(check_door_phase(Phase::Hidden), Err(ErrorCode::NotFound));
    }

    #[test]
    fn places_come_from_numbers_and_the_frontier_keeps_the_order() {
        let mut low = [0u8; 32];
        low[0] = 0x10;
        let mut high = [0u8; 32];
        high[0] = 0xf0;
        assert!(fraction(&low) < fraction(&high));
        assert_eq!(drawn_place(&[0u8; 32], 1_000), 1);
        assert_eq!(drawn_place(&[0xff; 32], 1_000), 1_000);
        assert_eq!(drawn_place(&high, 1_000), 938);

        let start = Frontier::new(0);
        let step = start.advance(100, 1_000, 0.0, 5_000);
        assert!((step.drawn - 0.1).abs() < 1e-12);
        assert!(step.admits(Standing::Drawn {
            fraction: fraction(&low)
        }));
        assert!(!step.admits(Standing::Drawn {
            fraction: fraction(&high)
        }));
        assert!(!step.admits(Standing::Late { joined_ms: 0 }));
        // 950 more: the 900 left of the pre-queue, then 50 late joiners at 10/s.
        let past = step.advance(950, 1_000, 10.0, 1_000_000);
        assert_eq!(past.drawn, 1.0);
        assert_eq!(past.late_until_ms, 5_000);
        assert!(past.admits(Standing::Late { joined_ms: 4_999 }));
        assert!(!past.admits(Standing::Late { joined_ms: 5_000 }));
        // Never past now, never backwards.
        assert_eq!(past.advance(1_000, 1_000, 10.0, 6_000).late_until_ms, 6_000);
        assert_eq!(past.advance(1_000, 1_000, 10.0, 1_000).late_until_ms, 5_000);
        assert_eq!(
            start.advance(5, 0, 0.0, 0).drawn,
            1.0,
            "no pre-queue at all"
        );
    }

    #[test]
    fn the_loop_admits_one_per_unit_nobody_holds() {
        assert_eq!(flow(100).to_admit(), 100);
        // However few buy, no more than the units.
        let idle = Flow {
            admitted: 1_000,
            converted: 50,
            ..flow(100)
        };
        assert_eq!(idle.to_admit(), 100);
        // Those in their window hold theirs.
        let waiting = Flow {
            holding_window: 60,
            ..flow(100)
        };
        assert_eq!(waiting.to_admit(), 40);
        let bigger_orders = Flow {
            units_per_buyer: 2.0,
            ..flow(9)
        };
        assert_eq!(bigger_orders.to_admit(), 4);
        assert_eq!(flow(0).to_admit(), 0);
    }

    #[test]
    fn chances_and_waits_read_as_a_person_would() {
        let f = flow(10);
        assert_eq!(f.chance(0), 1.0);
        assert!((f.chance(79) - 0.125).abs() < 1e-9, "{}", f.chance(79));
        assert_eq!(flow(0).chance(0), 0.0);
        assert_eq!(estimated_wait_s(100, 10.0), Some(10));
        assert_eq!(estimated_wait_s(100, 0.0), None);
        assert_eq!(poll_after_s(Some(0), 0.0), 2);
        assert_eq!(poll_after_s(Some(1_000), 0.0), 30);
        assert_eq!(poll_after_s(None, 0.0), 10);
        assert!(poll_after_s(Some(1_000), 0.99) > 30);
    }

    proptest! {
        #[test]
        fn the_frontier_only_moves_forward_and_admits_whoever_it_passed(
            steps in proptest::collection::vec((0u64..500, 0i64..10_000), 1..20),
            entrants in 0u64..5_000,
            late_per_s in 0.0f64..100.0,
            numbers in proptest::collection::vec(any::<[u8; 32]>(), 1..50),
        ) {
            let mut frontier = Frontier::default();
            let mut now = 0;
            let mut admitted = vec![false; numbers.len()];
            for (admit, elapsed) in steps {
                now += elapsed;
                let next = frontier.advance(admit, entrants, late_per_s, now);
                prop_assert!(next.drawn >= frontier.drawn && next.drawn <= 1.0);
                prop_assert!(next.late_until_ms >= frontier.late_until_ms);
                prop_assert!(next.late_until_ms <= now.max(frontier.late_until_ms));
                for (i, n) in numbers.iter().enumerate() {
                    let now_in = next.admits(Standing::Drawn { fraction: fraction(n) });
                    prop_assert!(!admitted[i] || now_in, "admitted, then not");
                    admitted[i] = now_in;
                }
                frontier = next;
            }
            // Whoever is in, everyone with a lower number is in too.
            for (i, a) in numbers.iter().enumerate() {
                for (j, b) in numbers.iter().enumerate() {
                    if admitted[j] && fraction(a) < fraction(b) {
                        prop_assert!(admitted[i]);
                    }
                }
            }
        }

        #[test]
        fn nobody_is_admitted_while_nothing_is_left(
            remaining in -5i64..=0,
            in_flight in 0i64..50,
            holding in 0u64..50,
            admitted in 0u64..1_000,
        ) {
            let f = Flow {
                remaining,
                in_flight,
                holding_window: holding,
                admitted,
                converted: admitted / 2,
                units_per_buyer: 1.5,
            };
            prop_assert_eq!(f.to_admit(), 0);
            prop_assert_eq!(f.chance(0), 0.0);
        }

        #[test]
        fn admission_never_outruns_ten_per_unit_left_and_grows_with_the_stock(
            remaining in 1i64..10_000,
            in_flight in 0i64..100,
            admitted in 0u64..10_000,
            rate in 0.0f64..=1.0,
            units in 1.0f64..4.0,
        ) {
            let f = Flow {
                remaining,
                in_flight,
                holding_window: 0,
                admitted,
                converted: (admitted as f64 * rate) as u64,
                units_per_buyer: units,
            };
            let free = (remaining - in_flight).max(0);
            prop_assert!(f.to_admit() <= (free as u64) * 10);
            let more = Flow { remaining: remaining + 100, ..f };
            prop_assert!(more.to_admit() >= f.to_admit());
            prop_assert!((0.0..=1.0).contains(&f.chance(admitted)));
            prop_assert!(f.chance(admitted) >= f.chance(admitted + 10));
        }
    }
}
