//! JSON shapes of the HTTP API, shared by the edge, the origin and the simulator.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::Admission;
use crate::phase::Phase;
use crate::role::Role;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    pub user_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedIn {
    pub token: String,
    pub user_id: i64,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerTime {
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// Review status of an event.
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierView {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock_total: i64,
    pub remaining: i64,
}

/// An event in full, as its detail page and the admin console see it.
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
    pub admission: serde_json::Value,
    pub buckets: u32,
    pub status: EventStatus,
    pub phase: Phase,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
    pub tiers: Vec<TierView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_note: Option<String>,
}

impl EventView {
    pub fn admission(&self) -> Option<Admission> {
        Admission::parse(&self.admission).ok()
    }
}

/// An event in the public list.
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<EventSummary>,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminEventList {
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReviewNote {
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurchaseUrl {
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyRequest {
    pub tier_id: i64,
    pub quantity: i64,
}

/// Lifecycle of a reservation turned order.
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub status: OrderStatus,
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderList {
    pub orders: Vec<Order>,
}

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStats {
    pub event_id: i64,
    pub tiers: Vec<TierStats>,
    pub funnel: Funnel,
    pub page_views: i64,
    pub unique_visitors: i64,
}

/// Funnel counts an edge gathered since its last report, per event.
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeReport {
    pub events: Vec<EdgeCounts>,
    /// Visitor ids seen per event (for unique-visitor counts).
    #[serde(default)]
    pub visitors: Vec<(i64, Vec<String>)>,
}

/// Path the edge reports its counters to.
pub const EDGE_REPORT_PATH: &str = "/api/internal/edge-report";

/// Response header on `/buy` answers: units left in the tier when the origin
/// knows it exactly, so the edge learns of a sell-out from the answer that
/// caused it.
pub const REMAINING_HEADER: &str = "x-rushgate-remaining";
