//! The reservation record: what `reserve.lua` puts on the order stream and in the
//! queued index, as JSON the origin writes and the order worker and the order
//! lookup read (readable with `redis-cli XRANGE`). `reserve.lua` writes it.

use rushgate_core::api::{Order, OrderStatus};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    pub id: Uuid,
    pub user_id: i64,
    pub event_id: i64,
    pub tier_id: i64,
    pub bucket: u32,
    pub quantity: i32,
    pub amount_cents: i64,
    /// Unix milliseconds at which the stock was held.
    pub created_ms: i64,
    pub payment_window_s: i32,
}

impl Reservation {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("plain data always serializes")
    }

    /// The record, if `text` is one: well-formed, and for at least one unit.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str::<Self>(text)
            .ok()
            .filter(|r| r.quantity > 0)
    }

    pub fn created_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.created_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The order as the API shows it before its row exists.
    pub fn queued_order(&self) -> Order {
        let created_at = self.created_at();
        Order {
            id: self.id,
            event_id: self.event_id,
            tier_id: self.tier_id,
            user_id: self.user_id,
            quantity: i64::from(self.quantity),
            amount_cents: self.amount_cents,
            status: OrderStatus::Queued,
            created_at,
            expires_at: created_at + Duration::seconds(i64::from(self.payment_window_s)),
            paid_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_junk() {
        let r = Reservation {
            id: Uuid::from_u128(0x0190_ffff),
            user_id: 7,
            event_id: 42,
            tier_id: 9,
            bucket: 3,
            quantity: 2,
            amount_cents: 3000,
            created_ms: 1_700_000_000_123,
            payment_window_s: 300,
        };
        assert_eq!(Reservation::parse(&r.encode()), Some(r));
        let order = r.queued_order();
        assert_eq!(order.status, OrderStatus::Queued);
        assert_eq!((order.expires_at - order.created_at).whole_seconds(), 300);
        let extra = r.encode().replace('}', r#","extra":1}"#);
        for junk in ["", "x", "garbage|1|2", "{}", &extra] {
            assert_eq!(Reservation::parse(junk), None, "{junk}");
        }
        let zero = Reservation { quantity: 0, ..r };
        assert_eq!(Reservation::parse(&zero.encode()), None);
    }
}
