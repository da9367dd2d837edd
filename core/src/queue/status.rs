//! A waiting user's answer (`GET /api/events/{id}/queue`), worked out from
//! their pass, their draw number and the frontier as the edge last read it.

use super::wire::{FrontierView, QueueState, QueueStatus};
use super::{Standing, estimated_wait_s, poll_after_s};
use crate::token::QueuePassClaims;

/// Where a pass stands and what to tell its holder, before the edge adds a
/// purchase URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: QueueStatus,
    /// When admitted: until when the purchase URL is good (unix ms).
    pub url_until_ms: Option<i64>,
}

/// The least time a purchase URL from the queue is good for (ms): enough to
/// send the purchase, whatever is left of the window.
pub const MIN_URL_MS: i64 = 5_000;

/// Whether the pass's holder joined before the opening.
pub fn is_pre_queue(pass: &QueuePassClaims, opens_at_ms: i64) -> bool {
    pass.joined_ms < opens_at_ms
}

/// The pass holder's standing: their draw number's share of number space
/// (`fraction`, from [`crate::draw::number`]) in the pre-queue, else their
/// join time.
pub fn standing(pass: &QueuePassClaims, opens_at_ms: i64, fraction: f64) -> Standing {
    if is_pre_queue(pass, opens_at_ms) {
        Standing::Drawn { fraction }
    } else {
        Standing::Late {
            joined_ms: pass.joined_ms,
        }
    }
}

/// When the frontier first admitted `standing`, as far as the recent steps
/// tell: the frontier keeps the steps of the last window and one before them,
/// so an entrant admitted earlier gets a time at least a window old.
fn admitted_at(view: &FrontierView, standing: Standing) -> Option<i64> {
    let first = view.steps.iter().find(|s| s.frontier.admits(standing))?;
    Some(first.at_ms)
}

