//! The stock ledger: every unit of a tier is in exactly one place — left in
//! Redis, held by a reservation on its way to PostgreSQL, held or paid by an
//! order, on its way back from a closed order, or moving between buckets — so
//! these add up to the tier's stock. The workers count them (`sale::ledger` at
//! the origin); this module turns the counts into a verdict: how many units
//! are unaccounted for, whether that persisted, and what to do about it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::{LedgerCheck, TierDrift};

/// Checks in a row that must find the same difference before it is reported:
/// the stores are read one after the other, so one check can catch a unit in
/// the middle of a move.
pub const STREAK_TO_WARN: u32 = 2;

/// Where a tier's units were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierCount {
    pub tier_id: i64,
    pub stock_total: i64,
    /// Left in the buckets' stock keys.
    pub remaining: i64,
    /// Held by reservations not yet written as orders.
    pub queued: i64,
    /// Held by orders awaiting payment or paid, or on their way back from
    /// closed ones.
    pub ordered: i64,
    /// Taken from one bucket and not yet landed in another.
    pub moving: i64,
}

impl TierCount {
    /// Stock minus everything found: positive = units missing (they would
    /// never be sold), negative = units counted twice (the sale could sell
    /// more than its stock).
    pub fn unaccounted(&self) -> i64 {
        self.stock_total - self.remaining - self.queued - self.ordered - self.moving
    }
}

/// The check after `previous` that found `counts` at `now`, and the buckets
/// in `lost_buckets` without their stock.
pub fn check(
    event_id: i64,
    previous: Option<&LedgerCheck>,
    counts: &[TierCount],
    lost_buckets: Vec<u32>,
    now: OffsetDateTime,
) -> LedgerCheck {
    let tiers: Vec<TierDrift> = counts
        .iter()
        .map(|c| TierDrift {
            tier_id: c.tier_id,
            unaccounted: c.unaccounted(),
        })
        .collect();
    let off = tiers.iter().any(|t| t.unaccounted != 0);
    let streak = match previous {
        Some(p) if off && p.tiers == tiers => p.streak.saturating_add(1),
        _ if off => 1,
        _ => 0,
    };
    let warning = (streak >= STREAK_TO_WARN).then(|| warning(event_id, &tiers));
    LedgerCheck {
        checked_at: now,
        tiers,
        streak,
        lost_buckets,
        warning,
    }
}

/// The buckets lost at this check and at the one before: those a rebuild
/// writes back. One check is not enough, since an event's buckets are written
/// one after the other when it is approved.
pub fn to_rebuild(previous: Option<&LedgerCheck>, lost_now: &[u32]) -> Vec<u32> {
    let before = previous.map(|p| p.lost_buckets.as_slice()).unwrap_or(&[]);
    lost_now
        .iter()
        .copied()
        .filter(|b| before.contains(b))
        .collect()
}

fn warning(event_id: i64, tiers: &[TierDrift]) -> String {
    let mut parts = Vec::new();
    for t in tiers {
        let (tier, n) = (t.tier_id, t.unaccounted);
        if n > 0 {
            parts.push(format!(
                "tier {tier}: {n} unit(s) are neither in Redis nor in any order (lost with a \
                 Redis node?) and will not be sold; if this persists while the sale is quiet, \
                 return them with `rushgate-origin stock adjust --event {event_id} --tier {tier} \
                 --units {n}`"
            ));
        } else if n < 0 {
            let n = -n;
            parts.push(format!(
                "tier {tier}: Redis and the orders count {n} unit(s) more than the stock, so the \
                 sale could oversell; take them out with `rushgate-origin stock adjust --event \
                 {event_id} --tier {tier} --units -{n}`"
            ));
        }
    }
    format!("stock and orders disagree: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(tier_id: i64, remaining: i64) -> TierCount {
        TierCount {
            tier_id,
            stock_total: 100,
            remaining,
            queued: 5,
            ordered: 20,
            moving: 3,
        }
    }

    #[test]
    fn a_balanced_ledger_is_quiet() {
        let c = check(1, None, &[count(7, 72)], vec![], OffsetDateTime::UNIX_EPOCH);
        assert_eq!(c.tiers[0].unaccounted, 0);
        assert_eq!((c.streak, c.warning), (0, None));
    }

    #[test]
    fn a_difference_is_reported_once_it_persists() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let first = check(1, None, &[count(7, 70)], vec![], now);
        assert_eq!((first.tiers[0].unaccounted, first.streak), (2, 1));
        assert!(first.warning.is_none(), "one check may catch a unit moving");
        let second = check(1, Some(&first), &[count(7, 70)], vec![], now);
        assert_eq!(second.streak, 2);
        let text = second.warning.clone().unwrap();
        assert!(text.contains("--event 1 --tier 7 --units 2"), "{text}");

        // A different figure starts over; balance clears it.
        let third = check(1, Some(&second), &[count(7, 69)], vec![], now);
        assert_eq!((third.streak, third.warning.is_none()), (1, true));
        let fourth = check(1, Some(&third), &[count(7, 72)], vec![], now);
        assert_eq!(fourth.streak, 0);
    }

    #[test]
    fn units_counted_twice_warn_of_an_oversell() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let first = check(3, None, &[count(7, 72), count(8, 77)], vec![], now);
        let second = check(3, Some(&first), &[count(7, 72), count(8, 77)], vec![], now);
        let text = second.warning.unwrap();
        assert!(text.contains("oversell"), "{text}");
        assert!(text.contains("--tier 8 --units -5"), "{text}");
        assert!(!text.contains("tier 7"), "{text}");
    }

    #[test]
    fn a_bucket_is_rebuilt_once_two_checks_found_it_lost() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(to_rebuild(None, &[2]).is_empty());
        let first = check(1, None, &[count(7, 72)], vec![2, 4], now);
        assert_eq!(to_rebuild(Some(&first), &[2, 5]), vec![2]);
    }
}
