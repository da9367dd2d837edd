//! The door in front of a sale (SPEC §4, "Bot defence"): `GET
//! /api/events/{id}/challenge` hands out a proof of work (`core::challenge`)
//! whose difficulty follows the sale's load here and the asker's risk, and
//! [`pass`] checks the answer a join (or a purchase-URL request) carries:
//! verified in the Wasm worker, spent once in the user's shard.
//!
//! Every ask at the door counts a try of the account (in its user shard, with
//! the session check) and of the client address (`CF-Connecting-IP`, in the
//! shard its hash picks), both at once. Too many tries answer 429
//! `slow_down`; many accounts behind one address only raise its difficulty.
//! A sale whose `challenge` is `off` has no door: nothing asked, nothing
//! counted.

use std::rc::Rc;

use rushgate_core::api::{Challenge, DoorAnswer, EventView, is_json_object};
use rushgate_core::challenge::{
    self, ChallengeClaims, ChallengeError, ChallengeMode, Conditions, Lane,
};
use rushgate_core::dedup::{SessionRef, shard_of};
use rushgate_core::token::SessionClaims;
use rushgate_core::velocity;
use rushgate_core::{ErrorBody, ErrorCode};
use time::OffsetDateTime;
use worker::{Env, Request, Response};

use crate::clock;
use crate::config::Config;
use crate::error::{EdgeError, json};
use crate::query::{bytes16, field, generation};
use crate::session;
use crate::shard::{self, ShardAsk};
use crate::snapshot;

/// How many difficulty bits a presented challenge may be below what the door
/// asks now (the crowd grew while it was being solved).
const DIFFICULTY_SLACK: u8 = 2;

/// `/door?u=<user>&t=<now ms>&s=<sid hex>&g=<generation>&l=<tries
/// limit>[&n=<challenge id hex>&x=<its expiry ms>]` → `revoked` | `slow <s>` |
/// `spent <tries>` | `ok <tries>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorAsk {
    pub user_id: i64,
    pub now_ms: i64,
    pub sid: [u8; 16],
    pub generation: u32,
    pub limit: u32,
    pub spend: Option<([u8; 16], i64)>,
}

impl DoorAsk {
    pub fn url(&self) -> String {
        let mut url = format!(
            "https://dedup.internal/door?u={}&t={}&s={}&g={}&l={}",
            self.user_id,
            self.now_ms,
            hex::encode(self.sid),
            self.generation,
            self.limit
        );
        if let Some((id, expires_ms)) = &self.spend {
            url.push_str(&format!("&n={}&x={expires_ms}", hex::encode(id)));
        }
        url
    }

    pub fn parse(url: &str) -> Option<Self> {
        let spend = match (field(url, "n"), field(url, "x")) {
            (Some(id), Some(exp)) => Some((bytes16(id)?, exp.parse().ok()?)),
            _ => None,
        };
        Some(Self {
            user_id: field(url, "u")?.parse().ok()?,
            now_ms: field(url, "t")?.parse().ok()?,
            sid: bytes16(field(url, "s")?)?,
            generation: generation(url)?,
            limit: field(url, "l")?.parse().ok()?,
            spend,
        })
    }

    pub fn session(&self) -> SessionRef {
        SessionRef {
            user_id: self.user_id,
            sid: self.sid,
            generation: self.generation,
        }
    }
}

/// `/address?a=<address key>&u=<user>&t=<now ms>&l=<tries limit>` → `slow
/// <s>` | `ok <tries> <accounts>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressAsk {
    /// The address's hash, hex (the shard never sees the address itself).
    pub address: String,
    pub user_id: i64,
    pub now_ms: i64,
    pub limit: u32,
}

impl AddressAsk {
    pub fn url(&self) -> String {
        format!(
            "https://dedup.internal/address?a={}&u={}&t={}&l={}",
            self.address, self.user_id, self.now_ms, self.limit
        )
    }

    pub fn parse(url: &str) -> Option<Self> {
        let address = field(url, "a")?;
        let hex_key = address.len() == 32 && address.bytes().all(|b| b.is_ascii_hexdigit());
        Some(Self {
            address: hex_key.then(|| address.to_owned())?,
            user_id: field(url, "u")?.parse().ok()?,
            now_ms: field(url, "t")?.parse().ok()?,
            limit: field(url, "l")?.parse().ok()?,
        })
    }
}

/// The client's address key (a hash of `CF-Connecting-IP`), hex, and the
/// number that picks its shard; `None` when the platform in front does not
/// set the header (`TRUST_CF_CONNECTING_IP` is off: a client could write any
/// address there): such requests are not counted by address.
fn address_key(req: &Request, config: &Config) -> Option<(String, i64)> {
    let ip = config.client_address(req.headers())?;
    let key = velocity::address_key(&ip);
    let mut number = [0u8; 8];
    number.copy_from_slice(&key[..8]);
    Some((hex::encode(key), i64::from_le_bytes(number)))
}

