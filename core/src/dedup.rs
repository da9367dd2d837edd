//! Per-user dedup windows, single-use retry tokens and revoked sessions, as kept
//! by one edge shard (a Durable Object owning a slice of the users). Pure state
//! and decisions: the caller supplies `now` and owns where the state lives.

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

    /// Whether a session was ended (an expired one is refused anyway).
    pub fn is_revoked(&self, sid: &[u8; 16], now_ms: i64) -> bool {
        self.revoked.get(sid).is_some_and(|until| *until > now_ms)
    }

    /// Forgets closed windows, expired tokens and revocations of expired
    /// sessions; returns the session ids forgotten (for the caller's storage).
    pub fn prune(&mut self, now_ms: i64) -> Vec<[u8; 16]> {
        self.windows.retain(|_, until| *until > now_ms);
        self.spent.retain(|_, until| *until > now_ms);
        let mut forgotten = Vec::new();
        self.revoked.retain(|sid, until| {
            let keep = *until > now_ms;
            if !keep {
                forgotten.push(*sid);
            }
            keep
        });
        forgotten
    }

    pub fn len(&self) -> usize {
        self.windows.len() + self.spent.len() + self.revoked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

    #[test]
    fn revoked_sessions_until_they_would_expire() {
        let mut shard = Shard::default();
        assert!(!shard.is_revoked(&[3; 16], 0));
        shard.revoke([3; 16], 10_000);
        assert!(shard.is_revoked(&[3; 16], 9_999));
        assert!(!shard.is_revoked(&[4; 16], 9_999));
        assert!(!shard.is_revoked(&[3; 16], 10_000), "expired anyway");
        assert_eq!(shard.prune(9_000), Vec::<[u8; 16]>::new());
        assert_eq!(shard.prune(10_000), vec![[3; 16]]);
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
    fn shards_cover_every_user() {
        let mut seen = [false; 16];
        for user in 0..1000 {
            seen[shard_of(user, 16) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
