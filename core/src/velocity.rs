//! Velocity at the door: arrivals per second at an event ([`Rate`]), and
//! tries per minute of an account and of a client
//! address, and the accounts seen behind an address, counted over a sliding
//! minute (this minute's count plus the part of the last minute's that the
//! window still covers). Kept by the edge's user shards (accounts, by user
//! hash) and address shards (addresses, by address hash).
//!
//! An account past its limit is told to slow down (`slow_down`, with when to
//! come back); an address is slowed only for its tries, never for its number of
//! accounts — thousands of people share one carrier-grade NAT address — which
//! raise its challenge's difficulty instead (`core::challenge::difficulty`).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// The window, ms.
pub const MINUTE_MS: i64 = 60_000;

/// Default tries per minute of one account at one event's door.
pub const DEFAULT_ACCOUNT_TRIES_PER_MIN: u32 = 30;

/// Default tries per minute from one address (high: a NAT of a whole carrier).
pub const DEFAULT_ADDRESS_TRIES_PER_MIN: u32 = 6_000;

/// An event's velocity limits at its door (the event setting `velocity`;
/// omitted fields take the defaults). Counts are per account and per address
/// over a sliding minute, across events; the event asked decides the limit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Tries per minute of one account (1–1000).
    pub account_per_min: u32,
    /// Tries per minute from one client address (1–1,000,000).
    pub address_per_min: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            account_per_min: DEFAULT_ACCOUNT_TRIES_PER_MIN,
            address_per_min: DEFAULT_ADDRESS_TRIES_PER_MIN,
        }
    }
}

/// Accounts remembered per address and minute: enough to tell a household
/// from a farm; past it the count stays at the cap.
const MAX_ACCOUNTS_KEPT: usize = 4_096;

/// One key's counts in the current and the previous minute.
#[derive(Debug, Clone, Default)]
struct Window {
    minute: i64,
    this: u32,
    last: u32,
    accounts_this: HashSet<i64>,
    accounts_last: u32,
}

impl Window {
    fn roll(&mut self, minute: i64) {
        if minute == self.minute {
            return;
        }
        let (last, accounts_last) = if minute == self.minute + 1 {
            (self.this, self.accounts_this.len() as u32)
        } else {
            (0, 0)
        };
        *self = Self {
            minute,
            this: 0,
            last,
            accounts_this: HashSet::new(),
            accounts_last,
        };
    }

    /// The sliding minute's estimate of `this` and `last` at `now_ms`.
    fn sliding(this: u32, last: u32, now_ms: i64) -> u32 {
        let into = now_ms.rem_euclid(MINUTE_MS) as f64 / MINUTE_MS as f64;
        this + (f64::from(last) * (1.0 - into)).round() as u32
    }
}

/// The key a client address is counted under: the first 16 bytes of SHA-256
/// of it, so the shards never hold the address itself.
pub fn address_key(address: &str) -> [u8; 16] {
    let digest = ring::digest::digest(&ring::digest::SHA256, address.trim().as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest.as_ref()[..16]);
    key
}

/// What a try found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Tries in the sliding minute, this one included.
    pub tries_per_min: u32,
    /// Distinct accounts in the sliding minute (addresses only; 1 for accounts).
    pub accounts_per_min: u32,
}

impl Seen {
    /// Whether the tries are past `limit`, and if so how long until one fits,
    /// in whole seconds (at most a minute).
    pub fn slow_down(&self, limit: u32, now_ms: i64) -> Option<u64> {
        (self.tries_per_min > limit).then(|| {
            let left_in_minute = MINUTE_MS - now_ms.rem_euclid(MINUTE_MS);
            (left_in_minute as u64).div_ceil(1000).clamp(1, 60)
        })
    }
}

