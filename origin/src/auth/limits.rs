//! The limits of logging in and registering (`core::login`), kept in Redis so
//! that every origin process counts the same tries:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{la<hash>}:failures` | hash | an account's failures in a row (`n`) and the last one's time (`t`, ms) |
//! | `P:{lx<hash>}:<window>` | string | failed logins from an address in a fixed window |
//! | `P:{rx<hash>}:<window>` | string | accounts made from an address in a fixed window |
//! | `P:{lc<id>}:spent` | string | a login challenge that was answered |
//!
//! Accounts and addresses are hashed (SHA-256, 16 bytes): the keys hold no
//! username or address.

use clap::Args;
use redis::AsyncCommands as _;
use rushgate_core::challenge::{self, ChallengeError, Lane};
use rushgate_core::login::{self, Failures, WINDOW_MS};
use rushgate_core::{ErrorBody, ErrorCode, Keyring};

use crate::error::{ApiError, ApiResult};
use crate::store::redis::Redis;

/// The "event" login challenges are bound to.
pub const ACCOUNTS_DOOR: i64 = 0;

/// How many tries an address has before its tries cost work.
#[derive(Debug, Clone, Copy, Args)]
pub struct LimitsConfig {
    /// Failed logins from one client address per 10 minutes before each
    /// further login from it needs a solved challenge.
    #[arg(long, env = "RUSHGATE_LOGIN_FAILURES_PER_ADDRESS", default_value_t = login::DEFAULT_ADDRESS_FAILURES)]
    pub login_failures_per_address: u32,
    /// New accounts from one client address per 10 minutes before each
    /// further one needs a solved challenge.
    #[arg(long, env = "RUSHGATE_REGISTRATIONS_PER_ADDRESS", default_value_t = login::DEFAULT_ADDRESS_REGISTRATIONS)]
    pub registrations_per_address: u32,
}

/// Which count of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    FailedLogins,
    Registrations,
}

impl Counted {
    fn tag(self) -> &'static str {
        match self {
            Self::FailedLogins => "lx",
            Self::Registrations => "rx",
        }
    }

    fn allowance(self, config: &LimitsConfig) -> u32 {
        match self {
            Self::FailedLogins => config.login_failures_per_address,
            Self::Registrations => config.registrations_per_address,
        }
    }
}

fn hash16(text: &str) -> String {
    hex::encode(&rushgate_core::attest::body_sha256(text.as_bytes())[..16])
}

fn account_key(redis: &Redis, username: &str) -> String {
    let prefix = redis.keys.prefix();
    format!(
        "{prefix}:{{la{}}}:failures",
        hash16(&login::account_key(username))
    )
}

fn address_key(redis: &Redis, counted: Counted, address: &str, window: i64) -> String {
    let prefix = redis.keys.prefix();
    format!("{prefix}:{{{}{}}}:{window}", counted.tag(), hash16(address))
}

/// Refuses a try at an account that must still wait (429 `slow_down`).
pub async fn account_may_try(redis: &Redis, username: &str, now_ms: i64) -> ApiResult<()> {
    let (count, last_ms): (Option<u32>, Option<i64>) = redis::cmd("HMGET")
        .arg(account_key(redis, username))
        .arg("n")
        .arg("t")
        .query_async(&mut redis.conn.clone())
        .await?;
    let failures = Failures {
        count: count.unwrap_or(0),
        last_ms: last_ms.unwrap_or(0),
    };
    match failures.wait_s(now_ms) {
        None => Ok(()),
        Some(wait) => Err(ErrorBody::new(
            ErrorCode::SlowDown,
            "too many wrong passwords for this account: wait before trying again",
        )
        .with_retry_after(wait)
        .into()),
    }
}

/// Records a wrong password for the account and the address.
pub async fn failed_login(
    redis: &Redis,
    username: &str,
    address: &str,
    now_ms: i64,
) -> ApiResult<()> {
    let account = account_key(redis, username);
    let mut conn = redis.conn.clone();
    redis::pipe()
        .hincr(&account, "n", 1)
        .ignore()
        .hset(&account, "t", now_ms)
        .ignore()
        .expire(&account, 3_600)
        .ignore()
        .query_async::<()>(&mut conn)
        .await?;
    count(redis, Counted::FailedLogins, address, now_ms).await
}

/// A right password: the account's run of failures is over.
pub async fn logged_in(redis: &Redis, username: &str) -> ApiResult<()> {
    let _: () = redis.conn.clone().del(account_key(redis, username)).await?;
    Ok(())
}