/// What the two shards said about this try.
struct Tries {
    account_tries_per_min: u32,
    accounts_on_address: u32,
    /// The presented challenge was used before.
    spent: bool,
}

/// Counts a try of the account and of the address, at once; spends `spend`.
async fn count_try(
    req: &Request,
    env: &Env,
    config: &Config,
    user: &SessionClaims,
    limits: velocity::Limits,
    spend: Option<&ChallengeClaims>,
    now_ms: i64,
) -> Result<Tries, EdgeError> {
    let door = DoorAsk {
        user_id: user.user_id,
        now_ms,
        sid: user.sid,
        generation: user.generation,
        limit: limits.account_per_min,
        spend: spend.map(|c| (c.id, c.exp * 1000)),
    };
    let at_address = address_key(req, config).map(|(address, number)| {
        let ask = AddressAsk {
            address,
            user_id: user.user_id,
            now_ms,
            limit: limits.address_per_min,
        };
        (
            shard_of(number, config.dedup_shards),
            ShardAsk::Address(ask),
        )
    });
    let address_answer = async {
        match &at_address {
            Some((at, ask)) => shard::ask_at(env, *at, ask).await.map(Some),
            None => Ok(None),
        }
    };
    let (account, address) = futures_util::future::join(
        shard::ask(env, config, user.user_id, &ShardAsk::Door(door.clone())),
        address_answer,
    )
    .await;
    let (account, address) = (account?, address?);
    let slow = |after: &str| {
        let after_s = after.parse().unwrap_or(60);
        EdgeError::from(ErrorBody::from(ErrorCode::SlowDown).with_retry_after(after_s))
    };
    let mut words = account.split(' ');
    let (spent, account_tries_per_min) = match (words.next(), words.next()) {
        (Some("revoked"), _) => return Err(session::unauthenticated()),
        (Some("slow"), Some(after)) => return Err(slow(after)),
        (Some(word @ ("ok" | "spent")), Some(tries)) => {
            (word == "spent", tries.parse().unwrap_or(u32::MAX))
        }
        _ => return Err(EdgeError::origin_unavailable()),
    };
    // Not counted by address: as if the account were alone behind it.
    let accounts_on_address = match address.as_deref().map(|a| a.split(' ').collect::<Vec<_>>()) {
        None => 1,
        Some(words) => match words.as_slice() {
            ["slow", after] => return Err(slow(after)),
            ["ok", _tries, accounts] => accounts.parse().unwrap_or(u32::MAX),
            _ => return Err(EdgeError::origin_unavailable()),
        },
    };
    Ok(Tries {
        account_tries_per_min,
        accounts_on_address,
        spent,
    })
}

/// What the door asks of this try now: the difficulty (`None` when open),
/// and what it was made from.
fn asked(view: &EventView, tries: &Tries, now_ms: i64) -> (Option<u8>, Conditions) {
    let conditions = Conditions {
        arrivals_per_s: snapshot::door_arrival(view.id, now_ms),
        accounts_on_address: tries.accounts_on_address,
        account_tries_per_min: tries.account_tries_per_min,
    };
    (
        challenge::difficulty(view.challenge, &conditions),
        conditions,
    )
}