/// Sliding-minute counts per key (an account id or an address).
#[derive(Debug, Default)]
pub struct Velocity<K> {
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Velocity<K> {
    /// Counts one try of `key` (by `account`, for addresses) at `now_ms`.
    pub fn count(&mut self, key: &K, account: Option<i64>, now_ms: i64) -> Seen {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let w = self.windows.entry(key.clone()).or_default();
        w.roll(minute);
        w.this = w.this.saturating_add(1);
        if let Some(account) = account
            && w.accounts_this.len() < MAX_ACCOUNTS_KEPT
        {
            w.accounts_this.insert(account);
        }
        Seen {
            tries_per_min: Window::sliding(w.this, w.last, now_ms),
            accounts_per_min: Window::sliding(
                w.accounts_this.len() as u32,
                w.accounts_last,
                now_ms,
            )
            .max(1),
        }
    }

    /// Forgets keys not seen for two minutes; returns how many.
    pub fn prune(&mut self, now_ms: i64) -> usize {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let before = self.windows.len();
        self.windows.retain(|_, w| w.minute + 1 >= minute);
        before - self.windows.len()
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// Arrivals per second at something (an event's door, its `/buy`), measured
/// over one-second windows and smoothed over windows, so one quiet second does
/// not open the floodgates; a window's arrivals so far count at once.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rate {
    window_start_ms: i64,
    in_window: u32,
    per_s: f64,
}

impl Rate {
    const WINDOW_MS: i64 = 1_000;

    pub fn new(now_ms: i64) -> Self {
        Self {
            window_start_ms: now_ms,
            ..Self::default()
        }
    }

    /// Counts one arrival at `now_ms`; returns the recent rate per second.
    pub fn count(&mut self, now_ms: i64) -> f64 {
        let elapsed = now_ms - self.window_start_ms;
        if elapsed >= Self::WINDOW_MS {
            let rate = f64::from(self.in_window) * 1000.0 / elapsed as f64;
            self.per_s = 0.5 * self.per_s + 0.5 * rate;
            self.window_start_ms = now_ms;
            self.in_window = 0;
        }
        self.in_window += 1;
        self.per_s.max(f64::from(self.in_window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_follows_arrivals_and_decays_slowly() {
        let mut rate = Rate::new(0);
        let mut last = 0.0;
        for i in 0..100 {
            last = rate.count(i * 10);
        }
        assert_eq!(last, 100.0, "a window's arrivals count at once");
        // The next window starts from the last one's rate.
        let next = rate.count(1_000);
        assert!((next - 50.0).abs() < 1e-9, "{next}");
        // A quiet second halves it rather than dropping it.
        let after = rate.count(3_000);
        assert!((after - 25.25).abs() < 1e-9, "{after}");
    }

    #[test]
    fn tries_count_over_a_sliding_minute() {
        let mut v = Velocity::default();
        let t0 = 10 * MINUTE_MS;
        for i in 1..=30 {
            let seen = v.count(&7_i64, None, t0 + i);
            assert_eq!(seen.tries_per_min, i as u32);
            assert_eq!(seen.slow_down(30, t0 + i), None);
        }
        let seen = v.count(&7_i64, None, t0 + 31);
        assert_eq!(seen.tries_per_min, 31);
        assert_eq!(seen.slow_down(30, t0 + 31_000), Some(29));
        // Half way through the next minute half of the last one still counts.
        let seen = v.count(&7_i64, None, t0 + MINUTE_MS + MINUTE_MS / 2);
        assert_eq!(seen.tries_per_min, 1 + 16);
        // Two minutes later it is all forgotten.
        let seen = v.count(&7_i64, None, t0 + 3 * MINUTE_MS);
        assert_eq!(seen.tries_per_min, 1);
    }

    #[test]
    fn keys_are_counted_apart() {
        let mut v = Velocity::default();
        for _ in 0..5 {
            v.count(&1_i64, None, 0);
        }
        assert_eq!(v.count(&2_i64, None, 0).tries_per_min, 1);
    }

    #[test]
    fn an_address_counts_its_distinct_accounts() {
        let mut v = Velocity::default();
        let address = "203.0.113.9".to_owned();
        for account in [1, 2, 2, 3, 1] {
            v.count(&address, Some(account), 1_000);
        }
        let seen = v.count(&address, Some(4), 2_000);
        assert_eq!(seen.accounts_per_min, 4);
        assert_eq!(seen.tries_per_min, 6);
    }

    #[test]
    fn the_accounts_kept_per_address_are_capped() {
        let mut v = Velocity::default();
        let address = "198.51.100.1".to_owned();
        let mut last = Seen {
            tries_per_min: 0,
            accounts_per_min: 0,
        };
        for account in 0..10_000 {
            last = v.count(&address, Some(account), 5);
        }
        assert_eq!(last.accounts_per_min, MAX_ACCOUNTS_KEPT as u32);
        assert_eq!(last.tries_per_min, 10_000);
    }

    #[test]
    fn quiet_keys_are_pruned() {
        let mut v = Velocity::default();
        v.count(&1_i64, None, 0);
        v.count(&2_i64, None, 2 * MINUTE_MS);
        assert_eq!(v.prune(2 * MINUTE_MS + 1), 1);
        assert_eq!(v.len(), 1);
    }
}
