//! The opening draw of an automatic lottery (`{"mode": "auto", "draw_s": ..}`):
//! first come, first served at a sale's opening rewards whoever fires at the
//! exact millisecond and answers the door fastest — a script. So nobody is
//! admitted in the sale's first `draw_s` seconds: every first attempt then
//! gets a ticket (a retry token of round 0) for the draw's end, and the
//! tickets take their turns in the order of a per-user number no client can
//! choose or change, spread over [`SPREAD_MS`]. Arriving first, or coming back
//! before one's turn, gains nothing.
//!
//! At the draw's end the edge knows its entrants' numbers and the units left
//! `r`: the ⌈`MARGIN` × r⌉ lowest numbers are drawn (the share of number space
//! below the next is [`share`]) and take turns over the spread in number
//! order; the others, and attempts that missed the draw, are in the ordinary
//! lottery once the spread is over (round 1 of [`crate::admission`]). A user's
//! number is the same on every ticket, so clicking again buys no second number.
//!
//! With many isolates, the entrants are counted where every isolate's reach:
//! each user's shard records its users' numbers, and the share is fixed once
//! for the sale from all of them ([`BUCKETS`]: how many numbers fall in each
//! part of number space, then the numbers of the part where the drawn end).
//!
//! Pure: the caller supplies the clock and the counts; a number comes from
//! the keys it is given.

use crate::Keyring;

/// Keeps the draw's numbers apart from anything else the keys compute.
const NUMBER_LABEL: &[u8] = b"rushgate-opening-draw\0";

/// A user's number in an event's opening draw, in [0, 1): from the
/// deployment's current key, so no client can compute or choose it, and the
/// same on every ticket of theirs.
pub fn number(keys: &Keyring, event_id: i64, user_id: i64) -> f64 {
    let message = format!("{event_id}:{user_id}");
    crate::queue::fraction(&keys.private_number(NUMBER_LABEL, message.as_bytes()))
}

/// The draw's window after the opening, by default, seconds.
pub const DEFAULT_DRAW_S: u32 = 10;

/// Bounds of the draw's window, seconds (0: no draw).
pub const DRAW_S: std::ops::RangeInclusive<u32> = 0..=300;

/// How long the drawn take their turns after the draw's end, ms: long beside
/// the spread of clients' round trips, so the turns keep the draw's order.
pub const SPREAD_MS: i64 = 5_000;

/// How long a drawn ticket at its turn waits when every unit left is on its
/// way to the origin for earlier turns, ms: it comes back with a new ticket
/// (those attempts may fail and give their units back).
pub const HOLD_OVER_MS: i64 = 250;

/// Entrants drawn per unit left at the draw's end: room for those who do not
/// come back or buy nothing, so the stock is sold in the draw's order.
pub const MARGIN: f64 = 1.5;

/// The share of number space that is drawn: below the entrant after the
/// `MARGIN × remaining` lowest `numbers` (reordered), so exactly that many
/// are drawn; all when there are no more entrants than that, or none are
/// known (e.g. the isolate that counted them was replaced: the turns still
/// keep the numbers' order, only spread wider).
pub fn share(numbers: &mut [f64], remaining: i64) -> f64 {
    kth(numbers, drawn(remaining))
}

/// How many entrants are drawn when `remaining` units are left.
pub fn drawn(remaining: i64) -> usize {
    (MARGIN * remaining.max(0) as f64).ceil() as usize
}

/// The `k`-th lowest of `numbers` (from 0; reordered): the share that draws
/// exactly `k` of them; all (1.0) when there are no more than `k`.
pub fn kth(numbers: &mut [f64], k: usize) -> f64 {
    if k >= numbers.len() {
        return 1.0;
    }
    let (_, next, _) = numbers.select_nth_unstable_by(k, f64::total_cmp);
    *next
}

/// Parts of number space counted at once when the share is fixed from many
/// shards' entrants.
pub const BUCKETS: usize = 1024;

/// The part of number space `number` falls in.
pub fn bucket(number: f64) -> usize {
    ((number * BUCKETS as f64) as usize).min(BUCKETS - 1)
}

