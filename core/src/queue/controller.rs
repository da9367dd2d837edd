//! The frontier's controller: the state the event's frontier object keeps (and
//! stores after every step), and the step itself — at most one a second, from
//! the origin's feed (units left, buyers so far) and the entrant counts of the
//! user shards. Each step admits what [`Flow::to_admit`] says, in queue order.

use serde::{Deserialize, Serialize};

use super::wire::{FrontierReport, FrontierView, QueueFeed, Step};
use super::{Flow, Frontier};

/// The controller's pace: one step a second at most.
pub const STEP_MS: i64 = 1_000;

/// Seconds of steps kept beyond the window (plus the one before them).
const KEEP_EXTRA_MS: i64 = 10_000;

/// What the frontier had admitted, and how many had bought, at a step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Sample {
    at_ms: i64,
    admitted: u64,
    buyers: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Controller {
    pub frontier: Frontier,
    /// Entrants the frontier has passed so far (an estimate while the
    /// pre-queue is being admitted: numbers are uniform).
    pub admitted: u64,
    pub last_step_ms: i64,
    pub admitted_per_s: f64,
    pub pre_entrants: u64,
    pub late_entrants: u64,
    steps: Vec<Step>,
    samples: Vec<Sample>,
    flow: Flow,
}

impl Controller {
    pub fn new(opens_at_ms: i64) -> Self {
        let frontier = Frontier::new(opens_at_ms);
        Self {
            frontier,
            admitted: 0,
            last_step_ms: i64::MIN,
            admitted_per_s: 0.0,
            pre_entrants: 0,
            late_entrants: 0,
            steps: vec![Step {
                at_ms: opens_at_ms,
                frontier,
            }],
            samples: Vec::new(),
            flow: Flow {
                remaining: 0,
                in_flight: 0,
                holding_window: 0,
                admitted: 0,
                converted: 0,
                units_per_buyer: 1.0,
            },
        }
    }

