//! The proof-of-work door (SPEC §4, "Bot defence"). A challenge is a signed
//! token bound to one event and one user, with its difficulty and an id that
//! makes it single-use; the answer is a decimal `nonce` such that SHA-256 of
//! the UTF-8 string `challenge + nonce` has at least `difficulty` leading zero
//! bits. Checking an answer costs one HMAC and one SHA-256; spending it once is
//! the caller's (the edge records the id in the user's shard).
//!
//! The difficulty is a pure function of the sale's load and the asker's risk
//! ([`difficulty`]): calm sales ask little or nothing, a crowd asks more, and a
//! user or address that behaves like a script asks much more. Nobody is locked
//! out: the slow lane halves the work in bits' worth of orders of magnitude and
//! makes the answer wait instead ([`Lane::Slow`]).

use ring::digest;
use serde::{Deserialize, Serialize};

use crate::token::{Claims, Keyring, Kind, TokenError};

/// How long a challenge may be answered, seconds.
pub const TTL_S: i64 = 300;

/// The hardest challenge ever asked: 2^24 hashes on average, seconds on a
/// desktop, a minute or two on a phone (docs/API.md, "The door").
pub const MAX_DIFFICULTY: u8 = 24;

/// The longest decimal nonce accepted (a u64).
const MAX_NONCE_LEN: usize = 20;

/// When the door asks for a challenge (an event setting).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeMode {
    /// Never.
    Off,
    /// Under load, or for a risky asker.
    #[default]
    Auto,
    /// Always.
    Always,
}

/// Which lane the asker chose: the fast lane solves the full challenge; the
/// slow lane solves one [`SLOW_LANE_EASIER_BITS`] easier and its answer counts
/// only after [`SLOW_LANE_WAIT_S`] — a slower device waits instead of working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    #[default]
    Fast,
    Slow,
}

/// Bits the slow lane's challenge is easier (16× less work).
pub const SLOW_LANE_EASIER_BITS: u8 = 4;

/// How long a slow lane's answer waits before it counts, seconds.
pub const SLOW_LANE_WAIT_S: i64 = 20;

/// The signed challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeClaims {
    pub event_id: i64,
    pub user_id: i64,
    pub difficulty: u8,
    /// Unix seconds before which the answer does not count (the slow lane).
    pub not_before: i64,
    /// Makes the challenge single-use.
    pub id: [u8; 16],
    pub exp: i64,
}

impl Claims for ChallengeClaims {
    const KIND: Kind = Kind::Challenge;
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// What the sale and the asker look like when a challenge is asked for (also
/// in the challenge's answer, so a client can tell its user why it is slow).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Conditions {
    /// Arrivals per second at the event lately (this isolate's estimate).
    pub arrivals_per_s: f64,
    /// Distinct accounts seen from the asker's address in the last minute.
    pub accounts_on_address: u32,
    /// Challenges the account asked for in the last minute.
    pub account_tries_per_min: u32,
}

/// Arrivals per second from which `auto` asks everyone.
pub const BUSY_ARRIVALS_PER_S: f64 = 20.0;

/// Accounts on one address that still look like a household or an office.
pub const QUIET_ACCOUNTS_ON_ADDRESS: u32 = 4;

/// Tries per minute that still look like a person.
pub const QUIET_TRIES_PER_MIN: u32 = 3;

/// The difficulty to ask for, or `None` when the door stays open. Calm and
/// quiet: nothing (`auto`) or 8 bits (`always`). A crowd: 12 bits, plus one per
/// doubling of the arrival rate over busy, up to 16. A risky asker: one bit
/// more per doubling of the accounts on their address over a household's, and
/// per doubling of their tries over a person's. Capped at [`MAX_DIFFICULTY`].
pub fn difficulty(mode: ChallengeMode, conditions: &Conditions) -> Option<u8> {
    let busy = conditions.arrivals_per_s >= BUSY_ARRIVALS_PER_S;
    let crowd_bits = if busy {
        12 + doublings(conditions.arrivals_per_s / BUSY_ARRIVALS_PER_S).min(4)
    } else {
        8
    };
    let risk_bits =
        doublings(f64::from(conditions.accounts_on_address) / f64::from(QUIET_ACCOUNTS_ON_ADDRESS))
            + doublings(
                f64::from(conditions.account_tries_per_min) / f64::from(QUIET_TRIES_PER_MIN),
            );
    let ask = match mode {
        ChallengeMode::Off => false,
        ChallengeMode::Always => true,
        ChallengeMode::Auto => busy || risk_bits > 0,
    };
    ask.then(|| (crowd_bits + risk_bits).min(u32::from(MAX_DIFFICULTY)) as u8)
}

