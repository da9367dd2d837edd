//! Per-user dedup windows, single-use retry tokens and ended sessions (one
//! session logged out, or every session of an account before its current
//! generation), as kept by one edge shard (a Durable Object owning a slice of
//! the users). Pure state and decisions: the caller supplies `now` and owns
//! where the state lives.

use std::collections::HashMap;

/// What to do with a purchase attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Let it through (to the sold-out check, admission, the origin).
    Pass,
    /// A repeat inside the user's window for this event.
    Duplicate { retry_after_s: u64 },
    /// The retry token was already used.
    Spent,
}

/// Windows and spent retry tokens of the users of one shard.
#[derive(Debug, Default)]
pub struct Shard {
    /// (user, event) → when the window closes (unix ms).
    windows: HashMap<(i64, i64), i64>,
    /// Retry-token nonce → when the token expires (unix ms).
    spent: HashMap<[u8; 16], i64>,
    /// Session id → when the session would have expired (unix ms).
    revoked: HashMap<[u8; 16], i64>,
    /// Account → (its first valid generation, until when that matters (unix
    /// ms): by then its older sessions have expired).
    accounts: HashMap<i64, (u32, i64)>,
}

/// What [`Shard::prune`] forgot, for the caller's storage.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub sessions: Vec<[u8; 16]>,
    pub accounts: Vec<i64>,
}

impl Shard {
    /// A first attempt (no retry token): passes and opens a `window_s` window, or
    /// is a duplicate of the attempt that opened the current one.
    pub fn first_attempt(&mut self, user: i64, event: i64, window_s: u32, now_ms: i64) -> Gate {
        match self.windows.get(&(user, event)) {
            Some(&until) if until > now_ms => Gate::Duplicate {
                retry_after_s: ((until - now_ms) as u64).div_ceil(1000).max(1),
            },
            _ => {
                if window_s > 0 {
                    self.windows
                        .insert((user, event), now_ms + i64::from(window_s) * 1000);
                }
                Gate::Pass
            }
        }
    }

    /// An attempt with a (verified) retry token: passes once per token.
    pub fn retry_attempt(&mut self, nonce: [u8; 16], expires_ms: i64, now_ms: i64) -> Gate {
        match self.spent.get(&nonce) {
            Some(&until) if until > now_ms => Gate::Spent,
            _ => {
                self.spent.insert(nonce, expires_ms);
                Gate::Pass
            }
        }
    }

    /// Records that a session was ended before its expiry (`expires_ms`).
    pub fn revoke(&mut self, sid: [u8; 16], expires_ms: i64) {
        self.revoked.insert(sid, expires_ms);
    }

    /// Records that every session of `user` before `generation` ended; it
    /// matters until `until_ms`. A lower generation than one known changes
    /// nothing.
    pub fn revoke_account(&mut self, user: i64, generation: u32, until_ms: i64) {
        let known = self.accounts.entry(user).or_insert((0, 0));
        *known = (known.0.max(generation), known.1.max(until_ms));
    }

    /// Whether a session was ended: logged out, or its account moved past
    /// its generation (an expired session is refused anyway).
    pub fn is_revoked(&self, session: &SessionRef, now_ms: i64) -> bool {
        let logged_out = self
            .revoked
            .get(&session.sid)
            .is_some_and(|until| *until > now_ms);
        let superseded = self
            .accounts
            .get(&session.user_id)
            .is_some_and(|(first_valid, until)| {
                session.generation < *first_valid && *until > now_ms
            });
        logged_out || superseded
    }

    /// An account's (first valid generation, until), if one is known.
    pub fn account(&self, user: i64) -> Option<(u32, i64)> {
        self.accounts.get(&user).copied()
    }

    /// Forgets closed windows, expired tokens and revocations that no longer
    /// matter; returns what it forgot of the revocations (for the caller's
    /// storage).
    pub fn prune(&mut self, now_ms: i64) -> Forgotten {
        self.windows.retain(|_, until| *until > now_ms);
        self.spent.retain(|_, until| *until > now_ms);
        let mut forgotten = Forgotten::default();
        self.revoked.retain(|sid, until| {
            let keep = *until > now_ms;
            if !keep {
                forgotten.sessions.push(*sid);
            }
            keep
        });
        self.accounts.retain(|user, (_, until)| {
            let keep = *until > now_ms;
            if !keep {
                forgotten.accounts.push(*user);
            }
            keep
        });
        forgotten
    }

