//! JSON shapes of the HTTP API, shared by the edge, the origin and the simulator.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::challenge::{ChallengeMode, Conditions};
use crate::event::Admission;
use crate::phase::{Phase, PresaleWindow};
use crate::role::Role;
use crate::velocity::Limits;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// A solved challenge of `GET /api/auth/challenge`, when many tries came
    /// from the client's network (`challenge_required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    pub user_id: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedIn {
    pub token: String,
    pub user_id: i64,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `GET /api/me`: who the session belongs to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user_id: i64,
    pub role: Role,
}

/// An account as an admin sees it (`GET /api/admin/users`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// `PATCH /api/admin/users/{id}`: a new role, or disabled (or enabled again).
/// Either ends the account's sessions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `POST /api/auth/logout`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedOut {
    pub ok: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerTime {
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// Review status of an event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Draft,
    PendingReview,
    Approved,
    Rejected,
    Cancelled,
}

impl EventStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingReview => "pending_review",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "pending_review" => Self::PendingReview,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierView {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock_total: i64,
    pub remaining: i64,
}

/// An event in full, as its detail page and the admin console see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub id: i64,
    pub name: String,
    pub venue: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub visible_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub closes_at: OffsetDateTime,
    pub per_user_limit: u32,
    pub per_order_limit: u32,
    pub payment_window_s: u32,
    pub dedup_window_s: u32,
    pub admission: Admission,
    pub buckets: u32,
    /// When the door asks for a proof of work.
    #[serde(default)]
    pub challenge: ChallengeMode,
    /// The presale's window, if the event has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presale: Option<PresaleWindow>,
    /// The door's velocity limits.
    #[serde(default)]
    pub velocity: Limits,
    pub status: EventStatus,
    pub phase: Phase,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
    pub tiers: Vec<TierView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_note: Option<String>,
    /// A queue's draw, from its approval on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draw: Option<DrawCommitment>,
}

/// `Event.draw`: the SHA-256 of the queue's secret seed, hex, fixed before
/// anyone joins; `GET /api/events/{id}/draw` reveals the seed after the sale.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawCommitment {
    pub commitment: String,
}

/// An event in the public list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    pub id: i64,
    pub name: String,
    pub venue: String,
    #[serde(with = "time::serde::rfc3339")]
    pub opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub closes_at: OffsetDateTime,
    pub phase: Phase,
    pub tiers: Vec<TierView>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<EventSummary>,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminEventList {
    pub events: Vec<EventView>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReviewNote {
    #[serde(default)]
    pub note: Option<String>,
}

/// `GET /api/events/{id}/challenge`: a proof of work for the door
/// (`core::challenge`). `difficulty` 0 means the door is open now: any nonce
/// solves it. A slow lane's answer counts from `not_before`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    pub challenge: String,
    pub difficulty: u8,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// What the difficulty was made from.
    pub conditions: Conditions,
}

/// The body of a join (or a purchase-URL request): the door's challenge and
/// its decimal nonce, and in a presale the buyer's presale code. An empty
/// body is none of these.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// A presale code, as typed (`core::presale::normalize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presale_code: Option<String>,
}

/// `POST /api/admin/events/{id}/presale/codes`: how many random codes to add.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateCodes {
    pub generate: u32,
}

/// What adding presale codes did: codes new to the event, and its total.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresaleCodes {
    pub added: i64,
    pub total: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurchaseUrl {
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyRequest {
    pub tier_id: i64,
    pub quantity: i64,
}

/// Lifecycle of a reservation turned order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Held in Redis, not yet written to PostgreSQL.
    Queued,
    AwaitingPayment,
    Paid,
    Expired,
    Cancelled,
}

impl OrderStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::AwaitingPayment => "awaiting_payment",
            Self::Paid => "paid",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "awaiting_payment" => Self::AwaitingPayment,
            "paid" => Self::Paid,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub status: OrderStatus,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub event_id: i64,
    pub tier_id: i64,
    pub user_id: i64,
    pub quantity: i64,
    pub amount_cents: i64,
    pub status: OrderStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderList {
    pub orders: Vec<Order>,
    /// The changes of these orders, newest first (up to 200): what the buyer
    /// was notified of, with times.
    #[serde(default)]
    pub events: Vec<crate::webhook::OrderNotice>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierStats {
    pub tier_id: i64,
    pub name: String,
    pub stock_total: i64,
    pub remaining: i64,
    pub reserved: i64,
    pub paid: i64,
    pub expired: i64,
    pub cancelled: i64,
}

/// How the crowd was filtered on its way to a reservation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    pub edge_arrivals: i64,
    pub deduped: i64,
    pub not_admitted: i64,
    pub forwarded: i64,
    pub rate_limited: i64,
    pub reserved: i64,
    pub sold_out_rejections: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventStats {
    pub event_id: i64,
    pub tiers: Vec<TierStats>,
    pub funnel: Funnel,
    pub page_views: i64,
    pub unique_visitors: i64,
    /// The workers' last check that stock and orders add up (`core::ledger`);
    /// none before the first.
    #[serde(default)]
    pub ledger: Option<LedgerCheck>,
    /// A queue's figures (admission mode `queue` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueStats>,
}

/// A queue as the console shows it, from what the edge reported.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Entrants who joined before the opening, and after it.
    pub pre_queue: i64,
    pub late: i64,
    /// Entrants the frontier has passed, and how many users bought.
    pub admitted: i64,
    pub converted: i64,
    /// The frontier: share of the pre-queue's number space admitted (0–1),
    /// and the join time (unix ms) up to which late joiners are admitted.
    pub drawn: f64,
    pub late_until_ms: Option<i64>,
    /// Joins per minute: `[minute start (unix ms), joins]`, oldest first.
    pub joins_per_minute: Vec<(i64, i64)>,
    /// Whether the draw record is published (`GET /api/events/{id}/draw`).
    pub draw_published: bool,
}

