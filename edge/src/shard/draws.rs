//! A shard's entrants in automatic lotteries' opening draws: each user's
//! number (an HMAC, `core::opening::number`) once their first attempt in the
//! draw's window passed the gate. Kept in memory only: an evicted shard's
//! entrants are drawn as if they had not asked, which costs them their ticket
//! but never the sale's count — the sale's desk fixes the drawn share once,
//! from every shard's entrants at the draw's end (`desk`).

use std::collections::HashMap;

/// How long a shard keeps an opening draw's entrants after the last one, ms.
const KEPT_MS: i64 = 3_600_000;

#[derive(Default)]
pub struct Draws {
    /// Event → (user → number, when the last entered).
    events: HashMap<i64, (HashMap<i64, f64>, i64)>,
}

impl Draws {
    /// Records a user's number in an event's draw; forgets draws nobody
    /// entered for an hour.
    pub fn enter(&mut self, event_id: i64, user_id: i64, number: f64, now_ms: i64) {
        self.events.retain(|_, (_, last)| now_ms - *last < KEPT_MS);
        let (entrants, last) = self
            .events
            .entry(event_id)
            .or_insert_with(|| (HashMap::new(), now_ms));
        entrants.insert(user_id, number);
        *last = now_ms;
    }

    /// The numbers of an event's entrants here.
    pub fn numbers(&self, event_id: i64) -> impl Iterator<Item = f64> + '_ {
        self.events
            .get(&event_id)
            .into_iter()
            .flat_map(|(entrants, _)| entrants.values().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_enters_once_and_old_draws_are_forgotten() {
        let mut draws = Draws::default();
        draws.enter(1, 7, 0.5, 0);
        draws.enter(1, 7, 0.5, 10);
        draws.enter(1, 8, 0.25, 20);
        let mut numbers: Vec<f64> = draws.numbers(1).collect();
        numbers.sort_by(f64::total_cmp);
        assert_eq!(numbers, [0.25, 0.5]);
        draws.enter(2, 7, 0.1, 20 + KEPT_MS);
        assert_eq!(draws.numbers(1).count(), 0);
        assert_eq!(draws.numbers(2).count(), 1);
    }
}
