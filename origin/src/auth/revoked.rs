//! Revoked sessions. Sessions are stateless signed tokens, so logging out records
//! the session's id in a Redis stream that every origin process follows; each
//! process keeps the ids in memory and checks them without a Redis round trip.
//! The process that took the logout knows at once, the others at their next sync
//! (every second). An entry outlives the longest session, then is trimmed.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use redis::streams::StreamReadReply;

use crate::store::redis::Redis;

/// Session ids revoked before their expiry, as this process knows them.
#[derive(Clone, Default)]
pub struct Revocations(Arc<RwLock<Known>>);

#[derive(Default)]
struct Known {
    /// Session id → its expiry (unix seconds); past it the token is refused anyway.
    sessions: HashMap<[u8; 16], i64>,
    /// The last stream entry read.
    last_id: Option<String>,
}

impl Revocations {
    pub fn is_revoked(&self, sid: &[u8; 16]) -> bool {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        !known.sessions.is_empty() && known.sessions.contains_key(sid)
    }

    /// Revokes a session that would otherwise stay valid until `exp`. Entries
    /// older than `max_ttl_s` (the longest a session lives) are trimmed.
    pub async fn revoke(
        &self,
        redis: &Redis,
        sid: [u8; 16],
        exp: i64,
        now_ms: i64,
        max_ttl_s: u32,
    ) -> redis::RedisResult<()> {
        let oldest_ms = now_ms - i64::from(max_ttl_s) * 1000;
        redis::cmd("XADD")
            .arg(redis.keys.revoked_sessions())
            .arg("MINID")
            .arg("~")
            .arg(oldest_ms.max(0))
            .arg("*")
            .arg("s")
            .arg(hex::encode(sid))
            .arg("x")
            .arg(exp)
            .query_async::<()>(&mut redis.conn.clone())
            .await?;
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .sessions
            .insert(sid, exp);
        Ok(())
    }

    /// Reads the revocations recorded since the last sync (by any process) and
    /// forgets those past their expiry at `now_s`. Returns how many were new.
    pub async fn sync(&self, redis: &Redis, now_s: i64) -> redis::RedisResult<usize> {
        let mut added = 0;
        loop {
            let from = {
                let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
                known.last_id.clone().unwrap_or_else(|| "0".into())
            };
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("STREAMS")
                .arg(redis.keys.revoked_sessions())
                .arg(&from)
                .query_async(&mut redis.conn.clone())
                .await?;
            let entries: Vec<_> = reply
                .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                .unwrap_or_default();
            let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
            let Some(last) = entries.last() else {
                known.sessions.retain(|_, exp| *exp > now_s);
                return Ok(added);
            };
            known.last_id = Some(last.id.clone());
            for entry in &entries {
                let sid = entry.get::<String>("s").and_then(|hex_sid| {
                    let mut sid = [0u8; 16];
                    hex::decode_to_slice(hex_sid, &mut sid).ok().map(|()| sid)
                });
                if let (Some(sid), Some(exp)) = (sid, entry.get::<i64>("x"))
                    && exp > now_s
                {
                    added += usize::from(known.sessions.insert(sid, exp).is_none());
                }
            }
        }
    }
}