    pub fn len(&self) -> usize {
        self.windows.len() + self.spent.len() + self.revoked.len() + self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A session as a shard checks it: whose, which, and of which generation of
/// its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    pub user_id: i64,
    pub sid: [u8; 16],
    pub generation: u32,
}

/// Requests a second one Durable Object is kept under (Cloudflare's objects
/// take about 1,000 before they queue).
pub const TARGET_PER_OBJECT_S: f64 = 500.0;

/// Shard asks per purchase attempt at the peak: the gate, plus a share of
/// session checks, door counts and queue joins.
pub const ASKS_PER_ATTEMPT: f64 = 1.2;

/// How far the busiest shard runs above the mean (users hash unevenly; the
/// crowd simulator measures 1.3–2.0 at a few dozen asks per shard).
pub const IMBALANCE: f64 = 1.5;

/// The dedup shards a deployment needs for `peak_per_s` purchase attempts a
/// second at the edge, all locations together: `⌈peak × 1.2 × 1.5 / 500⌉`,
/// so that the busiest shard stays under [`TARGET_PER_OBJECT_S`].
pub fn shards_needed(peak_per_s: f64) -> u32 {
    (peak_per_s.max(0.0) * ASKS_PER_ATTEMPT * IMBALANCE / TARGET_PER_OBJECT_S)
        .ceil()
        .max(1.0) as u32
}

/// Which of `shards` owns a user.
pub fn shard_of(user_id: i64, shards: u32) -> u32 {
    crate::bucket::for_user(0x5eed, user_id, shards.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_click_inside_the_window_is_a_duplicate() {
        let mut shard = Shard::default();
        assert_eq!(shard.first_attempt(1, 9, 10, 1_000), Gate::Pass);
        assert_eq!(
            shard.first_attempt(1, 9, 10, 1_500),
            Gate::Duplicate { retry_after_s: 10 }
        );
        assert_eq!(
            shard.first_attempt(1, 9, 10, 10_100),
            Gate::Duplicate { retry_after_s: 1 }
        );
        assert_eq!(
            shard.first_attempt(1, 9, 10, 11_000),
            Gate::Pass,
            "window over"
        );
        assert_eq!(
            shard.first_attempt(2, 9, 10, 11_000),
            Gate::Pass,
            "other user"
        );
        assert_eq!(
            shard.first_attempt(1, 8, 10, 11_000),
            Gate::Pass,
            "other event"
        );
    }

    #[test]
    fn a_zero_window_never_dedups() {
        let mut shard = Shard::default();
        for t in 0..5 {
            assert_eq!(shard.first_attempt(1, 1, 0, t), Gate::Pass);
        }
    }

    #[test]
    fn retry_tokens_are_single_use() {
        let mut shard = Shard::default();
        assert_eq!(shard.retry_attempt([1; 16], 5_000, 1_000), Gate::Pass);
        assert_eq!(shard.retry_attempt([1; 16], 5_000, 1_001), Gate::Spent);
        assert_eq!(shard.retry_attempt([2; 16], 5_000, 1_001), Gate::Pass);
    }

    fn session(user_id: i64, sid: u8, generation: u32) -> SessionRef {
        SessionRef {
            user_id,
            sid: [sid; 16],
            generation,
        }
    }

    #[test]
    fn revoked_sessions_until_they_would_expire() {
        let mut shard = Shard::default();
        assert!(!shard.is_revoked(&session(1, 3, 0), 0));
        shard.revoke([3; 16], 10_000);
        assert!(shard.is_revoked(&session(1, 3, 0), 9_999));
        assert!(!shard.is_revoked(&session(1, 4, 0), 9_999));
        assert!(
            !shard.is_revoked(&session(1, 3, 0), 10_000),
            "expired anyway"
        );
        assert_eq!(shard.prune(9_000), Forgotten::default());
        assert_eq!(shard.prune(10_000).sessions, vec![[3; 16]]);
        assert!(shard.is_empty());
    }

    #[test]
    fn an_account_moved_on_ends_its_older_sessions_only() {
        let mut shard = Shard::default();
        shard.revoke_account(7, 2, 50_000);
        assert!(shard.is_revoked(&session(7, 1, 0), 1_000));
        assert!(shard.is_revoked(&session(7, 1, 1), 1_000));
        assert!(
            !shard.is_revoked(&session(7, 1, 2), 1_000),
            "logged in since"
        );
        assert!(
            !shard.is_revoked(&session(8, 1, 0), 1_000),
            "another account"
        );
        // An older relay of an earlier change changes nothing.
        shard.revoke_account(7, 1, 20_000);
        assert_eq!(shard.account(7), Some((2, 50_000)));
        assert!(
            !shard.is_revoked(&session(7, 1, 1), 50_000),
            "expired anyway"
        );
        assert_eq!(shard.prune(49_999), Forgotten::default());
        assert_eq!(shard.prune(50_000).accounts, vec![7]);
        assert!(shard.is_empty());
    }

    #[test]
    fn pruning_forgets_only_the_past() {
        let mut shard = Shard::default();
        shard.first_attempt(1, 1, 10, 0);
        shard.first_attempt(2, 1, 30, 0);
        shard.retry_attempt([1; 16], 5_000, 0);
        shard.prune(12_000);
        assert_eq!(shard.len(), 1);
        assert!(matches!(
            shard.first_attempt(2, 1, 30, 12_000),
            Gate::Duplicate { .. }
        ));
    }

    #[test]
    fn the_shard_count_follows_the_peak() {
        assert_eq!(shards_needed(0.0), 1);
        assert_eq!(shards_needed(10_000.0), 36);
        assert_eq!(shards_needed(50_000.0), 180);
        assert!(shards_needed(70_000.0) <= 256);
        assert!(shards_needed(100_000.0) > 256);
    }

    #[test]
    fn shards_cover_every_user() {
        let mut seen = [false; 16];
        for user in 0..1000 {
            seen[shard_of(user, 16) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