/// Counts one failed login or one new account from `address`.
pub async fn count(redis: &Redis, counted: Counted, address: &str, now_ms: i64) -> ApiResult<()> {
    let key = address_key(redis, counted, address, login::window(now_ms));
    let mut conn = redis.conn.clone();
    redis::pipe()
        .incr(&key, 1)
        .ignore()
        .pexpire(&key, 2 * WINDOW_MS)
        .ignore()
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

/// What an address has used of its allowance: this window's count and the
/// last one's.
async fn seen(
    redis: &Redis,
    counted: Counted,
    address: &str,
    now_ms: i64,
) -> ApiResult<(u32, u32)> {
    let window = login::window(now_ms);
    let (this, last): (Option<u32>, Option<u32>) = redis::cmd("MGET")
        .arg(address_key(redis, counted, address, window))
        .arg(address_key(redis, counted, address, window - 1))
        .query_async(&mut redis.conn.clone())
        .await?;
    Ok((this.unwrap_or(0), last.unwrap_or(0)))
}

/// The work an address must show for its next try, if any.
pub async fn difficulty(
    redis: &Redis,
    config: &LimitsConfig,
    counted: Counted,
    address: &str,
    now_ms: i64,
) -> ApiResult<Option<(u8, u64)>> {
    let (this, last) = seen(redis, counted, address, now_ms).await?;
    let allowance = counted.allowance(config);
    let sliding = login::sliding(this, last, now_ms, WINDOW_MS);
    Ok(login::difficulty(sliding, allowance)
        .map(|bits| (bits, login::cools_in_s(this, last, allowance, now_ms))))
}

/// A solved challenge, if the body carried one.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Answer {
    pub challenge: Option<String>,
    pub nonce: Option<String>,
}

/// Lets a try from `address` through: within its allowance, or with a
/// challenge of the asked difficulty solved (and spent); else 403
/// `challenge_required` (with when the address is within its allowance again)
/// or `challenge_failed`.
pub async fn door(
    redis: &Redis,
    keys: &Keyring,
    config: &LimitsConfig,
    counted: Counted,
    address: &str,
    answer: &Answer,
    now_ms: i64,
) -> ApiResult<()> {
    let Some((bits, cools_in)) = difficulty(redis, config, counted, address, now_ms).await? else {
        return Ok(());
    };
    let required = || -> ApiError {
        ErrorBody::new(
            ErrorCode::ChallengeRequired,
            "many tries from your network: solve a challenge (GET /api/auth/challenge) or wait",
        )
        .with_retry_after(cools_in)
        .into()
    };
    let (Some(text), Some(nonce)) = (&answer.challenge, &answer.nonce) else {
        return Err(required());
    };
    let claims =
        match challenge::verify(keys, text, nonce, ACCOUNTS_DOOR, 0, now_ms.div_euclid(1000)) {
            Ok(claims) => claims,
            Err(ChallengeError::Wrong) => return Err(ErrorCode::ChallengeFailed.into()),
            Err(ChallengeError::Invalid | ChallengeError::TooEarly(_)) => return Err(required()),
        };
    // A slow lane's challenge is easier by design; anything easier still was
    // asked when the address was calmer: ask again.
    if claims.difficulty + challenge::SLOW_LANE_EASIER_BITS < bits {
        return Err(required());
    }
    let spent = format!(
        "{}:{{lc{}}}:spent",
        redis.keys.prefix(),
        hex::encode(claims.id)
    );
    let first: bool = redis::cmd("SET")
        .arg(&spent)
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(challenge::TTL_S + 60)
        .query_async::<Option<String>>(&mut redis.conn.clone())
        .await?
        .is_some();
    if first { Ok(()) } else { Err(required()) }
}

/// A challenge for the next login or registration from `address`: as hard as
/// the harder of its two counts asks (the door's `auto` minimum otherwise).
pub async fn issue(
    redis: &Redis,
    keys: &Keyring,
    config: &LimitsConfig,
    address: &str,
    lane: Lane,
    now_ms: i64,
) -> ApiResult<(String, challenge::ChallengeClaims)> {
    let logins = difficulty(redis, config, Counted::FailedLogins, address, now_ms).await?;
    let accounts = difficulty(redis, config, Counted::Registrations, address, now_ms).await?;
    let bits = [logins, accounts]
        .into_iter()
        .flatten()
        .map(|(bits, _)| bits)
        .max()
        .unwrap_or(login::BASE_BITS);
    Ok(challenge::issue(
        keys,
        ACCOUNTS_DOOR,
        0,
        bits,
        lane,
        now_ms.div_euclid(1000),
        rand::random(),
    ))
}