fn time_of(unix_s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `GET /api/events/{id}/challenge[?lane=slow]`.
pub async fn challenge(
    req: &Request,
    env: &Env,
    config: &Rc<Config>,
    event_id: i64,
    now_ms: i64,
) -> Result<Response, EdgeError> {
    let now = clock::now();
    let user = session::user(req.headers(), &config.keys, now.unix_timestamp())?;
    let view = snapshot::public_view(config, event_id, now_ms).await?;
    snapshot::door_phase(&view, now)?;
    let url = req.inner().url();
    let lane = match field(&url, "lane") {
        None | Some("fast") => Lane::Fast,
        Some("slow") => Lane::Slow,
        Some(_) => {
            return Err(EdgeError::from(
                ErrorBody::new(ErrorCode::InvalidInput, "lane is fast or slow").with_field("lane"),
            ));
        }
    };
    let tries = count_try(req, env, config, &user, view.velocity, None, now_ms).await?;
    let (difficulty, conditions) = asked(&view, &tries, now_ms);
    let difficulty = difficulty.unwrap_or(0);
    let (text, claims) = challenge::issue(
        &config.keys,
        event_id,
        user.user_id,
        difficulty,
        lane,
        now.unix_timestamp(),
        clock::random(),
    );
    Ok(json(
        200,
        &Challenge {
            challenge: text,
            difficulty: claims.difficulty,
            expires_at: time_of(claims.exp),
            not_before: time_of(claims.not_before),
            conditions,
        },
    ))
}

/// The door's check for a join or a purchase URL: counts the try, and when
/// the door asks for a challenge (or one is presented) verifies it and spends
/// it once. `body` is the request's body (empty: no answer).
pub async fn pass(
    req: &Request,
    env: &Env,
    config: &Config,
    user: &SessionClaims,
    view: &EventView,
    body: &[u8],
    now_ms: i64,
) -> Result<(), EdgeError> {
    let answer = parse_answer(body)?;
    if view.challenge == ChallengeMode::Off {
        // The door is off: no proof of work, and no tries counted.
        return Ok(());
    }
    let now_s = now_ms.div_euclid(1000);
    let claims = match (&answer.challenge, &answer.nonce) {
        (Some(text), Some(nonce)) => {
            match challenge::verify(&config.keys, text, nonce, view.id, user.user_id, now_s) {
                Ok(claims) => Some(claims),
                Err(ChallengeError::Invalid) => {
                    return Err(EdgeError::new(
                        ErrorCode::ChallengeRequired,
                        "this challenge is not valid here or has expired: ask for a new one",
                    ));
                }
                Err(ChallengeError::TooEarly(at)) => {
                    return Err(EdgeError::from(
                        ErrorBody::new(
                            ErrorCode::ChallengeRequired,
                            "the slow lane's answer counts a little later",
                        )
                        .with_retry_after((at - now_s).max(1) as u64),
                    ));
                }
                Err(ChallengeError::Wrong) => return Err(ErrorCode::ChallengeFailed.into()),
            }
        }
        (None, None) => None,
        _ => {
            return Err(EdgeError::from(
                ErrorBody::new(ErrorCode::InvalidInput, "send both challenge and nonce")
                    .with_field(if answer.nonce.is_none() {
                        "nonce"
                    } else {
                        "challenge"
                    }),
            ));
        }
    };
    let tries = count_try(
        req,
        env,
        config,
        user,
        view.velocity,
        claims.as_ref(),
        now_ms,
    )
    .await?;
    if tries.spent {
        return Err(EdgeError::new(
            ErrorCode::ChallengeRequired,
            "this challenge was used already: ask for a new one",
        ));
    }
    let (Some(asked), _) = asked(view, &tries, now_ms) else {
        return Ok(());
    };
    match claims {
        Some(c) if c.difficulty.saturating_add(DIFFICULTY_SLACK) >= asked => Ok(()),
        Some(_) => Err(EdgeError::new(
            ErrorCode::ChallengeRequired,
            "the sale got busier: ask for a new challenge",
        )),
        None => Err(ErrorCode::ChallengeRequired.into()),
    }
}

/// The body's answer; an empty body is none.
fn parse_answer(body: &[u8]) -> Result<DoorAnswer, EdgeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DoorAnswer::default());
    }
    let answer = is_json_object(body)
        .then(|| serde_json::from_slice(body).ok())
        .flatten();
    answer.ok_or_else(|| {
        EdgeError::new(
            ErrorCode::InvalidInput,
            "send {\"challenge\": .., \"nonce\": ..} or nothing",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_round_trip() {
        let door = DoorAsk {
            user_id: 42,
            now_ms: 1_700_000_000_123,
            sid: [7; 16],
            generation: 0,
            limit: 30,
            spend: Some(([9; 16], 1_700_000_300_000)),
        };
        assert_eq!(DoorAsk::parse(&door.url()), Some(door.clone()));
        let plain = DoorAsk {
            spend: None,
            ..door
        };
        assert_eq!(DoorAsk::parse(&plain.url()), Some(plain));
        let address = AddressAsk {
            address: "00112233445566778899aabbccddeeff".into(),
            user_id: 42,
            now_ms: 5,
            limit: 6_000,
        };
        assert_eq!(AddressAsk::parse(&address.url()), Some(address));
        assert_eq!(
            AddressAsk::parse("https://dedup.internal/address?a=10.0.0.1&u=1&t=1&l=1"),
            None,
            "a shard never takes a raw address"
        );
    }

    #[test]
    fn an_empty_body_is_no_answer_and_junk_is_refused() {
        assert_eq!(parse_answer(b"").unwrap(), DoorAnswer::default());
        assert_eq!(parse_answer(b" \n").unwrap(), DoorAnswer::default());
        let answer = parse_answer(br#"{"challenge":"c","nonce":"12"}"#).unwrap();
        assert_eq!(answer.nonce.as_deref(), Some("12"));
        for junk in [
            &b"nope"[..],
            br#"{"challenge":"c","nonce":"1","x":1}"#,
            b"[]",
        ] {
            assert_eq!(
                parse_answer(junk).unwrap_err().0.error,
                ErrorCode::InvalidInput
            );
        }
    }
}
