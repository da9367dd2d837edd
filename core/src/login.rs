//! Limits on logging in and registering, so that guessing passwords and making
//! accounts in bulk cost what they should.
//!
//! - **Per account** (by username, known or not): the first
//!   [`FREE_FAILURES`] wrong passwords in a row cost nothing; from then on the
//!   account answers `slow_down` until a wait that doubles with each further
//!   failure (1 s, 2 s, 4 s, … at most [`MAX_BACKOFF_S`]) has passed since the
//!   last one. A right password starts the count again.
//! - **Per client address**: failed logins and new accounts are counted over a
//!   sliding [`WINDOW_MS`]. Past the address's allowance, a login or a
//!   registration from it needs a solved proof of work (`core::challenge`,
//!   the door's), one bit harder per doubling of the excess, from
//!   [`BASE_BITS`] to [`challenge::MAX_DIFFICULTY`]. Thousands of people may
//!   share one carrier-grade NAT address: the address is never locked out, its
//!   tries only cost more.
//!
//! The counts live with the caller (the origin keeps them in Redis); these
//! functions decide from them and an injected clock.

use crate::challenge;

/// Wrong passwords in a row an account may have before it waits.
pub const FREE_FAILURES: u32 = 5;

/// The longest an account waits between tries, s.
pub const MAX_BACKOFF_S: u64 = 300;

/// The address window, ms.
pub const WINDOW_MS: i64 = 600_000;

/// Default failed logins per address and window before tries cost work.
pub const DEFAULT_ADDRESS_FAILURES: u32 = 30;

/// Default new accounts per address and window before they cost work.
pub const DEFAULT_ADDRESS_REGISTRATIONS: u32 = 10;

/// The difficulty asked of an address just past its allowance (about 65,000
/// hashes: under a second in a browser, a second or two on a phone).
pub const BASE_BITS: u8 = 16;

/// An account's run of failures: how many in a row and when the last was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub count: u32,
    pub last_ms: i64,
}

impl Failures {
    /// How long the account must still wait before its next try is heard, in
    /// whole seconds; `None` when it may try now.
    pub fn wait_s(&self, now_ms: i64) -> Option<u64> {
        let backoff_ms = backoff_s(self.count)? as i64 * 1000;
        let left = self.last_ms + backoff_ms - now_ms;
        (left > 0).then(|| (left as u64).div_ceil(1000))
    }
}

/// The wait after `failures` wrong passwords in a row, s; `None` while free.
pub fn backoff_s(failures: u32) -> Option<u64> {
    let over = failures.checked_sub(FREE_FAILURES)?;
    Some(
        1u64.checked_shl(over)
            .unwrap_or(u64::MAX)
            .min(MAX_BACKOFF_S),
    )
}

/// A count over a sliding window made of two fixed ones: all of this window's
/// and the part of the last one that the sliding window still covers.
pub fn sliding(this: u32, last: u32, now_ms: i64, window_ms: i64) -> u32 {
    let into = now_ms.rem_euclid(window_ms) as f64 / window_ms as f64;
    this.saturating_add((f64::from(last) * (1.0 - into)).round() as u32)
}

/// The fixed window `now_ms` falls in.
pub fn window(now_ms: i64) -> i64 {
    now_ms.div_euclid(WINDOW_MS)
}

/// The work asked of an address with `seen` (failed logins or new accounts
/// in the sliding window) against `allowance`: `None` within it, else
/// [`BASE_BITS`] plus one bit per doubling of `seen` over the allowance.
pub fn difficulty(seen: u32, allowance: u32) -> Option<u8> {
    if seen < allowance.max(1) {
        return None;
    }
    let ratio = f64::from(seen) / f64::from(allowance.max(1));
    let doublings = ratio.log2().floor().clamp(0.0, 32.0) as u32;
    Some((u32::from(BASE_BITS) + doublings).min(u32::from(challenge::MAX_DIFFICULTY)) as u8)
}

/// When an address's count will be back under its allowance without any more
/// tries, s (at least 1). The sliding count forgets the last fixed window
/// linearly; a count already past the allowance in this window must wait for
/// the next one and fade there.
pub fn cools_in_s(this: u32, last: u32, allowance: u32, now_ms: i64) -> u64 {
    let allowance = allowance.max(1);
    let window = WINDOW_MS as f64;
    let into_ms = now_ms.rem_euclid(WINDOW_MS) as f64;
    // The fraction of a window at which `count` × (1 − fraction) is at most
    // `budget` (so that the rounded sliding count stays under the allowance).
    let fades_at = |count: u32, budget: u32| {
        if count <= budget {
            0.0
        } else {
            1.0 - f64::from(budget) / f64::from(count)
        }
    };
    let wait_ms = if this < allowance {
        (fades_at(last, allowance - 1 - this) * window - into_ms).max(0.0)
    } else {
        (window - into_ms) + fades_at(this, allowance - 1) * window
    };
    ((wait_ms / 1000.0).ceil() as u64).max(1)
}