/// The answer for the holder of `pass` at `now_ms`; `jitter` in [0, 1) spreads
/// the crowd's next polls.
pub fn answer(
    view: &FrontierView,
    pass: &QueuePassClaims,
    fraction: f64,
    now_ms: i64,
    jitter: f64,
) -> Answer {
    let pre = is_pre_queue(pass, view.opens_at_ms);
    let standing = standing(pass, view.opens_at_ms, fraction);
    let entrants = view.pre_entrants + view.late_entrants;
    let before_opening = now_ms < view.opens_at_ms;
    let (place, admitted_ahead) = if pre {
        let place = if before_opening {
            0
        } else {
            ((fraction * view.pre_entrants as f64) as u64 + 1).min(view.pre_entrants.max(1))
        };
        let admitted = (view.frontier.drawn * view.pre_entrants as f64) as u64;
        (place, admitted)
    } else {
        let place = view.pre_entrants + pass.late_ahead + 1;
        (place, view.admitted)
    };
    let ahead = place.saturating_sub(1).saturating_sub(admitted_ahead);
    let admitted = view.frontier.admits(standing);
    let remaining = view.flow.remaining;
    let state = if now_ms >= view.closes_at_ms {
        QueueState::Closed
    } else if remaining <= 0 {
        QueueState::SoldOut
    } else if admitted {
        QueueState::Admitted
    } else if before_opening {
        QueueState::PreQueue
    } else {
        QueueState::Waiting
    };
    let wait = match state {
        QueueState::Waiting => estimated_wait_s(ahead, view.admitted_per_s),
        QueueState::Admitted => Some(0),
        _ => None,
    };
    let poll = match state {
        QueueState::PreQueue => {
            let to_opening = ((view.opens_at_ms - now_ms) / 1000 + 1).clamp(1, 30) as u64;
            to_opening + (to_opening as f64 * 0.25 * jitter.clamp(0.0, 0.999)) as u64
        }
        QueueState::Waiting => poll_after_s(wait, jitter),
        QueueState::Admitted => poll_after_s(Some(40), jitter),
        // Units may come back while the sale runs.
        QueueState::SoldOut => poll_after_s(Some(120), jitter),
        QueueState::Closed => 0,
    };
    let window_ms = i64::from(view.window_s) * 1000;
    let url_until_ms = (state == QueueState::Admitted).then(|| {
        let end = admitted_at(view, standing).map(|at| at + window_ms);
        match end {
            // Never a URL too short to use: the tail of a window gets a few
            // seconds more.
            Some(end) if end > now_ms => end.max(now_ms + MIN_URL_MS),
            // Back after the window: a window's time from now, while units last.
            _ => now_ms + window_ms,
        }
        .min(view.closes_at_ms)
    });
    let competing = match state {
        QueueState::Admitted => view.flow.holding_window.saturating_sub(1),
        _ => ahead + view.flow.holding_window,
    };
    Answer {
        status: QueueStatus {
            pass: None,
            state,
            place,
            ahead,
            entrants,
            admitted: view.admitted,
            remaining: remaining.max(0),
            estimated_wait_s: wait,
            chance: view.flow.chance(competing),
            poll_after_s: poll,
            purchase_url: None,
            expires_at: None,
        },
        url_until_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::wire::Step;
    use crate::queue::{Flow, Frontier};

    const OPENS: i64 = 1_000_000;

    fn view(frontier: Frontier, remaining: i64) -> FrontierView {
        FrontierView {
            seed: String::new(),
            opens_at_ms: OPENS,
            closes_at_ms: OPENS + 3_600_000,
            window_s: 120,
            frontier,
            steps: vec![Step {
                at_ms: OPENS,
                frontier: Frontier::new(OPENS),
            }],
            pre_entrants: 1_000,
            late_entrants: 200,
            admitted: (frontier.drawn * 1_000.0) as u64,
            flow: Flow {
                remaining,
                in_flight: 0,
                holding_window: 0,
                admitted: 0,
                converted: 0,
                units_per_buyer: 1.0,
            },
            admitted_per_s: 10.0,
        }
    }

    fn pass(joined_ms: i64, late_ahead: u64) -> QueuePassClaims {
        QueuePassClaims {
            event_id: 1,
            user_id: 7,
            joined_ms,
            late_ahead,
            exp: 0,
        }
    }

    #[test]
    fn before_the_opening_nobody_has_a_place() {
        let a = answer(
            &view(Frontier::new(OPENS), 10),
            &pass(5, 0),
            0.3,
            OPENS - 10_000,
            0.0,
        );
        assert_eq!(a.status.state, QueueState::PreQueue);
        assert_eq!(a.status.place, 0);
        assert_eq!(a.status.poll_after_s, 11);
        assert_eq!(a.url_until_ms, None);
    }

    #[test]
    fn places_follow_the_draw_then_arrival() {
        let v = view(Frontier::new(OPENS).advance(100, 1_000, 0.0, OPENS), 50);
        let drawn = answer(&v, &pass(5, 0), 0.3, OPENS + 1, 0.0);
        assert_eq!(drawn.status.state, QueueState::Waiting);
        assert_eq!(drawn.status.place, 301);
        assert_eq!(drawn.status.ahead, 200);
        assert_eq!(drawn.status.estimated_wait_s, Some(20));
        assert!(drawn.status.chance > 0.0 && drawn.status.chance < 1.0);
        let late = answer(&v, &pass(OPENS + 5, 9), 0.0, OPENS + 10, 0.0);
        assert_eq!(late.status.place, 1_010);
        assert_eq!(late.status.state, QueueState::Waiting);
        let first = answer(&v, &pass(5, 0), 0.05, OPENS + 1, 0.0);
        assert_eq!(first.status.state, QueueState::Admitted);
    }

    #[test]
    fn the_window_runs_from_the_step_that_admitted() {
        let mut v = view(Frontier::new(OPENS), 50);
        let step = Frontier::new(OPENS).advance(500, 1_000, 0.0, OPENS + 2_000);
        v.steps.push(Step {
            at_ms: OPENS + 2_000,
            frontier: step,
        });
        v.frontier = step;
        let a = answer(&v, &pass(5, 0), 0.2, OPENS + 30_000, 0.0);
        assert_eq!(a.status.state, QueueState::Admitted);
        assert_eq!(a.url_until_ms, Some(OPENS + 122_000));
        let back_late = answer(&v, &pass(5, 0), 0.2, OPENS + 200_000, 0.0);
        assert_eq!(back_late.url_until_ms, Some(OPENS + 320_000));
        // The window's last moments still give a URL one can use.
        let tail = answer(&v, &pass(5, 0), 0.2, OPENS + 121_800, 0.0);
        assert_eq!(tail.url_until_ms, Some(OPENS + 121_800 + MIN_URL_MS));
    }

    #[test]
    fn sold_out_and_closed_are_said_to_everyone() {
        let v = view(Frontier::new(OPENS).advance(100, 1_000, 0.0, OPENS), 0);
        let a = answer(&v, &pass(5, 0), 0.9, OPENS + 1, 0.0);
        assert_eq!(a.status.state, QueueState::SoldOut);
        assert_eq!(a.status.place, 901);
        assert_eq!(a.status.chance, 0.0);
        assert_eq!(a.url_until_ms, None);
        let admitted = answer(&v, &pass(5, 0), 0.01, OPENS + 1, 0.0);
        assert_eq!(admitted.status.state, QueueState::SoldOut);
        let v = view(Frontier::new(OPENS), 5);
        let closed = answer(&v, &pass(5, 0), 0.5, OPENS + 3_600_000, 0.0);
        assert_eq!(closed.status.state, QueueState::Closed);
    }
}
