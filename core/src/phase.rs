//! Sale phase, derived from the clock and the remaining stock at read time.
//! Nothing is written when a sale opens or closes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a sale stands for the public.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before `visible_at`: not shown to the public.
    Hidden,
    /// Shown, not yet open.
    Upcoming,
    /// Inside the presale window: open to holders of a presale code only.
    Presale,
    /// Open and stock remains.
    Open,
    /// Open but nothing remains.
    SoldOut,
    /// After `closes_at`.
    Closed,
}

impl Phase {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hidden => "hidden",
            Self::Upcoming => "upcoming",
            Self::Presale => "presale",
            Self::Open => "open",
            Self::SoldOut => "sold_out",
            Self::Closed => "closed",
        }
    }
}

/// The instants that drive a sale: shown, open, closed, and the presale's
/// window, if any, before the opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub visible_at: OffsetDateTime,
    pub opens_at: OffsetDateTime,
    pub closes_at: OffsetDateTime,
    pub presale: Option<PresaleWindow>,
}

/// A presale: from `opens_at` until `closes_at` (at the latest the general
/// opening) only holders of a presale code may buy.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresaleWindow {
    #[serde(with = "time::serde::rfc3339")]
    pub opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub closes_at: OffsetDateTime,
}

impl PresaleWindow {
    pub fn contains(&self, now: OffsetDateTime) -> bool {
        self.opens_at <= now && now < self.closes_at
    }
}

impl Schedule {
    /// The phase at `now` given the units remaining across all tiers.
    pub fn phase(&self, now: OffsetDateTime, remaining: i64) -> Phase {
        if now >= self.closes_at {
            Phase::Closed
        } else if now < self.visible_at {
            Phase::Hidden
        } else if now < self.opens_at {
            match self.presale {
                Some(p) if p.contains(now) && remaining > 0 => Phase::Presale,
                Some(p) if p.contains(now) => Phase::SoldOut,
                _ => Phase::Upcoming,
            }
        } else if remaining > 0 {
            Phase::Open
        } else {
            Phase::SoldOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn schedule() -> Schedule {
        Schedule {
            visible_at: datetime!(2026-01-01 10:00 UTC),
            opens_at: datetime!(2026-01-01 12:00 UTC),
            closes_at: datetime!(2026-01-01 14:00 UTC),
            presale: None,
        }
    }

    #[test]
    fn a_presale_is_its_own_phase_before_the_opening() {
        let s = Schedule {
            presale: Some(PresaleWindow {
                opens_at: datetime!(2026-01-01 10:30 UTC),
                closes_at: datetime!(2026-01-01 11:00 UTC),
            }),
            ..schedule()
        };
        assert_eq!(s.phase(datetime!(2026-01-01 10:29 UTC), 5), Phase::Upcoming);
        assert_eq!(s.phase(datetime!(2026-01-01 10:30 UTC), 5), Phase::Presale);
        assert_eq!(s.phase(datetime!(2026-01-01 10:59 UTC), 0), Phase::SoldOut);
        assert_eq!(s.phase(datetime!(2026-01-01 11:00 UTC), 5), Phase::Upcoming);
        assert_eq!(s.phase(datetime!(2026-01-01 12:00 UTC), 5), Phase::Open);
    }

    #[test]
    fn phases_follow_the_clock() {
        let s = schedule();
        assert_eq!(
            s.phase(datetime!(2026-01-01 09:59:59 UTC), 5),
            Phase::Hidden
        );
        assert_eq!(s.phase(datetime!(2026-01-01 10:00 UTC), 5), Phase::Upcoming);
        assert_eq!(
            s.phase(datetime!(2026-01-01 11:59:59.999 UTC), 5),
            Phase::Upcoming
        );
        assert_eq!(s.phase(datetime!(2026-01-01 12:00 UTC), 5), Phase::Open);
        assert_eq!(s.phase(datetime!(2026-01-01 12:00 UTC), 0), Phase::SoldOut);
        assert_eq!(s.phase(datetime!(2026-01-01 14:00 UTC), 5), Phase::Closed);
        assert_eq!(s.phase(datetime!(2026-01-01 14:00 UTC), 0), Phase::Closed);
    }

    #[test]
    fn serializes_snake_case() {
        assert_eq!(
            serde_json::to_string(&Phase::SoldOut).unwrap(),
            "\"sold_out\""
        );
        assert_eq!(Phase::SoldOut.as_str(), "sold_out");
    }
}