/// A username as accounts are counted: case and surrounding space do not
/// make another account.
pub fn account_key(username: &str) -> String {
    username.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_account_waits_after_its_free_failures_and_the_wait_doubles() {
        assert_eq!(backoff_s(0), None);
        assert_eq!(backoff_s(FREE_FAILURES - 1), None);
        assert_eq!(backoff_s(FREE_FAILURES), Some(1));
        assert_eq!(backoff_s(FREE_FAILURES + 1), Some(2));
        assert_eq!(backoff_s(FREE_FAILURES + 4), Some(16));
        assert_eq!(backoff_s(FREE_FAILURES + 20), Some(MAX_BACKOFF_S));
        assert_eq!(backoff_s(u32::MAX), Some(MAX_BACKOFF_S));
        let f = Failures {
            count: FREE_FAILURES + 3,
            last_ms: 10_000,
        };
        assert_eq!(f.wait_s(10_000), Some(8));
        assert_eq!(f.wait_s(17_001), Some(1));
        assert_eq!(f.wait_s(18_000), None);
        assert_eq!(Failures::default().wait_s(0), None);
    }

    #[test]
    fn an_address_pays_more_the_further_past_its_allowance() {
        assert_eq!(difficulty(0, 30), None);
        assert_eq!(difficulty(29, 30), None);
        assert_eq!(difficulty(30, 30), Some(BASE_BITS));
        assert_eq!(difficulty(59, 30), Some(BASE_BITS));
        assert_eq!(difficulty(60, 30), Some(BASE_BITS + 1));
        assert_eq!(difficulty(240, 30), Some(BASE_BITS + 3));
        // 1,400 guesses a minute for ten minutes: capped at the door's maximum.
        assert_eq!(difficulty(14_000, 30), Some(challenge::MAX_DIFFICULTY));
        assert_eq!(difficulty(1, 0), Some(BASE_BITS));
    }

    #[test]
    fn sliding_counts_forget_the_last_window_linearly() {
        assert_eq!(sliding(3, 10, 0, WINDOW_MS), 13);
        assert_eq!(sliding(3, 10, WINDOW_MS / 2, WINDOW_MS), 8);
        assert_eq!(sliding(3, 10, WINDOW_MS - 1, WINDOW_MS), 3);
        assert_eq!(window(WINDOW_MS * 7 + 5), 7);
    }

    #[test]
    fn cooling_is_told_honestly() {
        // Past the allowance in this window: the window's end, then until 40
        // has faded to 29 in the next one.
        assert_eq!(cools_in_s(40, 0, 30, 0), 600 + 165);
        assert_eq!(cools_in_s(40, 0, 30, WINDOW_MS - 1_500), 2 + 165);
        // Only the last window's weight keeps it over: until enough of it fades.
        assert_eq!(cools_in_s(10, 40, 30, 0), 315);
        assert_eq!(cools_in_s(0, 0, 30, 0), 1);
    }

    proptest! {
        /// After the told wait, the sliding count is under the allowance.
        #[test]
        fn after_cooling_the_address_is_within_its_allowance(
            this in 0u32..200, last in 0u32..200, allowance in 1u32..100, into in 0i64..WINDOW_MS,
        ) {
            let now = 5 * WINDOW_MS + into;
            prop_assume!(sliding(this, last, now, WINDOW_MS) >= allowance);
            let later = now + cools_in_s(this, last, allowance, now) as i64 * 1000;
            prop_assert!(later - now <= 2 * WINDOW_MS);
            let (this_then, last_then) = if window(later) == window(now) {
                (this, last)
            } else if window(later) == window(now) + 1 {
                (0, this)
            } else {
                (0, 0)
            };
            prop_assert!(sliding(this_then, last_then, later, WINDOW_MS) < allowance);
        }

        /// The wait never shrinks as failures grow, and never passes the cap.
        #[test]
        fn backoff_is_monotonic_and_capped(failures in 0u32..100) {
            let now = backoff_s(failures).unwrap_or(0);
            let next = backoff_s(failures + 1).unwrap_or(0);
            prop_assert!(next >= now);
            prop_assert!(next <= MAX_BACKOFF_S);
        }
    }
}