/// How many of `numbers` fall in each part, as text: `<part>:<count>,…`
/// (parts with none left out).
pub fn histogram(numbers: impl IntoIterator<Item = f64>) -> String {
    let mut counts = vec![0u64; BUCKETS];
    for n in numbers {
        counts[bucket(n)] += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| format!("{i}:{c}"))
        .collect();
    parts.join(",")
}

/// Adds a [`histogram`]'s counts to `total` (ill-formed parts are skipped).
pub fn add_histogram(total: &mut [u64], text: &str) {
    for part in text.split(',').filter(|p| !p.is_empty()) {
        if let Some((i, c)) = part.split_once(':')
            && let (Ok(i), Ok(c)) = (i.parse::<usize>(), c.parse::<u64>())
            && i < total.len()
        {
            total[i] += c;
        }
    }
}

/// The part holding the `k`-th lowest number (from 0) of the summed
/// histograms, and how many numbers lie below it; `None` when there are no
/// more than `k` numbers (all are drawn).
pub fn bucket_of_kth(total: &[u64], k: usize) -> Option<(usize, usize)> {
    let mut below = 0usize;
    for (i, count) in total.iter().enumerate() {
        let count = *count as usize;
        if below + count > k {
            return Some((i, below));
        }
        below += count;
    }
    None
}

/// The numbers of `numbers` in part `bucket`, as text.
pub fn in_bucket(numbers: impl IntoIterator<Item = f64>, bucket_index: usize) -> String {
    let found: Vec<String> = numbers
        .into_iter()
        .filter(|n| bucket(*n) == bucket_index)
        .map(|n| wire_number(n).to_string())
        .collect();
    found.join(",")
}

pub fn parse_numbers(text: &str) -> Vec<f64> {
    text.split(',').filter_map(parse_wire_number).collect()
}

/// A number in `[0, 1]` as it travels between the edge's objects: its bits,
/// exact, as an integer (integers are cheaper than floats to write and read
/// in Wasm).
pub fn wire_number(number: f64) -> u64 {
    number.to_bits()
}

/// Reads [`wire_number`]'s text back; `None` unless it is a number in `[0, 1]`.
pub fn parse_wire_number(text: &str) -> Option<f64> {
    let number = f64::from_bits(text.parse().ok()?);
    (0.0..=1.0).contains(&number).then_some(number)
}

/// The opening draw's times, unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub opens_ms: i64,
    /// The draw's end: no entrant takes a turn before it.
    pub ends_ms: i64,
}

impl Draw {
    /// The draw of a sale opening at `opens_ms` with a window of `draw_s`
    /// seconds; `None` without a window.
    pub fn new(opens_ms: i64, draw_s: u32) -> Option<Self> {
        (draw_s > 0).then(|| Self {
            opens_ms,
            ends_ms: opens_ms + i64::from(draw_s) * 1000,
        })
    }

    /// When the turns are over: the undrawn and the late are in the lottery.
    pub fn spread_ends_ms(&self) -> i64 {
        self.ends_ms + SPREAD_MS
    }

    /// The turn of a ticket whose holder's number is `fraction` (in [0, 1))
    /// when `share` of number space is drawn: in number order over the
    /// spread, the undrawn at its end.
    pub fn turn_ms(&self, fraction: f64, share: f64) -> i64 {
        let place = if share > 0.0 {
            (fraction / share).min(1.0)
        } else {
            1.0
        };
        self.ends_ms + (place * SPREAD_MS as f64) as i64
    }

    /// What the edge does at `now_ms` with a draw ticket whose holder's
    /// number is `fraction`, when `share` of number space is drawn.
    pub fn ticket(&self, now_ms: i64, fraction: f64, share: f64) -> Turn {
        // Before the draw's end the share is not known yet: the end first.
        if now_ms < self.ends_ms {
            return Turn::Wait {
                until_ms: self.ends_ms,
            };
        }
        let turn_ms = self.turn_ms(fraction, share);
        if now_ms < turn_ms {
            Turn::Wait { until_ms: turn_ms }
        } else if fraction < share {
            Turn::Admit
        } else {
            Turn::Lottery
        }
    }

    /// What the edge does at `now_ms` with an attempt that carries no draw
    /// ticket: no number and no share needed.
    pub fn attempt(&self, now_ms: i64) -> Turn {
        if now_ms < self.opens_ms {
            Turn::Lottery
        } else if now_ms < self.ends_ms {
            Turn::Enter {
                until_ms: self.ends_ms,
            }
        } else if now_ms < self.spread_ends_ms() {
            Turn::Late {
                until_ms: self.spread_ends_ms(),
            }
        } else {
            Turn::Lottery
        }
    }
}

