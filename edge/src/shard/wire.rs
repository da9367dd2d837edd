//! What the worker asks a user shard and what it answers, in one place: each
//! ask is a [`ShardAsk`], sent as a GET whose path names it and whose query
//! carries it (`ShardAsk::url`, read back by `ShardAsk::parse`), so an ask
//! costs no body or headers. Answers are short texts (in a header) or, for
//! lists of numbers, a body.

use rushgate_core::dedup::{Gate, SessionRef};
use rushgate_core::draw::{SEED_LEN, Seed};
use rushgate_core::opening;

use crate::door::{AddressAsk, DoorAsk};
use crate::entrants::JoinAsk;
use crate::query::{bytes16, field, generation};

/// The shards' host in ask URLs (never resolved: the runtime routes a stub's
/// fetch to its object).
const HOST: &str = "https://dedup.internal";

/// A `/buy` at its shard: `gate?u=<user>&e=<event>&w=<window s>&t=<now
/// ms>&s=<session id hex>&g=<generation>[&n=<retry nonce hex>&x=<retry
/// expiry ms>][&d=<draw number>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub user_id: i64,
    pub event_id: i64,
    pub window_s: u32,
    pub now_ms: i64,
    pub sid: [u8; 16],
    pub generation: u32,
    /// A verified retry token: its nonce and expiry (ms).
    pub retry: Option<([u8; 16], i64)>,
    /// A first attempt in the event's opening draw: the user's number, which
    /// the shard records as an entrant's if the attempt passes the gate.
    pub draw: Option<f64>,
}

impl Ask {
    pub fn url(&self) -> String {
        let mut url = format!(
            "{HOST}/gate?u={}&e={}&w={}&t={}&s={}&g={}",
            self.user_id,
            self.event_id,
            self.window_s,
            self.now_ms,
            hex::encode(self.sid),
            self.generation
        );
        if let Some((nonce, expires_ms)) = &self.retry {
            url.push_str(&format!("&n={}&x={expires_ms}", hex::encode(nonce)));
        }
        if let Some(number) = self.draw {
            url.push_str(&format!("&d={}", opening::wire_number(number)));
        }
        url
    }

