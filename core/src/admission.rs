//! Probability admission at the edge: each purchase attempt is admitted with the
//! probability of its round. A loser gets a retry token for the next round, so
//! patience is rewarded and hammering is not (first attempts are also deduped).
//!
//! Pure: the caller supplies the uniform random number and the crowd estimate.

use crate::event::Admission;

/// Seconds a loser of round `round` (0-based) waits before its next attempt.
pub fn retry_after_s(round: u32) -> u32 {
    (2 + round).min(10)
}

/// How many attempts per remaining unit automatic admission lets through, per
/// second: enough to sell out fast despite buyers who drop out or hit limits.
pub const AUTO_OVERSUBSCRIPTION: f64 = 4.0;

/// The lowest probability automatic admission goes to, so nobody is locked out.
pub const AUTO_MIN_PROBABILITY: f64 = 0.01;

/// What automatic admission looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crowd {
    /// Units left, as last seen by the edge.
    pub remaining: i64,
    /// Recent purchase attempts per second reaching this edge.
    pub arrivals_per_s: f64,
}

/// The admission probability of `round` (0-based). Rounds past the last use the
/// last probability. Automatic admission aims at forwarding about
/// `AUTO_OVERSUBSCRIPTION × remaining` attempts per second.
pub fn probability(admission: &Admission, round: u32, crowd: Crowd) -> f64 {
    match admission {
        Admission::Rounds { rounds } => {
            let i = (round as usize).min(rounds.len().saturating_sub(1));
            rounds.get(i).copied().unwrap_or(1.0).clamp(0.0, 1.0)
        }
        // The queue admits before the purchase URL: whoever holds one is in.
        Admission::Queue { .. } => 1.0,
        Admission::Auto { .. } => {
            if crowd.remaining <= 0 {
                return AUTO_MIN_PROBABILITY;
            }
            let wanted = AUTO_OVERSUBSCRIPTION * crowd.remaining as f64;
            let arrivals = crowd.arrivals_per_s.max(1.0);
            (wanted / arrivals).clamp(AUTO_MIN_PROBABILITY, 1.0)
        }
    }
}

/// Whether an attempt with probability `p` is admitted, given `u` uniform in [0, 1).
pub fn admitted(p: f64, u: f64) -> bool {
    u < p
}

/// Whether one more attempt for `quantity` units may go to the origin while
/// attempts for `in_flight` units are already on their way and `remaining` units
/// are left: an edge never has more units in flight than there are to win, so the
/// origin sees load that grows with the stock, not with the crowd. With nothing
/// in flight one attempt always goes, so the origin gives the definitive answer.
pub fn within_stock(in_flight: i64, quantity: i64, remaining: i64) -> bool {
    if remaining <= 0 {
        return false;
    }
    in_flight == 0 || in_flight + quantity.max(1) <= remaining
}

/// Maps 32 random bits to [0, 1).
pub fn unit_interval(bits: u32) -> f64 {
    f64::from(bits) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AutoMode;
    use proptest::prelude::*;

    fn crowd(remaining: i64, arrivals_per_s: f64) -> Crowd {
        Crowd {
            remaining,
            arrivals_per_s,
        }
    }

    #[test]
    fn rounds_use_their_probability_then_the_last() {
        let a = Admission::Rounds {
            rounds: vec![0.1, 0.5, 1.0],
        };
        let c = crowd(10, 100.0);
        assert_eq!(probability(&a, 0, c), 0.1);
        assert_eq!(probability(&a, 1, c), 0.5);
        assert_eq!(probability(&a, 2, c), 1.0);
        assert_eq!(probability(&a, 9, c), 1.0);
    }

    #[test]
    fn auto_scales_with_stock_and_crowd() {
        let a = Admission::Auto {
            mode: AutoMode::Auto,
            draw_s: 0,
        };
        assert_eq!(probability(&a, 0, crowd(100, 10.0)), 1.0);
        let p = probability(&a, 0, crowd(10, 4000.0));
        assert!((p - 0.01).abs() < 1e-9, "{p}");
        let p = probability(&a, 0, crowd(50, 1000.0));
        assert!((p - 0.2).abs() < 1e-9, "{p}");
        assert_eq!(probability(&a, 0, crowd(0, 1000.0)), AUTO_MIN_PROBABILITY);
    }

    #[test]
    fn in_flight_attempts_never_outnumber_the_stock() {
        assert!(within_stock(0, 1, 1));
        assert!(!within_stock(1, 1, 1));
        assert!(within_stock(8, 2, 10));
        assert!(!within_stock(9, 2, 10));
        // One attempt may always ask, even for more than is left…
        assert!(within_stock(0, 4, 2));
        // …but not when nothing is left.
        assert!(!within_stock(0, 1, 0));
        assert!(!within_stock(0, 1, -3));
    }

    #[test]
    fn retry_waits_grow_and_are_capped() {
        assert_eq!(retry_after_s(0), 2);
        assert_eq!(retry_after_s(3), 5);
        assert_eq!(retry_after_s(100), 10);
    }

    #[test]
    fn observed_admit_rate_is_within_statistical_bounds() {
        // A fixed generator (SplitMix64) so the test is repeatable; over n draws the
        // admitted count is Binomial(n, p): stay within 5 standard deviations.
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 32) as u32
        };
        for p in [0.05, 0.3, 0.5, 0.9] {
            let n = 20_000;
            let admitted_count = (0..n)
                .filter(|_| admitted(p, unit_interval(next())))
                .count() as f64;
            let mean = n as f64 * p;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (admitted_count - mean).abs() < 5.0 * sd,
                "p={p}: {admitted_count} vs {mean}"
            );
        }
    }

    proptest! {
        #[test]
        fn probabilities_are_probabilities(rounds in proptest::collection::vec(0.0f64..=1.0, 1..8),
                                           round in 0u32..20, remaining in -5i64..1000, arrivals in 0.0f64..1e6) {
            let c = crowd(remaining, arrivals);
            for a in [Admission::Rounds { rounds }, Admission::Auto { mode: AutoMode::Auto, draw_s: 0 }] {
                let p = probability(&a, round, c);
                prop_assert!((0.0..=1.0).contains(&p));
            }
        }

        #[test]
        fn admitting_until_refused_never_exceeds_the_stock(remaining in 0i64..500, quantity in 1i64..5) {
            let mut in_flight = 0;
            while within_stock(in_flight, quantity, remaining) {
                in_flight += quantity;
            }
            let bound = if remaining > 0 { remaining.max(quantity) } else { 0 };
            prop_assert!(in_flight <= bound, "{} units in flight, {} left", in_flight, remaining);
        }

        #[test]
        fn unit_interval_is_half_open(bits in any::<u32>()) {
            let u = unit_interval(bits);
            prop_assert!((0.0..1.0).contains(&u));
            prop_assert!(admitted(1.0, u));
            prop_assert!(!admitted(0.0, u));
        }
    }
}
