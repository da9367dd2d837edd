//! Webhooks: the body of a delivery, its `X-Rushgate-Signature` (sign and
//! verify, with a replay window), the retry schedule (exponential backoff with
//! jitter) and the leaky bucket that paces deliveries to one endpoint.
//!
//! Pure: callers pass the clock and the randomness.

use ring::hmac;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::{Order, OrderStatus};

/// The header that carries a delivery's signature.
pub const SIGNATURE_HEADER: &str = "X-Rushgate-Signature";

/// How far a signature's time may lie from the receiver's clock before the
/// delivery counts as a replay, seconds.
pub const TOLERANCE_S: i64 = 300;

/// The type of an order event: `order.` and the status the order entered.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "order.queued")]
    Queued,
    #[serde(rename = "order.awaiting_payment")]
    AwaitingPayment,
    #[serde(rename = "order.paid")]
    Paid,
    #[serde(rename = "order.expired")]
    Expired,
    #[serde(rename = "order.cancelled")]
    Cancelled,
}

impl EventType {
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::AwaitingPayment,
        Self::Paid,
        Self::Expired,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "order.queued",
            Self::AwaitingPayment => "order.awaiting_payment",
            Self::Paid => "order.paid",
            Self::Expired => "order.expired",
            Self::Cancelled => "order.cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The status an order has once this event happened.
    pub const fn status(self) -> OrderStatus {
        match self {
            Self::Queued => OrderStatus::Queued,
            Self::AwaitingPayment => OrderStatus::AwaitingPayment,
            Self::Paid => OrderStatus::Paid,
            Self::Expired => OrderStatus::Expired,
            Self::Cancelled => OrderStatus::Cancelled,
        }
    }
}

/// One delivery's body: `id` is the idempotency key, the same on every retry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The order as it was right after the change.
    pub data: Order,
}

/// The signature header's value for `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_bytes(t, body));
    format!("t={t},v1={}", hex::encode(tag.as_ref()))
}

fn signed_bytes(t: i64, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{t}.").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the signature's time is outside the tolerance (a replay?)")]
    Stale,
}

/// Checks a signature header against `body` as a receiver should: the HMAC in
/// constant time, and `t` within `tolerance_s` of `now_s`, so a captured
/// delivery cannot be replayed later. (Within the window, the body's `id`
/// tells a retry from a replay: a receiver acts on each `id` once.)
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut macs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", v)) => macs.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if macs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signed = signed_bytes(t, body);
    if !macs.iter().any(|m| hmac::verify(&key, &signed, m).is_ok()) {
        return Err(VerifyError::BadSignature);
    }
    if (now_s - t).abs() > tolerance_s {
        return Err(VerifyError::Stale);
    }
    Ok(())
}

/// When to try again after `failures` failed tries (1 after the first):
/// `base_ms · 2^(failures-1)`, at most `max_ms`, times a jitter factor in
/// [½, 1) from `u` uniform in [0, 1) — so retries of many deliveries spread
/// out, and never come sooner than half the nominal delay.
pub fn backoff_ms(failures: u32, base_ms: u64, max_ms: u64, u: f64) -> u64 {
    let doublings = failures.saturating_sub(1).min(40);
    let nominal = base_ms.saturating_mul(1u64 << doublings).min(max_ms);
    let factor = 0.5 + 0.5 * u.clamp(0.0, 1.0);
    ((nominal as f64) * factor).floor() as u64
}

/// An endpoint's pace: `rate_per_s` deliveries a second, up to `burst` at once
/// after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub rate_per_s: u32,
    pub burst: u32,
}

impl Pace {
    fn interval_us(self) -> i64 {
        (1_000_000 / i64::from(self.rate_per_s.max(1))).max(1)
    }

    /// Send times for up to `want` deliveries from `now_us` to `now_us +
    /// horizon_us`, by the generic cell rate algorithm over `tat_us` (the
    /// theoretical arrival time of the next send); returns the times and the new
    /// `tat_us`. Any window of one second then holds at most `rate_per_s +
    /// burst` sends, and a long run averages `rate_per_s`.
    pub fn schedule(
        self,
        tat_us: i64,
        now_us: i64,
        horizon_us: i64,
        want: usize,
    ) -> (Vec<i64>, i64) {
        let interval = self.interval_us();
        let tolerance = interval * i64::from(self.burst.max(1) - 1);
        let mut tat = tat_us;
        let mut times = Vec::new();
        while times.len() < want {
            let at = now_us.max(tat - tolerance);
            if at > now_us + horizon_us {
                break;
            }
            times.push(at);
            tat = tat.max(at) + interval;
        }
        (times, tat)
    }
}

/// An endpoint's default pace, deliveries a second (`RUSHGATE_WEBHOOK_RATE_PER_S`).
pub const DEFAULT_RATE_PER_S: u32 = 50;

/// The most deliveries a second an endpoint may ask for.
pub const MAX_RATE_PER_S: u32 = 10_000;

/// An event's own endpoint, as the console creates it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// `http://` or `https://` URL the deliveries are POSTed to.
    pub url: String,
    /// The signing secret (16–200 characters); omitted: one is generated and
    /// answered once.
    #[serde(default)]
    pub secret: Option<String>,
    /// The event types it wants; omitted: all of them.
    #[serde(default)]
    pub types: Option<Vec<EventType>>,
    /// Deliveries a second, at most; omitted: 50.
    #[serde(default)]
    pub rate_per_s: Option<u32>,
    /// Deliveries at once after a quiet spell; omitted: a tenth of the rate (at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// The default burst for a rate: a tenth of it, at least one.