/// A check of an event's stock ledger: per tier, the units that are neither
/// left, held nor moving.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCheck {
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub tiers: Vec<TierDrift>,
    /// Checks in a row that found this same difference (0 when there is none).
    pub streak: u32,
    /// Buckets found without any stock key (Redis lost them); the check after
    /// the one that first finds a bucket lost writes it back.
    #[serde(default)]
    pub lost_buckets: Vec<u32>,
    /// What is wrong and the command that fixes it, once a difference persists.
    pub warning: Option<String>,
}

/// Units of a tier unaccounted for: positive = missing (would go unsold),
/// negative = counted twice (could oversell).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDrift {
    pub tier_id: i64,
    pub unaccounted: i64,
}

/// Funnel counts an edge gathered since its last report, per event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeCounts {
    pub event_id: i64,
    #[serde(default)]
    pub edge_arrivals: i64,
    #[serde(default)]
    pub deduped: i64,
    #[serde(default)]
    pub not_admitted: i64,
    #[serde(default)]
    pub sold_out_edge: i64,
    #[serde(default)]
    pub edge_forwarded: i64,
    #[serde(default)]
    pub page_views: i64,
}

/// What an edge sends to `POST /api/internal/edge-report`, signed with an
/// admission token for that path and user 0.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeReport {
    pub events: Vec<EdgeCounts>,
    /// Visitor ids seen per event (for unique-visitor counts).
    #[serde(default)]
    pub visitors: Vec<(i64, Vec<String>)>,
}

/// Origin → edge (`POST /api/edge/revocations`, with `X-Rushgate-Forward`):
/// sessions ended at the origin, for the edge's user shards to refuse too.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeRevocations {
    /// One session each (logged out): user, session id (hex), expiry (unix s).
    #[serde(default)]
    pub sessions: Vec<(i64, String, i64)>,
    /// Every session of an account before a generation: user, first valid
    /// generation, until when it matters (unix s).
    #[serde(default)]
    pub accounts: Vec<(i64, u32, i64)>,
}

/// Path the origin relays ended sessions to, at the edge.
pub const EDGE_REVOCATIONS_PATH: &str = "/api/edge/revocations";

/// Path the edge reports its counters to.
pub const EDGE_REPORT_PATH: &str = "/api/internal/edge-report";

/// Largest edge report body, bytes: the edge cuts its reports to fit, and the
/// origin accepts reports this large whatever its general body limit.
pub const EDGE_REPORT_MAX_BYTES: usize = 16 * 1024;

/// Whether a request body is one JSON object, as every body of the API is —
/// serde would read a struct from an array (`[7, 1]`) too. Only the first
/// character is looked at; the parser checks the rest.
pub fn is_json_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// `GET /api/edge/dedup-load` (edge only, admins): the load on each of the
/// edge's dedup Durable Objects since it started, in one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupLoad {
    pub shards: Vec<ShardLoad>,
    /// With `?event=<id>`: that event's queue frontier object (as `shard` 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontier: Option<ShardLoad>,
    /// With `?event=<id>`: that event's sale desk (leases, rates, the
    /// opening draw's share), as `shard` 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk: Option<ShardLoad>,
    /// The funnel tallies (the isolates' counts, summed for the origin).
    #[serde(default)]
    pub tallies: Vec<ShardLoad>,
}

/// One Durable Object's load (a user shard, a tally, a frontier, a desk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLoad {
    pub shard: u32,
    /// Requests it answered.
    pub asks: u64,
    /// The most it answered within one wall-clock second.
    pub peak_per_s: u32,
}

/// The headers of the contract between clients, the edge and the origin.
pub mod header {
    /// Edge → origin: the edge's attestation that it admitted a request
    /// (`crate::attest`).
    pub const ADMIT: &str = "x-rushgate-admit";
    /// Edge → origin: the edge's word on a request it sends or passes on,
    /// bound to its body, with the client's address (`crate::attest::forward`).
    pub const FORWARD: &str = "x-rushgate-forward";
    /// Client → edge: a retry token from a `not_admitted` answer, entering the
    /// next admission round.
    pub const RETRY_TOKEN: &str = "x-retry-token";
    /// Origin → edge, on `/buy` answers: units left in the tier when the origin
    /// knows it exactly, so the edge learns of a sell-out from the answer that
    /// caused it.
    pub const REMAINING: &str = "x-rushgate-remaining";
    /// Edge → client, on cached reads: `hit`, `stale` or `miss`.
    pub const CACHE: &str = "x-rushgate-cache";
    /// Client → edge: a queue pass (else its cookie, [`queue_cookie`]).
    pub const QUEUE_PASS: &str = "x-queue-pass";

    /// The cookie that carries an event's queue pass for the pages.
    pub fn queue_cookie(event_id: i64) -> String {
        format!("rushgate_queue_{event_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_objects() {
        assert!(is_json_object(b" \n{\"tier_id\": 1}"));
        for other in [&b"[7, 1]"[..], b"", b"  ", b"7", b"\"x\"", b"null"] {
            assert!(!is_json_object(other), "{other:?}");
        }
    }
}