/// What happens to an attempt while a sale has an opening draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// A first attempt inside the draw's window: a ticket for the draw's end.
    Enter { until_ms: i64 },
    /// A first attempt after the draw, while the drawn take their turns: a
    /// retry token for the spread's end.
    Late { until_ms: i64 },
    /// A ticket before its turn: the same ticket, back at `until_ms`.
    Wait { until_ms: i64 },
    /// A drawn ticket at its turn: admitted.
    Admit,
    /// The ordinary lottery (round 0 for a first attempt, 1 for a ticket).
    Lottery,
}

#[cfg(test)]
mod across_shards {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Split among any number of shards, the numbers give the share the
        /// whole list gives: exactly `drawn` of them lie below it.
        #[test]
        fn the_share_from_shards_is_the_share_of_all(
            numbers in prop::collection::vec(0.0f64..1.0, 0..400),
            shards in 1usize..9,
            remaining in 0i64..300,
        ) {
            // Numbers from an HMAC never repeat.
            let mut numbers = numbers;
            numbers.sort_by(f64::total_cmp);
            numbers.dedup();
            let k = drawn(remaining);
            let mut whole = numbers.clone();
            let expected = kth(&mut whole, k);
            let parts: Vec<Vec<f64>> = (0..shards)
                .map(|s| numbers.iter().copied().skip(s).step_by(shards).collect())
                .collect();
            let mut total = vec![0u64; BUCKETS];
            for part in &parts {
                add_histogram(&mut total, &histogram(part.iter().copied()));
            }
            let share = match bucket_of_kth(&total, k) {
                None => 1.0,
                Some((b, below)) => {
                    let mut inside: Vec<f64> = parts
                        .iter()
                        .flat_map(|p| parse_numbers(&in_bucket(p.iter().copied(), b)))
                        .collect();
                    kth(&mut inside, k - below)
                }
            };
            prop_assert_eq!(share, expected);
            let below = numbers.iter().filter(|n| **n < share).count();
            prop_assert_eq!(below, k.min(numbers.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPENS: i64 = 1_800_000_000_000;

    fn draw() -> Draw {
        Draw::new(OPENS, 10).unwrap()
    }

    #[test]
    fn a_number_is_the_users_own_and_the_keys() {
        let keys = Keyring::new(&[7; 32], None).unwrap();
        let other = Keyring::new(&[8; 32], None).unwrap();
        let n = number(&keys, 1, 42);
        assert!((0.0..1.0).contains(&n));
        assert_eq!(n, number(&keys, 1, 42));
        assert_ne!(n, number(&keys, 1, 43));
        assert_ne!(n, number(&keys, 2, 42));
        assert_ne!(n, number(&other, 1, 42));
        // Spread over [0, 1): a thousand users' numbers fill its tenths.
        let mut tenths = [0u32; 10];
        for user in 0..1_000 {
            tenths[(number(&keys, 1, user) * 10.0) as usize] += 1;
        }
        assert!(
            tenths.iter().all(|&t| (60..=140).contains(&t)),
            "{tenths:?}"
        );
    }

    #[test]
    fn numbers_travel_exactly_and_only_in_range() {
        let keys = Keyring::new(&[7; 32], None).unwrap();
        for n in (0..100).map(|u| number(&keys, 1, u)).chain([0.0, 1.0]) {
            let text = wire_number(n).to_string();
            assert_eq!(parse_wire_number(&text), Some(n));
        }
        for bad in [1.5f64, -0.25, f64::NAN] {
            assert_eq!(parse_wire_number(&wire_number(bad).to_string()), None);
        }
        assert_eq!(parse_wire_number("0.5"), None);
    }

    #[test]
    fn no_window_no_draw() {
        assert_eq!(Draw::new(OPENS, 0), None);
        assert_eq!(draw().ends_ms, OPENS + 10_000);
        assert_eq!(draw().spread_ends_ms(), OPENS + 15_000);
    }

    #[test]
    fn the_share_draws_a_margin_over_the_stock_exactly() {
        let keys = Keyring::new(&[7; 32], None).unwrap();
        let mut numbers: Vec<f64> = (0..2_000).map(|u| number(&keys, 1, u)).collect();
        for remaining in [1, 10, 100, 1_000] {
            let share = share(&mut numbers.clone(), remaining);
            let drawn = numbers.iter().filter(|&&n| n < share).count();
            let wanted = (MARGIN * remaining as f64).ceil() as usize;
            assert_eq!(drawn, wanted.min(2_000), "{remaining} left");
        }
        assert_eq!(
            share(&mut numbers.clone(), 1_334),
            1.0,
            "more drawn than entrants"
        );
        assert_eq!(
            share(&mut [], 100),
            1.0,
            "unknown entrants: everyone, spread wider"
        );
        let none = share(&mut numbers.clone(), 0);
        assert_eq!(numbers.iter().filter(|&&n| n < none).count(), 0);
        assert_eq!(share(&mut numbers, -3), none);
    }

    #[test]
    fn first_attempts_enter_in_the_window_and_are_late_after_it() {
        let d = draw();
        let until = d.ends_ms;
        assert_eq!(d.attempt(OPENS - 1), Turn::Lottery);
        assert_eq!(d.attempt(OPENS), Turn::Enter { until_ms: until });
        assert_eq!(d.attempt(until - 1), Turn::Enter { until_ms: until });
        let spread_end = d.spread_ends_ms();
        assert_eq!(
            d.attempt(until),
            Turn::Late {
                until_ms: spread_end
            },
            "a first attempt after the draw waits for the turns to end"
        );
        assert_eq!(d.attempt(spread_end), Turn::Lottery);
    }

    #[test]
    fn tickets_take_turns_in_number_order() {
        let d = draw();
        let share = 0.1;
        // The best number goes at the draw's end, the last drawn at the
        // spread's end, the undrawn into the lottery then.
        assert_eq!(d.turn_ms(0.0, share), d.ends_ms);
        assert_eq!(d.turn_ms(0.05, share), d.ends_ms + SPREAD_MS / 2);
        assert_eq!(
            d.ticket(d.ends_ms + 100, 0.05, share),
            Turn::Wait {
                until_ms: d.ends_ms + SPREAD_MS / 2
            }
        );
        assert_eq!(
            d.ticket(d.ends_ms + SPREAD_MS / 2, 0.05, share),
            Turn::Admit
        );
        assert_eq!(
            d.ticket(d.ends_ms, 0.5, share),
            Turn::Wait {
                until_ms: d.spread_ends_ms()
            }
        );
        assert_eq!(d.ticket(d.spread_ends_ms(), 0.5, share), Turn::Lottery);
        assert_eq!(d.ticket(d.spread_ends_ms(), 0.5, 0.0), Turn::Lottery);
        // Shown before the draw's end, whatever share it is given: the end.
        assert_eq!(
            d.ticket(d.ends_ms - 1, 0.9, 1.0),
            Turn::Wait {
                until_ms: d.ends_ms
            }
        );
    }

    proptest! {
        /// Whoever asks at whatever times, a ticket is admitted only at or after
        /// its turn, and a lower number's turn is never later: the admitted
        /// come in number order, not in order of asking.
        #[test]
        fn nobody_is_admitted_before_a_lower_number(
            a in 0.0f64..1.0, b in 0.0f64..1.0,
            share in 0.0f64..=1.0, asks in proptest::collection::vec(0i64..20_000, 1..20),
        ) {
            let d = draw();
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(d.turn_ms(low, share) <= d.turn_ms(high, share));
            for at in asks {
                let now = OPENS + at;
                match d.ticket(now, a, share) {
                    Turn::Admit => {
                        prop_assert!(a < share);
                        prop_assert!(now >= d.turn_ms(a, share));
                    }
                    Turn::Lottery => prop_assert!(now >= d.spread_ends_ms()),
                    Turn::Wait { until_ms } => prop_assert!(until_ms > now),
                    other => prop_assert!(false, "a ticket got {:?}", other),
                }
                // A first attempt never gets ahead of a ticket's turn.
                if let Turn::Lottery = d.attempt(now) {
                    prop_assert!(now < d.opens_ms || now >= d.spread_ends_ms());
                }
            }
        }
    }
}