/// Whole doublings of `ratio` over 1 (0 below 2).
fn doublings(ratio: f64) -> u32 {
    if ratio.is_finite() && ratio >= 2.0 {
        ratio.log2().floor().min(32.0) as u32
    } else {
        0
    }
}

/// Signs a challenge for `lane`; `difficulty` is the fast lane's.
pub fn issue(
    keys: &Keyring,
    event_id: i64,
    user_id: i64,
    difficulty: u8,
    lane: Lane,
    now_s: i64,
    id: [u8; 16],
) -> (String, ChallengeClaims) {
    let (difficulty, not_before) = match lane {
        Lane::Fast => (difficulty, now_s),
        Lane::Slow => (
            difficulty.saturating_sub(SLOW_LANE_EASIER_BITS),
            now_s + SLOW_LANE_WAIT_S,
        ),
    };
    let claims = ChallengeClaims {
        event_id,
        user_id,
        difficulty: difficulty.min(MAX_DIFFICULTY),
        not_before,
        id,
        exp: now_s + TTL_S,
    };
    (keys.sign(&claims), claims)
}

/// Why an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Not a challenge, someone else's, another event's, or past its time:
    /// ask for a new one (`challenge_required`).
    #[error("ask for a new challenge")]
    Invalid,
    /// A slow lane's answer before its time (`challenge_required`, retry later).
    #[error("this answer counts from {0} (unix seconds)")]
    TooEarly(i64),
    /// The nonce does not solve it (`challenge_failed`).
    #[error("the nonce does not solve the challenge")]
    Wrong,
}

/// Checks an answer for `event_id` and `user_id` at `now_s`. Single use is the
/// caller's: spend `claims.id` once.
pub fn verify(
    keys: &Keyring,
    challenge: &str,
    nonce: &str,
    event_id: i64,
    user_id: i64,
    now_s: i64,
) -> Result<ChallengeClaims, ChallengeError> {
    let claims: ChallengeClaims = match keys.verify(challenge, now_s) {
        Ok(claims) => claims,
        Err(TokenError::BadSignature | TokenError::Expired) => return Err(ChallengeError::Invalid),
    };
    if claims.event_id != event_id || claims.user_id != user_id {
        return Err(ChallengeError::Invalid);
    }
    if !solves(challenge, nonce, claims.difficulty) {
        return Err(ChallengeError::Wrong);
    }
    if now_s < claims.not_before {
        return Err(ChallengeError::TooEarly(claims.not_before));
    }
    Ok(claims)
}

/// Whether SHA-256(`challenge` + `nonce`) has `difficulty` leading zero bits;
/// `nonce` must be a decimal number without a sign or leading zeros.
pub fn solves(challenge: &str, nonce: &str, difficulty: u8) -> bool {
    let decimal = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.bytes().all(|b| b.is_ascii_digit())
        && (nonce == "0" || !nonce.starts_with('0'));
    if !decimal {
        return false;
    }
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(challenge.as_bytes());
    ctx.update(nonce.as_bytes());
    leading_zero_bits(ctx.finish().as_ref()) >= u32::from(difficulty)
}

/// Leading zero bits of `bytes`.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for b in bytes {
        if *b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// Finds the smallest nonce that solves a challenge (tests, the crowd
/// simulator's bots). Expected 2^difficulty hashes.
pub fn solve(challenge: &str, difficulty: u8) -> u64 {
    let mut prefix = digest::Context::new(&digest::SHA256);
    prefix.update(challenge.as_bytes());
    let mut text = itoa_buffer();
    (0u64..)
        .find(|n| {
            let mut ctx = prefix.clone();
            ctx.update(decimal(*n, &mut text));
            leading_zero_bits(ctx.finish().as_ref()) >= u32::from(difficulty)
        })
        .expect("a u64 nonce exists for any difficulty up to 24")
}

fn itoa_buffer() -> [u8; MAX_NONCE_LEN] {
    [0; MAX_NONCE_LEN]
}