    /// Whether a step is due at `now_ms`.
    pub fn due(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_step_ms) >= STEP_MS
    }

    /// The last sample at least a window old: everyone admitted by then has
    /// had their whole window.
    fn window_ago(&self, now_ms: i64, window_ms: i64) -> Sample {
        let since = now_ms - window_ms;
        self.samples
            .iter()
            .rev()
            .find(|s| s.at_ms <= since)
            .copied()
            .unwrap_or(Sample {
                at_ms: since,
                admitted: 0,
                buyers: 0,
            })
    }

    /// One step at `now_ms` with the entrant counts `pre` and `late`.
    pub fn step(&mut self, feed: &QueueFeed, pre: u64, late: u64, now_ms: i64) {
        // Counts only grow (a shard that lost its memory reloads from storage).
        self.pre_entrants = self.pre_entrants.max(pre);
        self.late_entrants = self.late_entrants.max(late);
        let window_ms = i64::from(feed.window_s) * 1000;
        // Admitted users inside their window who have not bought hold room;
        // the conversion counts only those who decided: bought, or let their
        // window pass.
        let base = self.window_ago(now_ms, window_ms);
        let recent = self.admitted.saturating_sub(base.admitted);
        let recent_buyers = feed.buyers.saturating_sub(base.buyers).min(recent);
        let decided = base.admitted + recent_buyers;
        let units_per_buyer = if feed.buyers > 0 {
            feed.units_bought as f64 / feed.buyers as f64
        } else {
            1.0
        };
        self.flow = Flow {
            remaining: feed.remaining,
            in_flight: 0,
            holding_window: recent - recent_buyers,
            admitted: decided,
            converted: feed.buyers.min(decided),
            units_per_buyer,
        };
        let elapsed_ms = if self.last_step_ms == i64::MIN {
            0
        } else {
            now_ms - self.last_step_ms
        };
        self.last_step_ms = now_ms;
        if now_ms < feed.opens_at_ms || now_ms >= feed.closes_at_ms {
            return;
        }
        let entrants = self.pre_entrants + self.late_entrants;
        let waiting = entrants.saturating_sub(self.admitted);
        let admit = self.flow.to_admit().min(waiting);
        let before = self.frontier;
        if admit > 0 {
            // Late joiners waiting arrived between the frontier's time and now;
            // taken as evenly spread over it.
            let late_admitted = self.admitted.saturating_sub(self.pre_entrants);
            let late_waiting = self.late_entrants.saturating_sub(late_admitted);
            let span_s = ((now_ms - self.frontier.late_until_ms).max(1)) as f64 / 1000.0;
            let late_per_s = late_waiting as f64 / span_s;
            self.frontier = self
                .frontier
                .advance(admit, self.pre_entrants, late_per_s, now_ms);
            if self.frontier.drawn >= 1.0 && late_waiting <= admit {
                // Everyone who has joined is in.
                self.frontier.late_until_ms = self.frontier.late_until_ms.max(now_ms);
            }
            self.admitted += admit;
        }
        if elapsed_ms > 0 {
            let rate = admit as f64 * 1000.0 / elapsed_ms as f64;
            self.admitted_per_s = 0.7 * self.admitted_per_s + 0.3 * rate;
        }
        if self.frontier != before {
            self.steps.push(Step {
                at_ms: now_ms,
                frontier: self.frontier,
            });
        }
        self.samples.push(Sample {
            at_ms: now_ms,
            admitted: self.admitted,
            buyers: feed.buyers,
        });
        self.forget(now_ms - window_ms - KEEP_EXTRA_MS);
    }

    /// Drops steps and samples older than `cutoff`, keeping the last one before it.
    fn forget(&mut self, cutoff: i64) {
        let keep_from = |times: &mut dyn Iterator<Item = i64>| {
            times
                .collect::<Vec<_>>()
                .iter()
                .rposition(|at| *at < cutoff)
                .unwrap_or(0)
        };
        let steps = keep_from(&mut self.steps.iter().map(|s| s.at_ms));
        self.steps.drain(..steps);
        let samples = keep_from(&mut self.samples.iter().map(|s| s.at_ms));
        self.samples.drain(..samples);
    }

    pub fn view(&self, feed: &QueueFeed) -> FrontierView {
        FrontierView {
            seed: feed.seed.clone(),
            opens_at_ms: feed.opens_at_ms,
            closes_at_ms: feed.closes_at_ms,
            window_s: feed.window_s,
            frontier: self.frontier,
            steps: self.steps.clone(),
            pre_entrants: self.pre_entrants,
            late_entrants: self.late_entrants,
            admitted: self.admitted,
            flow: self.flow,
            admitted_per_s: self.admitted_per_s,
        }
    }

    pub fn report(&self) -> FrontierReport {
        FrontierReport {
            drawn: self.frontier.drawn,
            late_until_ms: self.frontier.late_until_ms,
            admitted: self.admitted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Standing;

    const OPENS: i64 = 10_000;

    fn feed(remaining: i64, buyers: u64) -> QueueFeed {
        QueueFeed {
            seed: "00".into(),
            opens_at_ms: OPENS,
            closes_at_ms: OPENS + 3_600_000,
            window_s: 120,
            remaining,
            buyers,
            units_bought: buyers as i64,
        }
    }

    #[test]
    fn nothing_moves_before_the_opening_then_the_stock_and_a_margin_go_in() {
        let mut c = Controller::new(OPENS);
        c.step(&feed(100, 0), 1_000, 0, OPENS - 1);
        assert_eq!(c.admitted, 0);
        assert_eq!(c.frontier, Frontier::new(OPENS));
        assert!(!c.due(OPENS - 1 + 999));
        c.step(&feed(100, 0), 1_000, 0, OPENS + 1);
        assert_eq!(c.admitted, 120);
        assert!((c.frontier.drawn - 0.12).abs() < 1e-9);
        // Those in their window are counted: nothing more while nobody buys.
        c.step(&feed(100, 0), 1_000, 0, OPENS + 1_001);
        assert_eq!(c.admitted, 120);
        // 60 bought; the other 60 still hold more room than the 40 left.
        c.step(&feed(40, 60), 1_000, 0, OPENS + 2_001);
        assert_eq!(c.admitted, 120);
        // Their windows over, the loop learns that about half buy.
        c.step(&feed(40, 60), 1_000, 0, OPENS + 130_001);
        let more = c.admitted - 120;
        assert!((80..=90).contains(&more), "{more}");
        let view = c.view(&feed(40, 60));
        assert_eq!(view.steps.len(), 3);
        assert_eq!(view.admitted, 120 + more);
        assert!(view.admitted_per_s > 0.0);
    }

    #[test]
    fn the_loop_stops_with_nothing_left_and_picks_up_when_units_come_back() {
        let mut c = Controller::new(OPENS);
        c.step(&feed(10, 0), 1_000, 0, OPENS);
        let admitted = c.admitted;
        c.step(&feed(0, 10), 1_000, 0, OPENS + 200_000);
        assert_eq!(c.admitted, admitted, "nothing left: nobody admitted");
        c.step(&feed(1, 10), 1_000, 0, OPENS + 201_000);
        assert!(c.admitted > admitted, "a unit came back: the next in line");
    }

    #[test]
    fn late_joiners_go_in_by_arrival_once_the_pre_queue_is_in() {
        let mut c = Controller::new(OPENS);
        c.step(&feed(1_000, 0), 10, 0, OPENS);
        assert_eq!(c.frontier.drawn, 1.0);
        // 30 late joiners over 30 s; the room left lets them all in.
        c.step(&feed(1_000, 0), 10, 30, OPENS + 30_000);
        assert!(c.frontier.admits(Standing::Late {
            joined_ms: OPENS + 29_000
        }));
        assert_eq!(c.admitted, 40);
    }

    #[test]
    fn old_steps_are_forgotten_but_one_before_the_window_is_kept() {
        let mut c = Controller::new(OPENS);
        for i in 0..400 {
            let buyers = i as u64;
            c.step(&feed(5_000, buyers), 100_000, 0, OPENS + i * 1_000);
        }
        let view = c.view(&feed(5_000, 400));
        assert!(view.steps.len() <= 132, "{}", view.steps.len());
        assert!(view.steps[0].at_ms < OPENS + 399_000 - 130_000);
        assert!(c.samples.len() <= 132);
    }
}