pub fn default_burst(rate_per_s: u32) -> u32 {
    (rate_per_s / 10).max(1)
}

/// An endpoint and how its deliveries stand (for one event, when listed under one).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub id: i64,
    /// The event it belongs to; `null`: the deployment's (`RUSHGATE_WEBHOOK_URLS`).
    pub event_id: Option<i64>,
    pub url: String,
    pub types: Vec<EventType>,
    pub rate_per_s: u32,
    pub burst: u32,
    pub enabled: bool,
    /// Deliveries waiting (due, retrying or in flight).
    pub pending: i64,
    /// Of those, the ones that failed at least once.
    pub retrying: i64,
    pub delivered: i64,
    /// Deliveries that used up their tries: retry them from the console.
    pub dead: i64,
    /// Age of the oldest waiting delivery, seconds.
    pub oldest_pending_s: Option<f64>,
    /// The generated secret, answered once when the endpoint is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// A delivery that used up its tries.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub endpoint_id: i64,
    /// The event's id (its idempotency key).
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub order_id: Uuid,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead: Vec<DeadLetter>,
}

/// How many dead deliveries went back to waiting.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requeued {
    pub requeued: i64,
}

/// One change of one of a buyer's orders, for the buyer's page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderNotice {
    pub order_id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_for_its_body_secret_and_time_only() {
        let body = br#"{"id":"x"}"#;
        let header = sign(b"secret", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(b"secret", &header, body, 1_700_000_010, 300), Ok(()));
        assert_eq!(
            verify(b"other", &header, body, 1_700_000_010, 300),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(b"secret", &header, br#"{"id":"y"}"#, 1_700_000_010, 300),
            Err(VerifyError::BadSignature)
        );
        // The same delivery presented an hour later is a replay.
        assert_eq!(
            verify(b"secret", &header, body, 1_700_003_600, 300),
            Err(VerifyError::Stale)
        );
        // A changed time breaks the signature, so the window cannot be moved.
        let moved = header.replace("t=1700000000", "t=1700003600");
        assert_eq!(
            verify(b"secret", &moved, body, 1_700_003_600, 300),
            Err(VerifyError::BadSignature)
        );
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz"] {
            assert_eq!(
                verify(b"secret", bad, body, 1, 300),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
        // A receiver accepts any matching v1 (the sender may add schemes).
        let two = format!("{header},v1=00");
        assert_eq!(verify(b"secret", &two, body, 1_700_000_000, 300), Ok(()));
    }

    #[test]
    fn event_types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(t.as_str(), format!("order.{}", t.status().as_str()));
        }
        assert_eq!(EventType::parse("order.shipped"), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() {
        assert_eq!(backoff_ms(1, 1000, 60_000, 0.0), 500);
        assert_eq!(backoff_ms(1, 1000, 60_000, 0.999_999), 999);
        assert_eq!(backoff_ms(2, 1000, 60_000, 0.0), 1000);
        assert_eq!(backoff_ms(4, 1000, 60_000, 0.0), 4000);
        assert_eq!(backoff_ms(30, 1000, 60_000, 0.0), 30_000);
        assert_eq!(backoff_ms(u32::MAX, 1000, 60_000, 1.0), 60_000);
        for failures in 1..20 {
            let low = backoff_ms(failures, 250, 10_000, 0.0);
            let high = backoff_ms(failures, 250, 10_000, 1.0);
            assert!(
                low <= high && high <= 2 * low + 1,
                "{failures}: {low}..{high}"
            );
            assert!(backoff_ms(failures + 1, 250, 10_000, 0.0) >= low);
        }
    }

    /// The most sends in any window of one second.
    fn densest_second(times: &[i64]) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|&&t| t < times[i] + 1_000_000)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn the_pace_never_exceeds_its_rate_and_burst() {
        let pace = Pace {
            rate_per_s: 50,
            burst: 5,
        };
        // A worker asking every 7 ms for as much as it may send in 100 ms.
        let (mut tat, mut sent) = (0, Vec::new());
        let mut now = 10_000_000;
        while now < 20_000_000 {
            let (times, next) = pace.schedule(tat, now, 100_000, 1000);
            assert!(times.windows(2).all(|w| w[0] <= w[1]));
            assert!(times.iter().all(|&t| t >= now && t <= now + 100_000));
            sent.extend(times);
            tat = next;
            now += 7_000;
        }
        assert!(densest_second(&sent) <= 55, "{}", densest_second(&sent));
        // Ten seconds at 50 a second, plus the first burst (the last asks
        // also scheduled a little past the ten seconds).
        let within = sent.iter().filter(|&&t| t < 20_000_000).count();
        assert!((500..=505).contains(&within), "{within}");
    }

    #[test]
    fn a_quiet_endpoint_takes_its_burst_at_once_then_the_rate() {
        let pace = Pace {
            rate_per_s: 10,
            burst: 3,
        };
        let (times, tat) = pace.schedule(0, 5_000_000, 0, 10);
        assert_eq!(times, vec![5_000_000; 3]);
        let (times, _) = pace.schedule(tat, 5_000_000, 250_000, 10);
        assert_eq!(times, vec![5_100_000, 5_200_000]);
        // Taking fewer than allowed leaves the rest for later.
        let (times, tat) = pace.schedule(0, 5_000_000, 0, 1);
        assert_eq!(times.len(), 1);
        assert_eq!(pace.schedule(tat, 5_000_000, 0, 10).0.len(), 2);
    }
}
