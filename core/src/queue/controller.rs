//! The frontier's controller: the state the event's frontier object keeps (and
//! stores after every step), and the step itself — at most one a second, from
//! the origin's feed (units left, buyers so far) and the entrant counts of the
//! user shards. Each step admits what [`Flow::to_admit`] says, in queue order:
//! through the pre-queue first, exactly — the step names how many of its
//! entrants are in ([`Controller::pre_target`]) and the object sets the
//! frontier at the number of the next one, which the user shards' entrants
//! give ([`Controller::set_drawn`]) — then through the late joiners.

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
    /// Pre-queue entrants admitted so far, exactly.
    #[serde(default)]
    pub pre_admitted: u64,
    /// The pre-queue entrants the last step admitted up to, while the
    /// frontier waits to be set at the next one's number.
    #[serde(default)]
    pre_target: Option<u64>,
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
            pre_admitted: 0,
            pre_target: None,
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
            let into_pre = admit.min(self.pre_entrants.saturating_sub(self.pre_admitted));
            if into_pre > 0 && self.frontier.drawn < 1.0 {
                self.pre_admitted += into_pre;
                self.pre_target = Some(self.pre_admitted);
            } else {
                self.pre_admitted = self.pre_entrants.min(self.pre_admitted + into_pre);
            }
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

    /// How many pre-queue entrants the frontier must have passed after the
    /// last step, if it is to be set exactly: the object then sets it at the
    /// number of the next entrant ([`Controller::set_drawn`]).
    pub fn pre_target(&self) -> Option<u64> {
        self.pre_target
    }

    /// Sets the frontier at `drawn`, the number of the pre-queue entrant after
    /// the `pre_target`-th lowest (1.0 when there is none): exactly that many
    /// are admitted. Never backwards.
    pub fn set_drawn(&mut self, drawn: f64) {
        self.pre_target = None;
        let drawn = drawn.clamp(0.0, 1.0);
        let exact = Frontier {
            drawn,
            ..self.frontier
        };
        if let Some(last) = self.steps.last_mut()
            && last.frontier == self.frontier
        {
            last.frontier = exact;
        }
        self.frontier = exact;
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
    fn nothing_moves_before_the_opening_then_one_per_unit_goes_in() {
        let mut c = Controller::new(OPENS);
        c.step(&feed(100, 0), 1_000, 0, OPENS - 1);
        assert_eq!(c.admitted, 0);
        assert_eq!(c.frontier, Frontier::new(OPENS));
        assert!(!c.due(OPENS - 1 + 999));
        c.step(&feed(100, 0), 1_000, 0, OPENS + 1);
        assert_eq!(c.admitted, 100);
        assert!(
            (c.frontier.drawn - 0.1).abs() < 1e-9,
            "the estimate, until set"
        );
        // The object sets the frontier at the 101st number: exactly 100 below.
        assert_eq!(c.pre_target(), Some(100));
        c.set_drawn(0.098);
        assert_eq!(c.pre_target(), None);
        assert_eq!(c.frontier.drawn, 0.098);
        // Those in their window hold their units: nothing more while nobody buys.
        c.step(&feed(100, 0), 1_000, 0, OPENS + 1_001);
        assert_eq!(c.admitted, 100);
        assert_eq!(c.pre_target(), None);
        // 60 bought; the other 40 still hold the 40 left.
        c.step(&feed(40, 60), 1_000, 0, OPENS + 2_001);
        assert_eq!(c.admitted, 100);
        // Their windows over, the 40 units nobody holds go to the next 40.
        c.step(&feed(40, 60), 1_000, 0, OPENS + 130_001);
        assert_eq!(c.admitted, 140);
        assert_eq!(c.pre_target(), Some(140));
        c.set_drawn(0.139);
        let view = c.view(&feed(40, 60));
        assert_eq!(view.steps.len(), 3);
        assert_eq!(view.frontier.drawn, 0.139);
        assert_eq!(view.steps.last().unwrap().frontier.drawn, 0.139);
        assert_eq!(view.admitted, 140);
        assert!(view.admitted_per_s > 0.0);
    }

    #[test]
    fn a_small_stock_admits_no_more_than_its_units() {
        // 200 in the pre-queue for 20 units: 20 in, and nobody more while
        // their windows run, bought or not.
        let mut c = Controller::new(OPENS);
        c.step(&feed(20, 0), 200, 0, OPENS);
        assert_eq!(c.admitted, 20);
        for (at, remaining, buyers) in [(1_000, 20, 0), (30_000, 5, 15), (60_000, 0, 20)] {
            c.step(&feed(remaining, buyers), 200, 0, OPENS + at);
            assert_eq!(c.admitted, 20, "at {at}");
        }
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
