//! What the queue's parts say to each other: the answer a waiting user polls
//! for (the contract for app clients), the origin's feed to the edge's
//! frontier, the edge's reports of joins and frontier steps to the origin, and
//! the frontier as the edge's isolates read it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Flow, Frontier};

/// Where a user stands, as `GET /api/events/{id}/queue` says.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Joined before the opening: the draw places everyone here at once.
    PreQueue,
    /// In line, not admitted yet.
    Waiting,
    /// Admitted: `purchase_url` buys, within `expires_at`.
    Admitted,
    /// Nothing left for anyone still waiting (units may come back: keep polling).
    SoldOut,
    /// The sale has closed.
    Closed,
}

/// `POST`/`GET /api/events/{id}/queue`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// The signed pass (join answers only): send it back in `X-Queue-Pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    pub state: QueueState,
    /// Place in line, 1 = first (0 in the pre-queue: places are drawn at the
    /// opening).
    pub place: u64,
    /// People ahead who are not admitted yet.
    pub ahead: u64,
    /// Everyone in line so far.
    pub entrants: u64,
    /// People admitted so far.
    pub admitted: u64,
    /// Units left in the sale.
    pub remaining: i64,
    /// Seconds until this user's turn at the current pace (none while nobody
    /// is being admitted).
    pub estimated_wait_s: Option<u64>,
    /// The chance of getting a unit, 0 to 1.
    pub chance: f64,
    /// Ask again after this many seconds.
    pub poll_after_s: u64,
    /// When admitted: the purchase URL, good until `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_url: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
}

/// Path of the origin's feed to the frontier, and of the edge's reports.
pub fn internal_path(event_id: i64) -> String {
    format!("/api/internal/queue/{event_id}")
}

/// `GET /api/internal/queue/{id}` (the edge, attested): what the frontier needs
/// from the origin at each step.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueFeed {
    /// The draw seed, hex (secret until the sale closes).
    pub seed: String,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
    pub window_s: u32,
    pub remaining: i64,
    /// Users who reserved units, and the units they reserved (any outcome).
    pub buyers: u64,
    pub units_bought: i64,
}

/// One join as a user's shard recorded it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    pub user_id: i64,
    pub joined_ms: i64,
}

/// `POST /api/internal/queue/{id}` (the edge, attested): joins recorded by a
/// shard, or the frontier after a step; either may be missing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueReport {
    #[serde(default)]
    pub joins: Vec<Join>,
    #[serde(default)]
    pub frontier: Option<FrontierReport>,
}

/// The most joins in one report.
pub const MAX_JOINS_PER_REPORT: usize = 2_000;

/// The frontier after a step, and how many it has admitted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontierReport {
    pub drawn: f64,
    pub late_until_ms: i64,
    pub admitted: u64,
}

/// A step of the frontier: where it stood from `at_ms` on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: i64,
    pub frontier: Frontier,
}

/// The frontier as the edge's isolates read it from the event's frontier
/// object (at most once a second each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierView {
    /// The draw seed, hex: isolates place pre-queue entrants with it.
    pub seed: String,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
    pub window_s: u32,
    pub frontier: Frontier,
    /// Recent steps, oldest first: when each entrant was admitted, for the
    /// end of their window.
    pub steps: Vec<Step>,
    /// Entrants before the opening and after it.
    pub pre_entrants: u64,
    pub late_entrants: u64,
    /// Entrants the frontier has passed.
    pub admitted: u64,
    /// What the last step knew (its `admitted` counts those who decided).
    pub flow: Flow,
    /// Admitted per second lately.
    pub admitted_per_s: f64,
}
