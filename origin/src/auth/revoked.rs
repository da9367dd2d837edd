//! Revoked sessions. Sessions are stateless signed tokens, so ending one is
//! recorded in a Redis stream that every origin process follows; each process
//! keeps what it read in memory and checks sessions without a Redis round
//! trip. Two kinds of entry: one session (logging out) and all the sessions of
//! an account older than its current generation (its role changed, it was
//! disabled or deleted). The process that recorded an entry knows at once,
//! the others at their next sync (every second); the edge hears of them from
//! `relay`. An entry outlives the longest session, then is trimmed.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use redis::streams::StreamReadReply;
use rushgate_core::token::SessionClaims;

use crate::store::redis::Redis;

/// Sessions ended before their expiry, as this process knows them.
#[derive(Clone, Default)]
pub struct Revocations(Arc<RwLock<Known>>);

#[derive(Default)]
struct Known {
    /// Session id → its expiry (unix seconds); past it the token is refused anyway.
    sessions: HashMap<[u8; 16], i64>,
    /// Account → (the first generation still valid, until when that matters
    /// (unix seconds): by then every older session has expired).
    accounts: HashMap<i64, (u32, i64)>,
    /// The last stream entry read.
    last_id: Option<String>,
}

/// One entry of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Session {
        user_id: i64,
        sid: [u8; 16],
        exp: i64,
    },
    Account {
        user_id: i64,
        generation: u32,
        until: i64,
    },
}

impl Known {
    fn add(&mut self, entry: Revoked, now_s: i64) -> bool {
        match entry {
            Revoked::Session { sid, exp, .. } if exp > now_s => {
                self.sessions.insert(sid, exp).is_none()
            }
            Revoked::Account {
                user_id,
                generation,
                until,
            } if until > now_s => {
                let known = self.accounts.entry(user_id).or_insert((0, 0));
                let newer = generation > known.0;
                *known = (known.0.max(generation), known.1.max(until));
                newer
            }
            _ => false,
        }
    }
}

impl Revocations {
    /// Whether a (verified, unexpired) session was ended.
    pub fn is_revoked(&self, claims: &SessionClaims) -> bool {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        (!known.sessions.is_empty() && known.sessions.contains_key(&claims.sid))
            || known
                .accounts
                .get(&claims.user_id)
                .is_some_and(|(first_valid, _)| claims.generation < *first_valid)
    }

    /// Ends one session that would otherwise stay valid until `exp`.
    pub async fn revoke(
        &self,
        redis: &Redis,
        session: &SessionClaims,
        now_ms: i64,
        max_ttl_s: u32,
    ) -> redis::RedisResult<()> {
        let entry = Revoked::Session {
            user_id: session.user_id,
            sid: session.sid,
            exp: session.exp,
        };
        self.record(redis, entry, now_ms, max_ttl_s).await
    }

    /// Ends every session of `user_id` from before `generation`.
    pub async fn revoke_account(
        &self,
        redis: &Redis,
        user_id: i64,
        generation: u32,
        now_ms: i64,
        max_ttl_s: u32,
    ) -> redis::RedisResult<()> {
        let until = now_ms.div_euclid(1000) + i64::from(max_ttl_s);
        let entry = Revoked::Account {
            user_id,
            generation,
            until,
        };
        self.record(redis, entry, now_ms, max_ttl_s).await
    }

    /// Appends an entry (trimming those older than the longest session) and
    /// knows it at once.
    async fn record(
        &self,
        redis: &Redis,
        entry: Revoked,
        now_ms: i64,
        max_ttl_s: u32,
    ) -> redis::RedisResult<()> {
        append(redis, entry, now_ms, max_ttl_s).await?;
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add(entry, now_ms.div_euclid(1000));
        Ok(())
    }

    /// Reads the entries recorded since the last sync (by any process) and
    /// forgets those that no longer matter at `now_s`. Returns how many were new.
    pub async fn sync(&self, redis: &Redis, now_s: i64) -> redis::RedisResult<usize> {
        let mut added = 0;
        loop {
            let from = {
                let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
                known.last_id.clone().unwrap_or_else(|| "0".into())
            };
            let (entries, last) = read(redis, &from, 1000).await?;
            let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
            let Some(last) = last else {
                known.sessions.retain(|_, exp| *exp > now_s);
                known.accounts.retain(|_, (_, until)| *until > now_s);
                return Ok(added);
            };
            known.last_id = Some(last);
            for entry in entries {
                added += usize::from(known.add(entry, now_s));
            }
        }
    }
}

/// Appends `entry` to the stream, trimming entries older than a session lives.
pub async fn append(
    redis: &Redis,
    entry: Revoked,
    now_ms: i64,
    max_ttl_s: u32,
) -> redis::RedisResult<()> {
    let oldest_ms = now_ms - i64::from(max_ttl_s) * 1000;
    let mut cmd = redis::cmd("XADD");
    cmd.arg(redis.keys.revoked_sessions())
        .arg("MINID")
        .arg("~")
        .arg(oldest_ms.max(0))
        .arg("*");
    match entry {
        Revoked::Session { user_id, sid, exp } => cmd
            .arg("u")
            .arg(user_id)
            .arg("s")
            .arg(hex::encode(sid))
            .arg("x")
            .arg(exp),
        Revoked::Account {
            user_id,
            generation,
            until,
        } => cmd
            .arg("u")
            .arg(user_id)
            .arg("g")
            .arg(generation)
            .arg("x")
            .arg(until),
    };
    cmd.query_async::<()>(&mut redis.conn.clone()).await
}

/// Up to `count` entries after stream id `from`, and the last one's id.
pub async fn read(
    redis: &Redis,
    from: &str,
    count: usize,
) -> redis::RedisResult<(Vec<Revoked>, Option<String>)> {
    let reply: Option<StreamReadReply> = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(redis.keys.revoked_sessions())
        .arg(from)
        .query_async(&mut redis.conn.clone())
        .await?;
    let ids: Vec<_> = reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default();
    let last = ids.last().map(|e| e.id.clone());
    let entries = ids
        .iter()
        .filter_map(|entry| {
            let exp = entry.get::<i64>("x")?;
            if let Some(hex_sid) = entry.get::<String>("s") {
                let mut sid = [0u8; 16];
                hex::decode_to_slice(hex_sid, &mut sid).ok()?;
                // Entries from before accounts were recorded carry no user.
                let user_id = entry.get("u").unwrap_or(0);
                return Some(Revoked::Session { user_id, sid, exp });
            }
            Some(Revoked::Account {
                user_id: entry.get("u")?,
                generation: entry.get("g")?,
                until: exp,
            })
        })
        .collect();
    Ok((entries, last))
}