    pub fn parse(url: &str) -> Option<Self> {
        let field = |name: &str| field(url, name);
        let retry = match (field("n"), field("x")) {
            (Some(nonce), Some(exp)) => Some((bytes16(nonce)?, exp.parse().ok()?)),
            _ => None,
        };
        Some(Self {
            user_id: field("u")?.parse().ok()?,
            event_id: field("e")?.parse().ok()?,
            window_s: field("w")?.parse().ok()?,
            now_ms: field("t")?.parse().ok()?,
            sid: bytes16(field("s")?)?,
            generation: generation(url)?,
            retry,
            draw: match field("d") {
                Some(d) => Some(opening::parse_wire_number(d)?),
                None => None,
            },
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

/// Everything a shard is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardAsk {
    /// A `/buy`'s gate → [`Answer`].
    Gate(Ask),
    /// `session?u=&s=&g=&t=`: was the session ended? → `ok` | `revoked`.
    Session { session: SessionRef, now_ms: i64 },
    /// `revoke?s=&x=`: the session ended at logout, until its expiry → `ok`.
    Revoke { sid: [u8; 16], until_ms: i64 },
    /// `revoke-account?u=&g=&x=`: the account's sessions before
    /// `generation` ended → `ok`.
    RevokeAccount {
        user_id: i64,
        generation: u32,
        until_ms: i64,
    },
    /// An account at the door (`door`).
    Door(DoorAsk),
    /// A client address at the door (`door`).
    Address(AddressAsk),
    /// A queue join (`entrants`).
    Join(JoinAsk),
    /// `entrants?e=&o=`: the shard's counts of an event's entrants, as
    /// `<pre> <late>` (and its new joins go to the origin).
    Entrants { event_id: i64, opens_at_ms: i64 },
    /// `draw-histogram?e=`: how many of the shard's entrants in the event's
    /// opening draw fall in each part of number space
    /// (`core::opening::histogram`).
    DrawHistogram { event_id: i64 },
    /// `draw-bucket?e=&b=`: their numbers in one part.
    DrawBucket { event_id: i64, bucket: usize },
    /// `pre-histogram?e=&o=&s=`: the same for the pre-queue's entrants,
    /// numbered from the queue's seed.
    PreHistogram {
        event_id: i64,
        opens_at_ms: i64,
        seed: Seed,
    },
    /// `pre-bucket?e=&o=&s=&b=`.
    PreBucket {
        event_id: i64,
        opens_at_ms: i64,
        seed: Seed,
        bucket: usize,
    },
    /// `load`: the shard's asks and busiest second (not counted itself).
    Load,
}

impl ShardAsk {
    pub fn url(&self) -> String {
        match self {
            Self::Gate(ask) => ask.url(),
            Self::Session { session, now_ms } => format!(
                "{HOST}/session?u={}&s={}&g={}&t={now_ms}",
                session.user_id,
                hex::encode(session.sid),
                session.generation
            ),
            Self::Revoke { sid, until_ms } => {
                format!("{HOST}/revoke?s={}&x={until_ms}", hex::encode(sid))
            }
            Self::RevokeAccount {
                user_id,
                generation,
                until_ms,
            } => format!("{HOST}/revoke-account?u={user_id}&g={generation}&x={until_ms}"),
            Self::Door(ask) => ask.url(),
            Self::Address(ask) => ask.url(),
            Self::Join(ask) => ask.url(),
            Self::Entrants {
                event_id,
                opens_at_ms,
            } => format!("{HOST}/entrants?e={event_id}&o={opens_at_ms}"),
            Self::DrawHistogram { event_id } => format!("{HOST}/draw-histogram?e={event_id}"),
            Self::DrawBucket { event_id, bucket } => {
                format!("{HOST}/draw-bucket?e={event_id}&b={bucket}")
            }
            Self::PreHistogram {
                event_id,
                opens_at_ms,
                seed,
            } => format!(
                "{HOST}/pre-histogram?e={event_id}&o={opens_at_ms}&s={}",
                hex::encode(seed)
            ),
            Self::PreBucket {
                event_id,
                opens_at_ms,
                seed,
                bucket,
            } => format!(
                "{HOST}/pre-bucket?e={event_id}&o={opens_at_ms}&s={}&b={bucket}",
                hex::encode(seed)
            ),
            Self::Load => format!("{HOST}/load"),
        }
    }

    /// The ask a URL carries; `None` for an unknown path or a bad field.
    pub fn parse(url: &str) -> Option<Self> {
        let path = url.split('?').next()?.rsplit('/').next()?;
        let number = |name: &str| field(url, name)?.parse::<i64>().ok();
        let bucket = || field(url, "b")?.parse::<usize>().ok();
        let seed = || {
            let mut seed = [0u8; SEED_LEN];
            hex::decode_to_slice(field(url, "s")?, &mut seed).ok()?;
            Some(seed)
        };
        Some(match path {
            "gate" => Self::Gate(Ask::parse(url)?),
            "session" => Self::Session {
                session: SessionRef {
                    user_id: number("u")?,
                    sid: bytes16(field(url, "s")?)?,
                    generation: generation(url)?,
                },
                now_ms: number("t")?,
            },
            "revoke" => Self::Revoke {
                sid: bytes16(field(url, "s")?)?,
                until_ms: number("x")?,
            },
            "revoke-account" => Self::RevokeAccount {
                user_id: number("u")?,
                generation: field(url, "g")?.parse().ok()?,
                until_ms: number("x")?,
            },
            "door" => Self::Door(DoorAsk::parse(url)?),
            "address" => Self::Address(AddressAsk::parse(url)?),
            "join" => Self::Join(JoinAsk::parse(url)?),
            "entrants" => Self::Entrants {
                event_id: number("e")?,
                opens_at_ms: number("o")?,
            },
            "draw-histogram" => Self::DrawHistogram {
                event_id: number("e")?,
            },
            "draw-bucket" => Self::DrawBucket {
                event_id: number("e")?,
                bucket: bucket()?,
            },
            "pre-histogram" => Self::PreHistogram {
                event_id: number("e")?,
                opens_at_ms: number("o")?,
                seed: seed()?,
            },
            "pre-bucket" => Self::PreBucket {
                event_id: number("e")?,
                opens_at_ms: number("o")?,
                seed: seed()?,
                bucket: bucket()?,
            },
            "load" => Self::Load,
            _ => return None,
        })
    }
}

/// The shard's answer to a gate, as text: `pass`, `duplicate <retry after s>`,
/// `spent` or `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Gate(Gate),
    /// The session was ended by logging out.
    Revoked,
}

impl Answer {
    pub fn text(self) -> String {
        match self {
            Self::Gate(Gate::Pass) => "pass".into(),
            Self::Gate(Gate::Duplicate { retry_after_s }) => format!("duplicate {retry_after_s}"),
            Self::Gate(Gate::Spent) => "spent".into(),
            Self::Revoked => "revoked".into(),
        }
    }

    pub fn parse(text: &str) -> Self {
        match text.split_once(' ') {
            Some(("duplicate", after)) => Self::Gate(Gate::Duplicate {
                retry_after_s: after.parse().unwrap_or(1),
            }),
            _ if text == "pass" => Self::Gate(Gate::Pass),
            _ if text == "revoked" => Self::Revoked,
            _ => Self::Gate(Gate::Spent),
        }
    }
}

/// A stored account revocation: `"<generation> <until ms>"`.
pub fn parse_account(text: &str) -> Option<(u32, i64)> {
    let (generation, until) = text.split_once(' ')?;
    Some((generation.parse().ok()?, until.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_ask() -> Vec<ShardAsk> {
        let gate = Ask {
            user_id: 7,
            event_id: 42,
            window_s: 10,
            now_ms: 1_700_000_000_000,
            sid: [5; 16],
            generation: 3,
            retry: None,
            draw: None,
        };
        let session = SessionRef {
            user_id: 4,
            sid: [1; 16],
            generation: 2,
        };
        vec![
            ShardAsk::Gate(gate.clone()),
            ShardAsk::Gate(Ask {
                retry: Some(([0xab; 16], 1_700_000_100_000)),
                ..gate.clone()
            }),
            ShardAsk::Gate(Ask {
                draw: Some(0.123_456_789_012_345_67),
                ..gate
            }),
            ShardAsk::Session { session, now_ms: 5 },
            ShardAsk::Revoke {
                sid: [9; 16],
                until_ms: 99,
            },
            ShardAsk::RevokeAccount {
                user_id: 4,
                generation: 3,
                until_ms: 99,
            },
            ShardAsk::Door(DoorAsk {
                user_id: 3,
                now_ms: 8,
                sid: [2; 16],
                generation: 1,
                limit: 30,
                spend: Some(([3; 16], 77)),
            }),
            ShardAsk::Address(AddressAsk {
                address: "0f".repeat(16),
                user_id: 3,
                now_ms: 8,
                limit: 60,
            }),
            ShardAsk::Join(JoinAsk {
                event_id: 1,
                user_id: 2,
                now_ms: 3,
                opens_at_ms: 4,
                shards: 64,
                sid: [6; 16],
                generation: 0,
            }),
            ShardAsk::Entrants {
                event_id: 9,
                opens_at_ms: 5,
            },
            ShardAsk::DrawHistogram { event_id: 9 },
            ShardAsk::DrawBucket {
                event_id: 9,
                bucket: 1_023,
            },
            ShardAsk::PreHistogram {
                event_id: 9,
                opens_at_ms: 5,
                seed: [0xcd; SEED_LEN],
            },
            ShardAsk::PreBucket {
                event_id: 9,
                opens_at_ms: 5,
                seed: [0xcd; SEED_LEN],
                bucket: 7,
            },
            ShardAsk::Load,
        ]
    }

    #[test]
    fn every_ask_reads_back_as_sent() {
        for ask in every_ask() {
            assert_eq!(
                ShardAsk::parse(&ask.url()),
                Some(ask.clone()),
                "{}",
                ask.url()
            );
        }
    }

    #[test]
    fn a_bad_ask_reads_as_none() {
        for url in [
            "https://dedup.internal/gate?u=x",
            "https://dedup.internal/session?u=4&s=zz&t=1",
            "https://dedup.internal/draw-bucket?e=9",
            "https://dedup.internal/pre-histogram?e=9&o=5&s=abcd",
            "https://dedup.internal/revoke-account?u=4&x=9",
            "https://dedup.internal/nothing",
        ] {
            assert_eq!(ShardAsk::parse(url), None, "{url}");
        }
    }

    #[test]
    fn answers_read_back_as_sent() {
        for answer in [
            Answer::Gate(Gate::Pass),
            Answer::Gate(Gate::Spent),
            Answer::Gate(Gate::Duplicate { retry_after_s: 7 }),
            Answer::Revoked,
        ] {
            assert_eq!(Answer::parse(&answer.text()), answer);
        }
        assert_eq!(
            parse_account("3 1700000000000"),
            Some((3, 1_700_000_000_000))
        );
        assert_eq!(parse_account("3"), None);
    }
}