/// `n` in decimal, written into the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; MAX_NONCE_LEN]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keyring {
        Keyring::new(&[3u8; 32], None).unwrap()
    }

    fn issued(lane: Lane) -> (String, ChallengeClaims) {
        issue(&keys(), 7, 42, 10, lane, 1_000, [5; 16])
    }

    #[test]
    fn a_solved_challenge_verifies_for_its_user_and_event_only() {
        let (challenge, claims) = issued(Lane::Fast);
        let nonce = solve(&challenge, claims.difficulty).to_string();
        assert_eq!(
            verify(&keys(), &challenge, &nonce, 7, 42, 1_010),
            Ok(claims)
        );
        assert_eq!(
            verify(&keys(), &challenge, &nonce, 7, 43, 1_010),
            Err(ChallengeError::Invalid),
            "another user"
        );
        assert_eq!(
            verify(&keys(), &challenge, &nonce, 8, 42, 1_010),
            Err(ChallengeError::Invalid),
            "another event"
        );
        assert_eq!(
            verify(&keys(), &challenge, &nonce, 7, 42, 1_000 + TTL_S),
            Err(ChallengeError::Invalid),
            "expired"
        );
        let other = Keyring::new(&[4u8; 32], None).unwrap();
        assert_eq!(
            verify(&other, &challenge, &nonce, 7, 42, 1_010),
            Err(ChallengeError::Invalid),
            "another deployment's key"
        );
    }

    #[test]
    fn a_wrong_or_malformed_nonce_fails() {
        let (challenge, claims) = issued(Lane::Fast);
        let good = solve(&challenge, claims.difficulty);
        // The first nonce below the solution does not solve it (it is the smallest).
        if good > 0 {
            let wrong = (good - 1).to_string();
            assert_eq!(
                verify(&keys(), &challenge, &wrong, 7, 42, 1_010),
                Err(ChallengeError::Wrong)
            );
        }
        for bad in [
            "",
            "-1",
            "+1",
            "1e3",
            " 1",
            &format!("0{good}"),
            "123456789012345678901",
        ] {
            assert!(
                !solves(&challenge, bad, 0),
                "{bad:?} is not a decimal nonce"
            );
        }
        assert!(solves(&challenge, "0", 0));
    }

    #[test]
    fn the_slow_lane_is_easier_and_counts_later() {
        let (challenge, claims) = issued(Lane::Slow);
        assert_eq!(claims.difficulty, 10 - SLOW_LANE_EASIER_BITS);
        let nonce = solve(&challenge, claims.difficulty).to_string();
        assert_eq!(
            verify(&keys(), &challenge, &nonce, 7, 42, 1_001),
            Err(ChallengeError::TooEarly(1_000 + SLOW_LANE_WAIT_S))
        );
        assert!(verify(&keys(), &challenge, &nonce, 7, 42, 1_000 + SLOW_LANE_WAIT_S).is_ok());
    }

    #[test]
    fn a_challenge_is_no_other_token() {
        let (challenge, _) = issued(Lane::Fast);
        let keys = keys();
        assert!(
            keys.verify::<crate::token::PurchaseClaims>(&challenge, 1_010)
                .is_err()
        );
        let purchase = keys.sign(&crate::token::PurchaseClaims {
            event_id: 7,
            user_id: 42,
            exp: 2_000,
            nonce: [5; 16],
        });
        assert_eq!(
            verify(&keys, &purchase, "0", 7, 42, 1_010),
            Err(ChallengeError::Invalid)
        );
    }

    #[test]
    fn leading_zero_bits_count_across_bytes() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn difficulty_follows_load_and_risk() {
        let calm = Conditions::default();
        assert_eq!(difficulty(ChallengeMode::Off, &calm), None);
        assert_eq!(difficulty(ChallengeMode::Auto, &calm), None);
        assert_eq!(difficulty(ChallengeMode::Always, &calm), Some(8));
        let busy = |arrivals_per_s| Conditions {
            arrivals_per_s,
            ..calm
        };
        assert_eq!(difficulty(ChallengeMode::Auto, &busy(20.0)), Some(12));
        assert_eq!(difficulty(ChallengeMode::Auto, &busy(80.0)), Some(14));
        assert_eq!(difficulty(ChallengeMode::Auto, &busy(1e9)), Some(16));
        assert_eq!(difficulty(ChallengeMode::Off, &busy(1e9)), None);
        // Many accounts behind one address: asked even when calm, harder the
        // more there are — never refused.
        let shared = |accounts_on_address| Conditions {
            accounts_on_address,
            ..calm
        };
        assert_eq!(difficulty(ChallengeMode::Auto, &shared(4)), None);
        assert_eq!(difficulty(ChallengeMode::Auto, &shared(8)), Some(9));
        assert_eq!(difficulty(ChallengeMode::Auto, &shared(4_000)), Some(17));
        let script = Conditions {
            arrivals_per_s: 1e9,
            accounts_on_address: 1_000_000,
            account_tries_per_min: 1_000_000,
        };
        assert_eq!(
            difficulty(ChallengeMode::Auto, &script),
            Some(MAX_DIFFICULTY)
        );
        assert_eq!(
            difficulty(ChallengeMode::Auto, &busy(f64::NAN)),
            None,
            "an unknown rate is calm"
        );
    }

    #[test]
    fn difficulty_never_falls_as_load_or_risk_grows() {
        let mut last = 0;
        for step in 0..200 {
            let c = Conditions {
                arrivals_per_s: f64::from(step) * 3.0,
                accounts_on_address: step * 7,
                account_tries_per_min: step,
            };
            let d = difficulty(ChallengeMode::Always, &c).unwrap();
            assert!(d >= last, "{d} after {last} at step {step}");
            last = d;
        }
    }
}
